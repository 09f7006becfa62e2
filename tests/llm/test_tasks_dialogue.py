"""The dialogue task: prompts of the two sides, reading a reply, the repeat check and the lockstep stop rule."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from gristmill.llm.tasks import dialogue
from gristmill.llm.tasks.dialogue import DialogueConfig, Seed, parse_turn, repeats, run_dialogues
from gristmill.llm.types import Completion, Decoding, ParseError, Prompt


def test_a_seed_needs_a_persona_or_a_document() -> None:
    with pytest.raises(ParseError, match="no persona or document"):
        Seed(persona=" ", document=None)
    assert Seed(persona="a nurse").persona == "a nurse"


def test_user_prompt_first_turn_shows_the_document_and_the_persona() -> None:
    seed = Seed(persona="a retired teacher", document="Bees dance to show where flowers are.")
    system, ask = dialogue.user_prompt(seed, [], DialogueConfig())
    assert system["content"].endswith("You are a retired teacher.")
    assert "Bees dance" in ask["content"] and "[END]" not in ask["content"]
    persona_only = dialogue.user_prompt(Seed(persona="a nurse."), [], DialogueConfig())
    assert "one question you would like help with" in persona_only[1]["content"]
    assert persona_only[0]["content"].endswith("You are a nurse.")


def test_user_prompt_points_each_user_turn_at_the_next_sentence_of_the_document() -> None:
    seed = Seed(document="Bees dance. They make honey! Why? \"Hives\" hum.")
    cfg = DialogueConfig(min_turns=4, max_turns=8)
    turns: list[dict[str, str]] = []
    expected = ["Bees dance.", "They make honey!", "Why?", '"Hives" hum.', "Bees dance."]  # cycling
    for k, sentence in enumerate(expected):
        ask = dialogue.user_prompt(seed, turns, cfg)[1]["content"]
        assert ask.startswith(f"Text:\n{seed.document}\n\n") and ("[END]" in ask) == (k >= 2)
        assert f'about this sentence of the text: "{sentence}"?' in ask
        turns += [{"role": "user", "content": f"Q{k}?"}, {"role": "assistant", "content": f"A{k}."}]


def test_user_prompt_persona_follow_up_shows_the_last_exchange() -> None:
    seed = Seed(persona="a nurse")
    turns = [{"role": "user", "content": "Q1?"}, {"role": "assistant", "content": "A1."}]
    cfg = DialogueConfig(min_turns=4, max_turns=6)
    early = dialogue.user_prompt(seed, turns, cfg)[1]["content"]
    assert "You asked: Q1?\nThe assistant answered: A1." in early and "[END]" not in early
    more = turns + [{"role": "user", "content": "Q2?"}, {"role": "assistant", "content": "A2."}]
    late = dialogue.user_prompt(seed, more, cfg)[1]["content"]
    assert "You asked: Q2?" in late and "Q1?" not in late and "write only [END]" in late


def test_sentences() -> None:
    assert dialogue.sentences('A river. He said "stop." Then 3 more! e.g. this') == [
        "A river.", 'He said "stop."', "Then 3 more! e.g. this"]  # no cut before a lowercase word


def test_assistant_prompt_is_the_system_prompt_then_the_dialogue() -> None:
    seed = Seed(document="Rivers carry silt.")
    system = dialogue.assistant_system(seed, DialogueConfig())
    assert system.startswith(dialogue.ASSISTANT_SYSTEM) and system.endswith("Rivers carry silt.")
    assert dialogue.assistant_system(Seed(persona="p"), DialogueConfig()) == dialogue.ASSISTANT_SYSTEM
    turns = [{"role": "user", "content": "Q?"}]
    assert dialogue.assistant_prompt(system, turns) == [{"role": "system", "content": system}, turns[0]]


@pytest.mark.parametrize(("raw", "expected"), [
    ("  What is silt?  ", ("What is silt?", False)),
    ('What would a curious reader ask: "Why does bread rise?"', ("Why does bread rise?", False)),
    ("What is silt?\n\nThe answer to this question would be:", ("What is silt?", False)),
    ("You: What is silt?", ("What is silt?", False)),
    ("**User:** What is silt?\nAssistant: Silt is fine sand.", ("What is silt?", False)),
    ('"What is silt?"', ("What is silt?", False)),
    ("Thanks, that helps. [END]", ("Thanks, that helps.", True)),
    ("[END]", ("", True)),
])
def test_parse_turn(raw: str, expected: tuple[str, bool]) -> None:
    assert parse_turn(raw) == expected


def test_parse_turn_failures_and_truncation() -> None:
    with pytest.raises(ParseError, match="empty reply"):
        parse_turn("   \n ")
    with pytest.raises(ParseError, match="empty reply"):
        parse_turn("Assistant:")
    cut = "Silt is fine sand. It settles where the water slows and"
    assert parse_turn(cut, finish_reason="length") == ("Silt is fine sand.", False)
    with pytest.raises(ParseError, match="truncated with no complete sentence"):
        parse_turn("Silt is fine sand that settles where", finish_reason="length")
    with pytest.raises(ParseError, match="truncated at max_tokens"):
        parse_turn(cut, finish_reason="length", trim_truncated=False)
    assert parse_turn("Done <<stop>>", end_marker="<<stop>>") == ("Done", True)
    with pytest.raises(ParseError, match="echoes the prompt"):
        parse_turn("The assistant answered: To prepare for it, plan.")
    # an assistant turn keeps its paragraphs and its quotes
    answer = 'It says: "rivers move sand"\n\nAnd more.'
    assert parse_turn(answer, role="assistant") == (answer, False)
    # the first paragraph of a user turn is complete even when the reply was cut later
    assert parse_turn("Why?\n\nBecause the", finish_reason="length") == ("Why?", False)


def test_repeats_ignores_case_and_punctuation() -> None:
    turns = [{"role": "user", "content": "What is silt?"}, {"role": "assistant", "content": "Fine sand."}]
    assert repeats("what is SILT", turns) == 1
    assert repeats("Fine sand!", turns) == 2
    assert repeats("What is clay?", turns) is None


def test_repeats_catches_echoes() -> None:
    turns = [{"role": "user", "content": "What is the purpose of planting potatoes?"},
             {"role": "assistant", "content": "The purpose of planting potatoes in spring is a good harvest."}]
    quoted = "The answer to your question is: What is the purpose of planting potatoes?"
    assert repeats(quoted, turns) == 1 and repeats(quoted, turns, role="assistant") is None
    assert repeats("The purpose of planting potatoes in spring is a warm soil.", turns) == 2  # same 8 first words
    assert repeats("The purpose of planting potatoes is food.", turns) is None


def test_repeats_by_rouge_l() -> None:
    turns = [{"role": "user", "content": "Can I grow potatoes in the dark?"},
             {"role": "assistant", "content": "I'm ready to assist you. What can I help you with today?"}]
    parrot = "I'm ready to assist you today. What can I help you with?"  # ROUGE-L 0.92 with turn 2
    assert repeats(parrot, turns) is None and repeats(parrot, turns, rouge=0.7) == 2
    restated = "Yes, I can grow potatoes in the dark."  # ROUGE-L 0.8 with turn 1: an answer may restate its question
    assert repeats(restated, turns, role="assistant", rouge=0.7) is None
    assert repeats(restated, turns, role="user", rouge=0.7) == 1


class Script:
    """A ``complete`` callable: answers per (dialogue document, turn number); records each call's size."""

    def __init__(self, answers: dict[str, list[str | Completion]]) -> None:
        self.answers = answers
        self.calls: list[int] = []

    def __call__(self, prompts: Sequence[Prompt], decoding: Decoding) -> list[Completion]:
        self.calls.append(len(prompts))
        out = []
        for p in prompts:
            text = "\n".join(m["content"] for m in p)  # type: ignore[index]
            doc = next(k for k in self.answers if k in text)
            turn = len(self.calls) - 1
            a = self.answers[doc][turn]  # "{d}" in a scripted answer: the document, so later prompts name it
            out.append(a if isinstance(a, Completion) else Completion(text=a.format(d=doc), tokens_in=1, tokens_out=1))
        return out


def test_lockstep_one_call_per_turn_and_each_stop_rule() -> None:
    script = Script({
        "doc-full": ["Q1 {d}?", "A1 {d}.", "Q2 {d}?", "A2 {d}."],
        "doc-marker": ["Q1 {d}?", "A1 {d}.", "Thanks! [END]", "You are welcome."],
        "doc-empty": ["Q1 {d}?", "A1 {d}.", "  "],
        "doc-short": ["Q1 {d}?", "A1 {d}.", "[END]"],
        "doc-fail": [Completion(text="", finish_reason="error", error="transient: timeout", error_kind="transient")],
    })
    seeds = [Seed(document=d) for d in ("doc-full", "doc-marker", "doc-empty", "doc-short", "doc-fail")]
    results = run_dialogues(seeds, script, Decoding(max_tokens=100), DialogueConfig(min_turns=2, max_turns=4))
    assert script.calls == [5, 4, 4, 2]  # every live dialogue's next turn in one call
    full, marker, empty, short, fail = results
    assert [t["role"] for t in full.turns] == ["user", "assistant", "user", "assistant"]
    assert (full.stop, full.kept, full.failure) == ("max_turns", True, None)
    assert marker.stop == "end_marker" and [t["content"] for t in marker.turns][2:] == ["Thanks!", "You are welcome."]
    assert (empty.stop, empty.kept, len(empty.turns)) == ("cut", True, 2)
    assert str(empty.failure.reason) == "turn_parse: turn 3: empty reply" and empty.failure.role == "user"
    assert (short.stop, short.kept, len(short.turns)) == ("end_marker", True, 2)
    assert (fail.kept, fail.turns) == (False, [])
    assert str(fail.reason) == "backend: transient: timeout (turn 1)"


def test_too_short_and_user_decoding_cap() -> None:
    seen: list[int] = []

    def complete(prompts: Sequence[Prompt], decoding: Decoding) -> list[Completion]:
        seen.append(decoding.max_tokens)
        return [Completion(text="[END]" if len(seen) == 3 else f"Turn {len(seen)}.") for _ in prompts]

    (r,) = run_dialogues([Seed(persona="a nurse")], complete, Decoding(max_tokens=100),
                         DialogueConfig(min_turns=4, max_turns=6, user_max_tokens=20))
    assert seen == [20, 100, 20]
    assert not r.kept and r.stop == "end_marker" and r.failure is None
    assert str(r.reason) == "too_short: ended by the end marker after 2 turns (min_turns 4)"


def test_transcript_drops_the_system_message() -> None:
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q?"},
            {"role": "assistant", "content": "A."}]
    assert dialogue.transcript(msgs) == "User: Q?\n\nAssistant: A."
