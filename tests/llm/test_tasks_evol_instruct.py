"""Evol-Instruct: the evolving prompts, each elimination rule, and the operator with the mock backend."""

from __future__ import annotations

import pytest

from gristmill.llm.tasks import evol_instruct as ev
from gristmill.llm.types import Completion, Decoding, ParseError
from gristmill.ops.generate.evol_instruct import EvolInstruct
from gristmill.records import from_rows

ORIGINAL = "Write a function that adds two numbers."


def test_depth_prompts_follow_the_paper() -> None:
    for method in ev.DEPTH_METHODS:
        p = ev.evolve_prompt(ORIGINAL, method)
        assert p.startswith("I want you act as a Prompt Rewriter.")
        assert ev.DEPTH_METHODS[method] in p
        assert p.endswith(f"#The Given Prompt#:\n{ORIGINAL}\n#Rewritten Prompt#:\n")
        assert "can only add 10 to 20 words" in p
    assert "add one more constraints/requirements" in ev.evolve_prompt(ORIGINAL, "constraints")
    assert "multiple-step reasoning" in ev.evolve_prompt(ORIGINAL, "reasoning")
    assert "more specific concepts" in ev.evolve_prompt(ORIGINAL, "concretize")
    assert "depth and breadth of the inquiry" in ev.evolve_prompt(ORIGINAL, "deepen")
    assert "structured input data" in ev.evolve_prompt(ORIGINAL, "complicate_input")


def test_breadth_prompt_and_unknown_method() -> None:
    p = ev.evolve_prompt(ORIGINAL, "breadth")
    assert p.startswith("I want you act as a Prompt Creator.") and "even more rare" in p
    assert p.endswith(f"#Given Prompt#:\n{ORIGINAL}\n#Created Prompt#:\n")
    with pytest.raises(ValueError, match="unknown evolution method"):
        ev.evolve_prompt(ORIGINAL, "shorten")


def test_parse_evolved_strips_a_leading_label_but_rejects_copied_words() -> None:
    assert ev.parse_evolved("#Rewritten Prompt#:\n Write a function that adds two integers.") == \
        "Write a function that adds two integers."
    assert ev.parse_evolved("Created Prompt: Name a rare bird.") == "Name a rare bird."
    with pytest.raises(ParseError, match="copied_prompt_words: 'given prompt'"):
        ev.parse_evolved("Rewrite the given prompt so it adds three numbers.")
    with pytest.raises(ParseError, match="copied_prompt_words: '#rewritten prompt#'"):
        ev.parse_evolved("Add numbers. #Rewritten Prompt# must be short.")
    with pytest.raises(ParseError, match="empty"):
        ev.parse_evolved("  #Rewritten Prompt#:  ")


def test_rule1_no_information_gain_proxy() -> None:
    assert ev.information_gain_reason(ORIGINAL, "Write a function that adds two numbers!") == \
        "no_information_gain: 0 new words < 3"
    assert ev.information_gain_reason(ORIGINAL, "Write a function that adds two numbers and returns it.") == \
        "no_information_gain: 1 new words < 3"
    evolved = "Write a function that adds two numbers, rejects negative inputs, and logs every call."
    assert ev.information_gain_reason(ORIGINAL, evolved) is None
    long_original = ("Write a function in Python that adds two numbers given as strings and returns the sum as a "
                     "string without converting whole inputs to int")
    near = long_original + " using recursion carefully applied"
    reason = ev.information_gain_reason(long_original, near)
    assert reason is not None and reason.startswith("no_information_gain: rouge_l 0.9")


def test_rule1_llm_equality_prompt_and_parse() -> None:
    p = ev.equality_prompt("A", "B")
    assert "do you think they are equal to each other" in p and p.endswith("No need to explain the reason.):")
    assert ev.parse_equality(" Equal") is True
    assert ev.parse_equality("Not Equal.") is False
    with pytest.raises(ParseError, match="equality_unparsed"):
        ev.parse_equality("maybe")


def test_rules_2_and_3_on_the_response() -> None:
    assert ev.response_reason("I'm sorry, but I cannot help with that request.") == \
        "sorry_response: 'sorry' in a 9-word response"
    long_sorry = "Sorry for the delay. " + "Here is a detailed plan with many concrete steps. " * 10
    assert ev.response_reason(long_sorry) is None  # 'sorry' in a long answer is fine
    assert ev.response_reason("... ?! -- the of and") == "empty_response: only punctuation and stop words"
    assert ev.response_reason("   ") == "empty_response: only punctuation and stop words"
    assert ev.response_reason("def add(a, b): return a + b") is None


def test_elimination_reason_order_and_llm_verdict() -> None:
    evolved = "Write a function that adds two numbers, rejects negative inputs, and logs every call."
    assert ev.elimination_reason(ORIGINAL, "Use the given prompt twice", "fine answer here") == \
        "copied_prompt_words: 'given prompt'"
    assert ev.elimination_reason(ORIGINAL, evolved, "Sorry, no.") == "sorry_response: 'sorry' in a 2-word response"
    assert ev.elimination_reason(ORIGINAL, evolved, "def add(a, b): ...") is None
    assert ev.elimination_reason(ORIGINAL, evolved, None, equal=True) == \
        "no_information_gain: judged equal to the original"
    assert ev.elimination_reason(ORIGINAL, ORIGINAL, None, equal=False) is None  # the judge overrides the proxy
    assert ev.elimination_reason(ORIGINAL, ORIGINAL, None, check_gain=False) is None


def _complete_factory(evolutions: dict[str, str], answer: str = "A full answer with real content words."):
    calls = []

    def complete(prompts, decoding):
        out = []
        for p in prompts:
            text = p if isinstance(p, str) else p[-1]["content"]
            calls.append((text, decoding))
            if "Prompt Rewriter" in text or "Prompt Creator" in text:
                given = text.split("Prompt#:\n")[1].split("\n#")[0]
                out.append(Completion(evolutions.get(given, "Sorry"), "stop", 50, 10))
            elif text.startswith("Here are two Instructions"):
                out.append(Completion("Not Equal", "stop", 30, 2))
            else:
                out.append(Completion(answer, "stop", 10, 8))
        return out

    return complete, calls


def test_run_evolution_two_rounds() -> None:
    rows = [{"id": "a", "instruction": ORIGINAL}, {"id": "b", "instruction": None}]
    evolved1 = "Write a function that adds two numbers, rejects negative inputs, and logs every call."
    evolved2 = evolved1 + " Also cache results, document complexity, and handle overflow gracefully."
    complete, calls = _complete_factory({ORIGINAL: evolved1, evolved1: evolved2})
    cfg = ev.EvolConfig(methods=("constraints",), rounds=2)
    out, rejects = ev.run_evolution(rows, [r["instruction"] for r in rows], complete, Decoding(seed=5),
                                    Decoding(max_tokens=64), cfg)
    assert [(r["id"], r["instruction"], r["evol.round"], r["gen.parent"]) for r in out] == [
        ("a-constraints", evolved1, 1, "a"), ("a-constraints/constraints", evolved2, 2, "a")]
    assert out[1]["evol.original"] == evolved1 and out[0]["output"] == "A full answer with real content words."
    assert out[0]["gen.tokens_in"] == 60  # evolution + response
    assert [r["_reason"] for r in rejects] == ["prompt: no instruction"]
    assert [d.seed for t, d in calls if "Prompt Rewriter" in t] == [6, 7]


def test_run_evolution_llm_equality_and_eliminations() -> None:
    rows = [{"id": "a", "instruction": ORIGINAL}, {"id": "b", "instruction": "Name a bird."}]
    complete, calls = _complete_factory({ORIGINAL: ORIGINAL + " Use the #Rewritten Prompt#.",
                                         "Name a bird.": "Name a rare bird."}, answer="Sorry.")
    cfg = ev.EvolConfig(methods=("breadth",), equality_check="llm")
    out, rejects = ev.run_evolution(rows, [r["instruction"] for r in rows], complete, Decoding(), Decoding(), cfg)
    assert out == []
    assert sorted(r["_reason"] for r in rejects) == ["copied_prompt_words: '#rewritten prompt#'",
                                                     "sorry_response: 'sorry' in a 1-word response"]
    assert sum(t.startswith("Here are two Instructions") for t, _ in calls) == 1


def test_operator_with_mock_backend() -> None:
    answers = {
        "Prompt Rewriter": "Write a function that adds two numbers, rejects negative inputs, and logs every call.",
        "Prompt Creator": "Write a function",  # too little gained
        "": "def add(a, b):\n    return a + b",
    }
    op = EvolInstruct(methods=["constraints", "breadth"], evolutions_per_row=2,
                      backend={"type": "mock", "responses": answers})
    op.ensure_setup()
    result = op.process(from_rows([{"id": "r1", "instruction": ORIGINAL, "source": "seeds.jsonl"}]))
    kept = result.kept.to_pylist()
    assert [(r["id"], r["evol.method"], r["output"]) for r in kept] == [
        ("r1-constraints", "constraints", "def add(a, b):\n    return a + b")]
    assert kept[0]["text"] == kept[0]["instruction"] + "\n\n" + kept[0]["output"]
    assert kept[0]["source"] == "seeds.jsonl"
    assert kept[0]["gen.model"] == "mock"
    rejected = result.rejected.to_pylist()
    assert [(r["id"], r["_reason"]) for r in rejected] == [("r1-breadth", "no_information_gain: 0 new words < 3")]


def test_operator_rejects_unknown_methods() -> None:
    with pytest.raises(ValueError, match="unknown methods"):
        EvolInstruct(methods=["widen"])
