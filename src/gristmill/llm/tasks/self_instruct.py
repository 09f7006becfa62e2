"""Self-Instruct (Wang et al., 2023) as pure functions: prompts, parsers and the paper's filters.

This follows the reference code (yizhongw/self-instruct) step by step:

1. **Bootstrap** (bootstrap_instructions.py): a prompt lists 8 instructions -- 2 sampled
   from the machine-generated pool when it has them, the rest from the human seeds --
   shuffled, numbered, ending with ``9.``; the model continues the list.
   :func:`split_instructions` splits the continuation on ``\\n<number>. ``, collapses
   whitespace and applies ``str.capitalize()`` (as the reference does, which also
   lowercases the rest of the instruction). :func:`instruction_reject_reason` is the
   paper's filter: more than 3 and at most 150 words, no blacklisted keyword (whole word,
   case-insensitive), no ``Write a program`` prefix, no leading punctuation, no non-ASCII
   first character. A completion cut by ``max_tokens`` (``finish_reason == 'length'``) is
   dropped whole. The ROUGE-L gate (F1 <= 0.7 against every pooled instruction) lives in
   :mod:`gristmill.llm.rouge`.
2. **Classify** (identify_clf_or_not.py): a few-shot ``Is it classification?`` prompt,
   greedy, 3 tokens; the answer counts as yes only if it is ``Yes``/``yes``/``YES``.
3. **Instances** (generate_instances.py): output-first prompts for classification tasks
   (``Class label:`` then the input), input-first prompts otherwise (``Example N`` /
   ``Output:``), greedy.
4. **Parse instances** (prepare_for_finetuning.py): the reference's parsers; when the
   completion was cut by ``max_tokens`` the last instance is dropped; instances whose
   input equals the output, whose output is empty, or whose input or output ends with
   ``:`` are dropped; if one non-empty input has two different outputs the whole task is
   dropped; exact duplicates are removed (keeping first-seen order, where the reference's
   ``set()`` left it arbitrary); at most 5 instances per task are sampled.

Every drop has a reason in the project's ``rule: detail`` form.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gristmill.llm.tasks.self_instruct_templates import CLF_TEMPLATE, INPUT_FIRST_TEMPLATE, OUTPUT_FIRST_TEMPLATE
from gristmill.llm.types import Completion, Decoding, ParseError, Prompt
from gristmill.records import REASON
from gristmill.records import reason as reason_text

__all__ = [
    "BLACKLIST", "Instance", "bootstrap_decoding", "classify_decoding", "encode_prompt", "format_clf_prompt",
    "format_instance_prompt", "instance_decoding", "instruction_reject_reason", "parse_classification_instances",
    "parse_generation_instances", "parse_input_output", "parse_instances", "parse_is_classification",
    "parse_bootstrap", "run_self_instruct", "SelfInstructConfig", "sample_instances", "sample_prompt_instructions",
    "split_instructions",
]

# The paper's keyword blacklist (bootstrap_instructions.py), plus the words Stanford Alpaca
# added to it (video, audio, music, flowchart, diagram): tasks a text-only model cannot do.
BLACKLIST = ("image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
             "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram")
_BLACKLIST_RE = re.compile(r"\b(" + "|".join(re.escape(w) for w in BLACKLIST) + r")\b", re.IGNORECASE)
_SPLIT_RE = re.compile(r"\n\d+\s?\. ")
_OUTPUT_RE = re.compile(r"Output\s*\d*\s*:")
_INPUT_RE = re.compile(r"Input\s*\d*\s*:")
_INPUT_PREFIX_RE = re.compile(r"^Input\s*\d*\s*:")
_EXAMPLE_RE = re.compile(r"Example\s?\d*\.?")
MIN_WORDS, MAX_WORDS = 3, 150  # kept: MIN_WORDS < words <= MAX_WORDS
MAX_INSTANCES = 5


# ---- 1. bootstrap ------------------------------------------------------------------
def encode_prompt(instructions: Sequence[str], classification: bool = False) -> str:
    """The bootstrap prompt: a numbered task list the model continues (``N+1.`` at the end)."""
    if classification:
        prompt = ("Come up with a series of classification tasks. "
                  "Try to specify the possible output labels when possible.\n")
    else:
        prompt = "Come up with a series of tasks:\n"
    for idx, instruction in enumerate(instructions):
        instruction = re.sub(r"\s+", " ", instruction).strip().rstrip(":")
        prompt += f"{idx + 1}. {instruction}\n"
    prompt += f"{len(instructions) + 1}."
    return prompt


def sample_prompt_instructions(seeds: Sequence[str], machine: Sequence[str], rng: random.Random,
                               n: int = 8, n_machine: int = 2) -> list[str]:
    """``n`` in-context instructions: up to ``n_machine`` machine ones, the rest human seeds, shuffled."""
    chosen = rng.sample(list(machine), min(n_machine, len(machine)))
    chosen += rng.sample(list(seeds), min(n - len(chosen), len(seeds)))
    rng.shuffle(chosen)
    return chosen


def bootstrap_decoding(base: Decoding, n_prompt: int = 8) -> Decoding:
    """The reference's bootstrap settings on top of ``base``: stop at a blank line or item ``n+8``.

    The reference used temperature 0.7, top_p 0.5, max_tokens 1024 and presence_penalty 2
    (an OpenAI-only setting; ``base.repetition_penalty`` plays its role here). Those come
    from the operator's ``decoding`` parameter; only the stop strings are fixed.
    """
    last = 2 * n_prompt
    stop = tuple(dict.fromkeys((*base.stop, "\n\n", f"\n{last}", f"{last}.", f"{last} .")))
    return base.model_copy(update={"stop": stop})


def split_instructions(text: str) -> list[str]:
    """The instructions in a bootstrap continuation, whitespace-collapsed and ``capitalize()``-d."""
    out = []
    for raw in _SPLIT_RE.split(text):
        inst = re.sub(r"\s+", " ", raw).strip().capitalize()
        if inst:
            out.append(inst)
    return out


def instruction_reject_reason(inst: str) -> str | None:
    """Why the paper's filter drops ``inst`` (``None``: kept). The ROUGE-L gate is separate."""
    n = len(inst.split())
    if n <= MIN_WORDS:
        return reason_text("min_words", f"{n} <= {MIN_WORDS}")
    if n > MAX_WORDS:
        return reason_text("max_words", f"{n} > {MAX_WORDS}")
    m = _BLACKLIST_RE.search(inst)
    if m:
        return reason_text("blacklist", f"{m.group(1).lower()!r}")
    if inst.startswith("Write a program"):
        return "write_a_program: starts with 'Write a program'"
    if inst[0] in string.punctuation:
        return reason_text("leading_punctuation", f"{inst[0]!r}")
    if not inst[0].isascii():
        return reason_text("non_ascii_start", f"{inst[0]!r}")
    return None


def parse_bootstrap(text: str, finish_reason: str = "stop") -> list[tuple[str, str | None]]:
    """Each instruction of a bootstrap completion with its reject reason (``None``: passes the filter).

    Raises :class:`ParseError` for a completion cut by ``max_tokens`` (the reference drops
    it whole) or one that holds no instruction at all.
    """
    if finish_reason == "length":
        raise ParseError("truncated: finish_reason length")
    found = split_instructions(text)
    if not found:
        raise ParseError("no_instructions: empty completion")
    return [(inst, instruction_reject_reason(inst)) for inst in found]


# ---- 2. classify -------------------------------------------------------------------
def format_clf_prompt(instruction: str) -> str:
    """The few-shot 'is it a classification task?' prompt for ``instruction``."""
    return CLF_TEMPLATE + " " + instruction.strip() + "\n" + "Is it classification?"


def classify_decoding(base: Decoding) -> Decoding:
    """Greedy, 3 tokens, stop at a newline or 'Task' (the reference's settings)."""
    return base.model_copy(update={"temperature": 0.0, "max_tokens": 3, "stop": ("\n", "Task"), "num_beams": 1})


def parse_is_classification(text: str) -> bool:
    """True only for ``Yes``/``yes``/``YES`` (as the reference decides)."""
    return text.strip() in ("Yes", "yes", "YES")


# ---- 3. instances ------------------------------------------------------------------
def format_instance_prompt(instruction: str, is_classification: bool) -> str:
    """Output-first prompt for classification tasks, input-first otherwise."""
    template = OUTPUT_FIRST_TEMPLATE if is_classification else INPUT_FIRST_TEMPLATE
    return template + " " + instruction.strip() + "\n"


def instance_decoding(base: Decoding, is_classification: bool, max_instances: int = MAX_INSTANCES) -> Decoding:
    """Greedy; 300 tokens for classification tasks, 350 otherwise; stop at 'Example N+1' or 'Task:'."""
    return base.model_copy(update={
        "temperature": 0.0, "num_beams": 1, "max_tokens": 300 if is_classification else 350,
        "stop": (f"Example {max_instances + 1}", "Task:")})


@dataclass(frozen=True)
class Instance:
    """One (input, output) example of a task."""

    input: str
    output: str


Dropped = list[tuple[Instance, str]]  # instances a parser dropped, each with its reason


def parse_input_output(text: str) -> tuple[str, str]:
    """Split one example into (input, output) at ``Output:``; the reference's rules."""
    if _OUTPUT_RE.search(text):
        parts = _OUTPUT_RE.split(text)
        inst_input, inst_output = parts[0].strip(), parts[1].strip()
    else:
        inst_input, inst_output = "", text.strip()
    if _INPUT_RE.search(inst_output):  # several input/output pairs: keep the first output
        inst_output = _INPUT_RE.split(inst_output)[0].strip()
    inst_input = _INPUT_PREFIX_RE.sub("", inst_input).strip()
    return inst_input, inst_output


def _finish(instances: list[Instance], truncated: bool) -> tuple[list[Instance], Dropped]:
    dropped: Dropped = []
    if truncated and instances:
        dropped.append((instances[-1], "truncated: last instance cut by max_tokens"))
        instances = instances[:-1]
    valid = []
    for inst in instances:
        if inst.input == inst.output:
            dropped.append((inst, "instance_invalid: input equals output"))
        elif inst.output == "":
            dropped.append((inst, "instance_invalid: empty output"))
        elif inst.input.strip().endswith(":") or inst.output.strip().endswith(":"):
            dropped.append((inst, "instance_invalid: ends with ':'"))
        else:
            valid.append(inst)
    seen: dict[str, str] = {}
    for inst in valid:
        if inst.input and seen.setdefault(inst.input, inst.output) != inst.output:
            return [], dropped + [(i, "instance_conflict: same input, different outputs") for i in valid]
    unique: dict[Instance, None] = {}
    for inst in valid:
        if inst in unique:
            dropped.append((inst, "instance_duplicate: repeated"))
        unique.setdefault(inst)
    return list(unique), dropped


def parse_generation_instances(text: str, finish_reason: str = "stop") -> tuple[list[Instance], Dropped]:
    """Instances of an input-first completion, and the dropped ones with reasons."""
    text = text.strip()
    if _EXAMPLE_RE.search(text):
        pieces = [p.strip() for p in _EXAMPLE_RE.split(text) if p.strip()]
        instances = [Instance(*(s.strip() for s in parse_input_output(p))) for p in pieces]
    elif _OUTPUT_RE.search(text):
        instances = [Instance(*(s.strip() for s in parse_input_output(text)))]
    else:
        raise ParseError("no_instances: no 'Example' or 'Output:' in the completion")
    return _finish(instances, finish_reason == "length")


def parse_classification_instances(text: str, finish_reason: str = "stop") -> tuple[list[Instance], Dropped]:
    """Instances of an output-first completion (label line, then the input), and the dropped ones."""
    if "Class label:" not in text:
        raise ParseError("no_instances: no 'Class label:' in the completion")
    instances = []
    for piece in text.split("Class label:")[1:]:
        fields = piece.strip().split("\n", 1)
        label = fields[0].strip()
        inst_input = fields[1].strip() if len(fields) == 2 else ""
        instances.append(Instance(inst_input, label))
    return _finish(instances, finish_reason == "length")


def parse_instances(text: str, is_classification: bool, finish_reason: str = "stop") -> tuple[list[Instance], Dropped]:
    """The right parser for the task type; raises :class:`ParseError` when no instance can be read."""
    if is_classification:
        return parse_classification_instances(text, finish_reason)
    return parse_generation_instances(text, finish_reason)


def sample_instances(instances: Sequence[Instance], rng: random.Random, k: int = MAX_INSTANCES) -> list[Instance]:
    """At most ``k`` instances, sampled as the reference does (``random.sample``)."""
    return rng.sample(list(instances), min(len(instances), k))


# ---- the whole loop ----------------------------------------------------------------
Complete = Callable[[Sequence[Prompt], Decoding], list[Completion]]


@dataclass(frozen=True)
class SelfInstructConfig:
    """Settings of one Self-Instruct run (the operator's parameters, minus the backend)."""

    num_instructions: int = 100
    num_prompt_instructions: int = 8
    num_machine_in_prompt: int = 2
    request_batch_size: int = 8
    max_rounds: int = 50
    rouge_threshold: float = 0.7
    classification_only: bool = False
    generate_instances: bool = True
    max_instances: int = MAX_INSTANCES
    seed: int = 0
    workers: int = 1


class _Ledger:
    """Charges each completion's tokens to exactly one output or reject row, so sums are right."""

    def __init__(self) -> None:
        # id -> the completion itself: holding it keeps the id from being reused by a new object
        self._charged: dict[int, Completion] = {}

    def charge(self, row: dict[str, Any], *completions: Completion | None) -> dict[str, Any]:
        tin = tout = 0
        cached = True
        for c in completions:
            if c is None:
                continue
            cached = cached and bool(c.cached)
            if id(c) not in self._charged:
                self._charged[id(c)] = c
                tin += c.tokens_in
                tout += c.tokens_out
        row.update({"gen.tokens_in": tin, "gen.tokens_out": tout,
                    "gen.cached": cached if any(c is not None for c in completions) else False})
        return row

    def settle(self, completions: Sequence[Completion], rows: list[dict[str, Any]]) -> None:
        """Charge completions no row came from (a last round's surplus) to the last row."""
        if not rows:
            return
        for c in completions:
            if id(c) not in self._charged:
                self._charged[id(c)] = c
                rows[-1]["gen.tokens_in"] += c.tokens_in
                rows[-1]["gen.tokens_out"] += c.tokens_out


@dataclass
class _Task:
    instruction: str
    meta: dict[str, Any]
    bootstrap: Completion
    is_classification: bool = False
    classify: Completion | None = None


def run_self_instruct(seeds: Sequence[str], complete: Complete, decoding: Decoding,
                      config: SelfInstructConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Bootstrap, classify and instantiate tasks from ``seeds``; returns (rows, rejects).

    ``complete(prompts, decoding)`` is the backend call (one call per round and step).
    Rounds send ``request_batch_size`` bootstrap prompts each (decoding seed = base seed
    + round, so every round samples anew and reruns hit the response cache) until
    ``num_instructions`` instructions passed every filter or ``max_rounds`` ran; the last
    round's surplus instructions are not gated. Rows: one per instance (``instruction``,
    ``input``, ``output``, ``is_classification``, ``self_instruct.*``), or one per
    instruction when ``generate_instances`` is off. Rejects carry ``_reason`` and, when
    the reason concerns a completion, its text in ``gen.raw``.
    """
    from gristmill.llm.rouge import RougeLIndex

    cfg = config
    rng = random.Random(cfg.seed)
    ledger = _Ledger()
    seeds = [s for s in dict.fromkeys(s.strip() for s in seeds if s and s.strip())]
    rejects: list[dict[str, Any]] = []
    if not seeds:
        return [], []
    index = RougeLIndex(seeds, workers=cfg.workers)
    tasks: list[_Task] = []
    sent: list[Completion] = []
    boot = bootstrap_decoding(decoding, cfg.num_prompt_instructions)
    for rnd in range(cfg.max_rounds):
        if len(tasks) >= cfg.num_instructions:
            break
        machine = [t.instruction for t in tasks]
        prompts = [encode_prompt(sample_prompt_instructions(seeds, machine, rng, cfg.num_prompt_instructions,
                                                            cfg.num_machine_in_prompt), cfg.classification_only)
                   for _ in range(cfg.request_batch_size)]
        completions = complete(prompts, boot.model_copy(update={"seed": decoding.seed + rnd}))
        sent.extend(completions)
        candidates: list[tuple[str, Completion]] = []
        for c in completions:
            if c.finish_reason == "error":
                rejects.append(ledger.charge({"gen.raw": None, REASON: reason_text("backend", str(c.error))}, c))
                continue
            try:
                parsed = parse_bootstrap(c.text, c.finish_reason)
            except ParseError as exc:
                rejects.append(ledger.charge({"gen.raw": c.text, REASON: str(exc)}, c))
                continue
            for inst, reason in parsed:
                if reason:
                    rejects.append(ledger.charge({"instruction": inst, REASON: reason}, c))
                else:
                    candidates.append((inst, c))
        for inst, c in candidates:
            if len(tasks) >= cfg.num_instructions:
                break  # the round's surplus is never gated
            (v,) = index.gate([inst], threshold=cfg.rouge_threshold)
            meta = {"self_instruct.max_rouge": v.max_score,
                    "self_instruct.most_similar": index.texts[v.most_similar] if v.most_similar >= 0 else None,
                    "self_instruct.avg_rouge": v.mean_score, "self_instruct.round": rnd}
            if v.kept:
                tasks.append(_Task(inst, meta, c))
            else:
                rejects.append(ledger.charge({"instruction": inst, **meta,
                                              REASON: reason_text("rouge_l", f"{v.max_score:.3f} > {cfg.rouge_threshold:g}")}, c))
    rows, rejects = _classify_and_instantiate(tasks, complete, decoding, cfg, rng, ledger, rejects)
    ledger.settle(sent, rows or rejects)
    return rows, rejects


def _classify_and_instantiate(tasks: list[_Task], complete: Complete, decoding: Decoding, cfg: SelfInstructConfig,
                              rng: random.Random, ledger: _Ledger,
                              rejects: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    if not tasks:
        return rows, rejects
    # 2. classification
    if cfg.classification_only:
        for t in tasks:
            t.is_classification = True
    else:
        answers = complete([format_clf_prompt(t.instruction) for t in tasks], classify_decoding(decoding))
        for t, c in zip(tasks, answers):
            t.classify = c
            t.is_classification = c.finish_reason != "error" and parse_is_classification(c.text)
    base = [(t, {"instruction": t.instruction, "is_classification": t.is_classification, **t.meta,
                 "self_instruct.task": i}) for i, t in enumerate(tasks)]
    if not cfg.generate_instances:
        for t, row in base:
            rows.append(ledger.charge({**row, "input": "", "output": None, "self_instruct.instance": 0},
                                      t.bootstrap, t.classify))
        return rows, rejects
    # 3. instances: classification tasks and the others have their own decoding, hence two calls
    completions: dict[int, Completion] = {}
    for clf in (True, False):
        group = [i for i, t in enumerate(tasks) if t.is_classification == clf]
        if group:
            got = complete([format_instance_prompt(tasks[i].instruction, clf) for i in group],
                           instance_decoding(decoding, clf, cfg.max_instances))
            completions.update(zip(group, got))
    # 4. parse
    for i, (t, row) in enumerate(base):
        c = completions[i]
        charge = (t.bootstrap, t.classify, c)
        if c.finish_reason == "error":
            rejects.append(ledger.charge({**row, "gen.raw": None, REASON: reason_text("backend", str(c.error))}, *charge))
            continue
        try:
            instances, dropped = parse_instances(c.text, t.is_classification, c.finish_reason)
        except ParseError as exc:
            rejects.append(ledger.charge({**row, "gen.raw": c.text, REASON: str(exc)}, *charge))
            continue
        for inst, reason in dropped:
            rejects.append(ledger.charge({**row, "input": inst.input, "output": inst.output, REASON: reason}, *charge))
        if not instances and not dropped:
            rejects.append(ledger.charge({**row, "gen.raw": c.text, REASON: "no_instances: nothing to parse"},
                                         *charge))
        for k, inst in enumerate(sample_instances(instances, rng, cfg.max_instances)):
            rows.append(ledger.charge({**row, "input": inst.input, "output": inst.output,
                                       "self_instruct.instance": k}, *charge))
    return rows, rejects
