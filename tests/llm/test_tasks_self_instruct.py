"""Self-Instruct: prompts, every filter of the paper, the instance parsers, and the loop through the operator."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from gristmill.llm.tasks import self_instruct as si
from gristmill.llm.types import Completion, Decoding, ParseError
from gristmill.ops.generate.self_instruct import SelfInstruct
from gristmill.records import from_rows
from gristmill.runner import run_recipe

REPO = Path(__file__).resolve().parents[2]
SHARED_SEEDS = REPO / ".." / "shared" / "data" / "self_instruct_seed_tasks.jsonl"
OUR_SEEDS = REPO / "recipes" / "data" / "seed_tasks.jsonl"


# ---- bootstrap prompt and split ------------------------------------------------------
def test_encode_prompt_is_the_reference_format() -> None:
    prompt = si.encode_prompt(["Say hi:", "Count   to\nthree"])
    assert prompt == "Come up with a series of tasks:\n1. Say hi\n2. Count to three\n3."
    clf = si.encode_prompt(["Is it spam?"], classification=True)
    assert clf.startswith("Come up with a series of classification tasks. Try to specify the possible output labels")
    assert clf.endswith("1. Is it spam?\n2.")


def test_sample_prompt_instructions_takes_two_machine_and_six_seeds() -> None:
    seeds = [f"seed {i}" for i in range(20)]
    rng = random.Random(0)
    assert len(si.sample_prompt_instructions(seeds, [], rng)) == 8
    chosen = si.sample_prompt_instructions(seeds, ["m1", "m2", "m3"], rng)
    assert len(chosen) == 8 and sum(c.startswith("m") for c in chosen) == 2
    assert len(si.sample_prompt_instructions(seeds[:3], [], rng)) == 3  # fewer seeds than slots


def test_split_instructions_like_the_reference() -> None:
    text = " Give me three tips.\n10. Translate   the sentence into German.\n11.Not split here\n12 . Spaced number"
    # str.capitalize() lowercases the rest, as in the reference ("German" -> "german")
    assert si.split_instructions(text) == [
        "Give me three tips.", "Translate the sentence into german. 11.not split here", "Spaced number"]


def test_bootstrap_decoding_adds_the_reference_stops() -> None:
    d = si.bootstrap_decoding(Decoding(temperature=0.7, stop=("###",)))
    assert d.stop == ("###", "\n\n", "\n16", "16.", "16 .") and d.temperature == 0.7


# ---- the paper's filters, one by one -----------------------------------------------
@pytest.mark.parametrize("inst, reason", [
    ("Name three long rivers.", None),
    ("Name three rivers.", "min_words: 3 <= 3"),
    (" ".join(["word"] * 151), "max_words: 151 > 150"),
    (" ".join(["word"] * 150), None),
    ("Describe the image of a cat in detail.", "blacklist: 'image'"),
    ("Create a flowchart for the hiring process.", "blacklist: 'flowchart'"),
    ("Tell me how to Go To the station.", "blacklist: 'go to'"),
    ("Explain what Mapping means in math.", None),  # whole words only: 'map' in 'Mapping' is fine
    ("Write a program that sorts a list.", "write_a_program: starts with 'Write a program'"),
    ("Write a poem that sorts feelings.", None),
    ("- List three prime numbers please.", "leading_punctuation: '-'"),
    ("\"Quote\" the first line of a song.", "leading_punctuation: '\"'"),
    ("Écris une phrase en français ici.", "non_ascii_start: 'É'"),
])
def test_instruction_filter(inst: str, reason: str | None) -> None:
    assert si.instruction_reject_reason(inst) == reason


def test_every_blacklisted_keyword_is_caught() -> None:
    for word in si.BLACKLIST:
        assert si.instruction_reject_reason(f"Please describe the {word} for me now.") == f"blacklist: {word!r}"


def test_truncated_bootstrap_is_dropped_whole() -> None:
    with pytest.raises(ParseError, match="truncated: finish_reason length"):
        si.parse_bootstrap(" Name three rivers in Europe.\n10. Name four", "length")
    with pytest.raises(ParseError, match="no_instructions"):
        si.parse_bootstrap("   \n ", "stop")
    parsed = si.parse_bootstrap(" Name three rivers in Europe.\n10. Draw a map of Spain.", "stop")
    assert parsed == [("Name three rivers in europe.", None), ("Draw a map of spain.", "blacklist: 'draw'")]


# ---- classification ------------------------------------------------------------------
def test_classification_prompt_and_answer() -> None:
    prompt = si.format_clf_prompt("  Is the review positive?  ")
    assert prompt.endswith("Task: Is the review positive?\nIs it classification?")
    assert prompt.startswith("Can the following task be regarded as a classification task")
    assert [si.parse_is_classification(t) for t in (" Yes", "yes\n", "YES", "No", "Yes.", "")] == [
        True, True, True, False, False, False]
    d = si.classify_decoding(Decoding(temperature=0.9, max_tokens=500))
    assert (d.temperature, d.max_tokens, d.stop) == (0.0, 3, ("\n", "Task"))


# ---- instances -------------------------------------------------------------------------
def test_instance_prompts_are_output_first_for_classification() -> None:
    clf = si.format_instance_prompt("Is the number prime?", True)
    gen = si.format_instance_prompt("Sort the list.", False)
    assert "Class label:" in clf and clf.endswith("Task: Is the number prime?\n")
    assert "Example 1" in gen and gen.endswith("Task: Sort the list.\n")
    assert si.instance_decoding(Decoding(), True).max_tokens == 300
    assert si.instance_decoding(Decoding(), False).stop == ("Example 6", "Task:")


def test_parse_input_output() -> None:
    assert si.parse_input_output("Input: 2 + 2\nOutput: 4") == ("2 + 2", "4")
    assert si.parse_input_output("just an answer") == ("", "just an answer")
    assert si.parse_input_output("List: [3, 1]\nOutput 2: [1, 3]\nInput 3: more") == ("List: [3, 1]", "[1, 3]")


def test_generation_instances() -> None:
    text = ("Example 1\nList: [3, 1, 2]\nOutput: [1, 2, 3]\n"
            "Example 2\nList: [9, 8]\nOutput: [8, 9]\n"
            "Example 3\nList: [9, 8]\nOutput: [8, 9]\n"
            "Example 4\nList: [5]\nOutput:")
    kept, dropped = si.parse_generation_instances(text)
    assert kept == [si.Instance("List: [3, 1, 2]", "[1, 2, 3]"), si.Instance("List: [9, 8]", "[8, 9]")]
    assert sorted(r for _, r in dropped) == ["instance_duplicate: repeated", "instance_invalid: empty output"]
    single, _ = si.parse_generation_instances("Output: Paris is the capital of France.")
    assert single == [si.Instance("", "Paris is the capital of France.")]
    with pytest.raises(ParseError, match="no_instances"):
        si.parse_generation_instances("I cannot do that.")


def test_truncation_drops_the_last_instance() -> None:
    text = "Example 1\nWord: cat\nOutput: cats\nExample 2\nWord: mouse\nOutput: mi"
    kept, dropped = si.parse_generation_instances(text, "length")
    assert kept == [si.Instance("Word: cat", "cats")]
    assert dropped == [(si.Instance("Word: mouse", "mi"), "truncated: last instance cut by max_tokens")]


def test_conflicting_outputs_drop_the_whole_task() -> None:
    text = "Example 1\nNumber: 4\nOutput: even\nExample 2\nNumber: 4\nOutput: odd"
    kept, dropped = si.parse_generation_instances(text)
    assert kept == [] and {r for _, r in dropped} == {"instance_conflict: same input, different outputs"}


def test_invalid_instances() -> None:
    text = "Example 1\nInput: same\nOutput: same\nExample 2\nInput: Question:\nOutput: x\nExample 3\nOutput: fine"
    kept, dropped = si.parse_generation_instances(text)
    assert kept == [si.Instance("", "fine")]
    assert [r for _, r in dropped] == ["instance_invalid: input equals output", "instance_invalid: ends with ':'"]


def test_classification_instances() -> None:
    text = ("Positive\nReview: Lovely staff.\nClass label: Negative\nReview: Cold food.\n"
            "Class label: Neutral")
    with pytest.raises(ParseError, match="no_instances"):
        si.parse_classification_instances("Positive and negative")
    kept, dropped = si.parse_classification_instances("Class label: " + text)
    assert kept == [si.Instance("Review: Lovely staff.", "Positive"), si.Instance("Review: Cold food.", "Negative"),
                    si.Instance("", "Neutral")]
    kept, dropped = si.parse_instances("Class label: " + text, True, "length")
    assert len(kept) == 2 and dropped[0][1].startswith("truncated")


def test_sample_instances_caps_at_five() -> None:
    insts = [si.Instance(str(i), str(i + 1)) for i in range(9)]
    assert len(si.sample_instances(insts, random.Random(0))) == 5
    assert sorted(si.sample_instances(insts[:2], random.Random(0), 5), key=lambda i: i.input) == insts[:2]


# ---- the loop ----------------------------------------------------------------------------
def _scripted(bootstraps: list[str]):
    """A complete() that answers bootstrap prompts from a list and every other prompt by rule."""
    calls: list[tuple[str, Decoding]] = []
    it = iter(bootstraps)

    def complete(prompts, decoding):
        out = []
        for p in prompts:
            calls.append((p, decoding))
            if p.startswith("Come up with a series"):
                text = next(it, "")
                out.append(Completion(text, "length" if text.endswith("...") else "stop", 10, 20))
            elif p.endswith("Is it classification?"):
                out.append(Completion(" Yes" if "positive or negative" in p.splitlines()[-2] else " No", "stop", 5, 1))
            elif "Class label:" in p.split("Task:")[0] or "generate an input that corresponds" in p:
                out.append(Completion("Class label: Positive\nReview: Great.\nClass label: Negative\nReview: Bad.",
                                      "stop", 7, 9))
            else:
                out.append(Completion("Example 1\nInput: abc\nOutput: cba\nExample 2\nInput: xy\nOutput: yx",
                                      "stop", 7, 9))
        return out

    return complete, calls


def test_run_self_instruct_end_to_end() -> None:
    seeds = ["Reverse the given word.", "Name a famous painter.", "Suggest a title for the essay."]
    complete, calls = _scripted([
        " Tell me if the review is positive or negative.\n10. Reverse the given word.\n11. Draw a picture of a cat.",
        " Tell me if the review is positive or negative.\n10. Write a short poem about the sea.",
        " Anything at all here...",
    ])
    cfg = si.SelfInstructConfig(num_instructions=5, request_batch_size=1, max_rounds=3, seed=1)
    rows, rejects = si.run_self_instruct(seeds, complete, Decoding(temperature=0.7, seed=3), cfg)
    reasons = [r["_reason"] for r in rejects]
    assert "blacklist: 'draw'" in reasons
    assert "truncated: finish_reason length" in reasons
    assert sum(r.startswith("rouge_l: 1.000 > 0.7") for r in reasons) == 2  # a seed copy and a repeat
    by_inst = {}
    for r in rows:
        by_inst.setdefault(r["instruction"], []).append(r)
    assert set(by_inst) == {"Tell me if the review is positive or negative.", "Write a short poem about the sea."}
    clf = by_inst["Tell me if the review is positive or negative."]
    assert all(r["is_classification"] for r in clf)
    assert sorted((r["input"], r["output"]) for r in clf) == [("Review: Bad.", "Negative"),
                                                              ("Review: Great.", "Positive")]
    gen = by_inst["Write a short poem about the sea."]
    assert {(r["input"], r["output"]) for r in gen} == {("abc", "cba"), ("xy", "yx")}
    assert all(r["self_instruct.max_rouge"] <= 0.7 for r in rows)
    # one backend call per round, decoding seed moves with the round
    boot = [d for p, d in calls if p.startswith("Come up with a series")]
    assert [d.seed for d in boot] == [3, 4, 5]
    # tokens: each completion counted once across rows and rejects
    total_in = sum(r["gen.tokens_in"] for r in rows + rejects)
    assert total_in == 3 * 10 + 2 * 5 + 2 * 7


def test_run_stops_at_num_instructions_and_max_rounds() -> None:
    seeds = ["Reverse the given word.", "Name a famous painter."]
    many = "\n".join(f"{i}. {t}" for i, t in enumerate([
        "Explain how vaccines train the immune system.", "Write a limerick about a lazy cat.",
        "Convert the recipe to metric units.", "List the planets in order from the sun."], start=10))
    complete, calls = _scripted([" Describe a day at the seaside with friends.\n" + many] * 5)
    cfg = si.SelfInstructConfig(num_instructions=3, request_batch_size=1, max_rounds=5, generate_instances=False)
    rows, _ = si.run_self_instruct(seeds, complete, Decoding(), cfg)
    assert [r["instruction"] for r in rows] == ["Describe a day at the seaside with friends.",
                                               "Explain how vaccines train the immune system.",
                                               "Write a limerick about a lazy cat."]
    assert all(r["output"] is None and r["self_instruct.round"] == 0 for r in rows)
    assert len([c for c in calls if c[0].startswith("Come up")]) == 1  # the target was met in round 0
    complete, calls = _scripted([])
    rows, rejects = si.run_self_instruct(seeds, complete, Decoding(), cfg)
    assert rows == [] and len([c for c in calls if c[0].startswith("Come up")]) == 5  # max_rounds, empty answers


# ---- through the operator, with the mock backend -------------------------------------
ANSWERS = {
    "Is it classification?": " No",
    "Come up with examples": "Example 1\nInput: 12\nOutput: twelve\nExample 2\nInput: 7\nOutput: seven",
    "Come up with a series of tasks": " Spell out the given number in English words.\n10. Draw a map of the old town.",
}


def test_operator_with_mock_backend_on_our_seed_file() -> None:
    seeds = [json.loads(line) for line in OUR_SEEDS.read_text(encoding="utf-8").splitlines()]
    assert 30 <= len(seeds) <= 60
    assert {"id", "name", "instruction", "instances", "is_classification"} <= set(seeds[0])
    assert any(s["is_classification"] for s in seeds) and not all(s["is_classification"] for s in seeds)
    op = SelfInstruct(num_instructions=2, request_batch_size=2, max_rounds=2,
                      backend={"type": "mock", "responses": ANSWERS})
    op.ensure_setup()
    result = op.process(from_rows([{k: v for k, v in s.items() if k != "instances"} for s in seeds]))
    kept = result.kept.to_pylist()
    assert sorted((r["instruction"], r["input"], r["output"]) for r in kept) == [
        ("Spell out the given number in english words.", "12", "twelve"),
        ("Spell out the given number in english words.", "7", "seven")]
    assert {r["id"] for r in kept} == {"gm_seed_0-si0-0", "gm_seed_0-si0-1"}
    assert all(r["text"] == f"{r['instruction']}\n\n{r['input']}\n\n{r['output']}" and r["gen.model"] == "mock"
               for r in kept)
    rejected = result.rejected.to_pylist()
    reasons = sorted(r["_reason"] for r in rejected)
    # two rounds of two prompts: one instruction kept, three repeats gated, four blacklisted
    assert reasons == ["blacklist: 'draw'"] * 4 + ["rouge_l: 1.000 > 0.7"] * 3
    assert len({r["id"] for r in rejected}) == len(rejected)


def test_self_instruct_recipe_with_the_mock_backend(tmp_path: Path) -> None:
    """recipes/self_instruct.yaml (the 175 shared seeds), its model swapped for the mock by --set."""
    answers = dict(ANSWERS)
    overrides = [f"steps.0.params.backend={json.dumps({'type': 'mock', 'responses': answers})}",
                 "steps.0.params.num_instructions=1", "steps.0.params.include_seeds=true"]
    summary = run_recipe(REPO / "recipes" / "self_instruct.yaml", runs_dir=tmp_path, overrides=overrides,
                         progress=False, report=False)
    out = [json.loads(line) for p in summary.outputs if p.suffix == ".jsonl"  # axolotl.yaml lies beside chat data
           for line in p.read_text().splitlines()]
    generated = [r for r in out if "-si" in r["id"]]
    assert [m["content"] for m in generated[0]["messages"]][-1] in ("twelve", "seven")
    assert len(generated) == 2 and len(out) - len(generated) >= 170  # seeds' own instances (some deduplicated)
    steps = {s["op"]: s for s in summary.stats["steps"]}
    assert steps["generate.self_instruct"]["dropped"]["blacklist"] >= 1


def test_tokens_of_a_surplus_completion_are_still_counted() -> None:
    complete, _ = _scripted([" Describe a day at the seaside with friends.",
                             " Explain how vaccines train the immune system."])
    cfg = si.SelfInstructConfig(num_instructions=1, request_batch_size=2, generate_instances=False)
    rows, rejects = si.run_self_instruct(["Name a famous painter."], complete, Decoding(), cfg)
    assert len(rows) == 1 and rejects == []
    assert rows[0]["gen.tokens_in"] == 2 * 10 + 5  # both bootstrap completions and the classification


def test_operator_without_instances_gives_one_row_per_instruction() -> None:
    answers = {"Is it classification?": " Yes",
               "Come up with a series": " Tell me whether the number is even or odd.\n10. Name the largest desert."}
    op = SelfInstruct(instruction_column="text", num_instructions=2, request_batch_size=1, max_rounds=1,
                      generate_instances=False, backend={"type": "mock", "responses": answers})
    op.ensure_setup()
    kept = op.process(from_rows([{"id": "s", "text": "Reverse the given word."}])).kept.to_pylist()
    assert [(r["id"], r["instruction"], r["is_classification"], r["output"]) for r in kept] == [
        ("s-si0-0", "Tell me whether the number is even or odd.", True, None),
        ("s-si1-0", "Name the largest desert.", True, None)]
