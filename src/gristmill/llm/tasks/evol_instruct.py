"""Evol-Instruct (WizardLM, Xu et al., 2023) as pure functions: evolution prompts and elimination rules.

In-depth evolving rewrites an instruction into a harder one with one of five methods
(add constraints, deepen, concretize, increase reasoning steps, complicate input);
in-breadth evolving creates a new, rarer instruction in the same domain. The prompt
wording follows the paper's templates (and nlpxucan/WizardLM Evol_Instruct/depth.py,
breadth.py); "complicate input" is described in the paper through examples, so its method
sentence here is ours.

Elimination (the paper's section 3.3), in :func:`elimination_reason`:

1. *no information gain*: the evolved instruction says nothing more than the original.
   The paper asks ChatGPT with the equality prompt of its appendix
   (:func:`equality_prompt` / :func:`parse_equality`, used when the operator's
   ``equality_check`` is ``llm``). The cheap proxy (``equality_check: rouge``, the
   default) calls the two equal when the evolved one adds fewer than ``min_new_words``
   new words or their ROUGE-L F1 is at least ``max_rouge`` (defaults 3 and 0.9).
2. the response to the evolved instruction contains "sorry" and is short (< 80 words).
3. the response is only punctuation and stop words.
4. the evolved instruction copies words of the evolving prompt ("#Rewritten Prompt#",
   "given prompt", "rewritten prompt", "created prompt", ...).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gristmill.llm.rouge import rouge_l_f1, tokenize
from gristmill.llm.types import Completion, Decoding, ParseError, Prompt
from gristmill.records import REASON
from gristmill.records import reason as reason_text

__all__ = ["BREADTH", "DEPTH_METHODS", "METHODS", "STOP_WORDS", "copied_prompt_words", "elimination_reason",
           "equality_prompt", "evolve_prompt", "information_gain_reason", "parse_equality", "parse_evolved",
           "response_prompt", "response_reason", "run_evolution", "EvolConfig"]

_DEPTH_BASE = (
    "I want you act as a Prompt Rewriter.\n"
    "Your objective is to rewrite a given prompt into a more complex version to make those famous AI systems "
    "(e.g., chatgpt and GPT4) a bit harder to handle.\n"
    "But the rewritten prompt must be reasonable and must be understood and responded by humans.\n"
    "Your rewriting cannot omit the non-text parts such as the table and code in #The Given Prompt#:. "
    "Also, please do not omit the input in #The Given Prompt#.\n"
    "You SHOULD complicate the given prompt using the following method:\n"
    "{method}\n"
    "You should try your best not to make the #Rewritten Prompt# become verbose, #Rewritten Prompt# can only add "
    "10 to 20 words into #The Given Prompt#.\n"
    "'#The Given Prompt#', '#Rewritten Prompt#', 'given prompt' and 'rewritten prompt' are not allowed to appear "
    "in #Rewritten Prompt#\n"
    "#The Given Prompt#:\n{instruction}\n"
    "#Rewritten Prompt#:\n"
)

DEPTH_METHODS: dict[str, str] = {
    "constraints": "Please add one more constraints/requirements into #The Given Prompt#",
    "deepen": "If #The Given Prompt# contains inquiries about certain issues, the depth and breadth of the "
              "inquiry can be increased.",
    "concretize": "Please replace general concepts with more specific concepts.",
    "reasoning": "If #The Given Prompt# can be solved with just a few simple thinking processes, you can rewrite "
                 "it to explicitly request multiple-step reasoning.",
    "complicate_input": "Please add a small piece of structured input data (such as a table, JSON, XML, a code "
                        "snippet or a list of values) that #The Given Prompt# must work with, and include that "
                        "data in #Rewritten Prompt#.",
}

_BREADTH_BASE = (
    "I want you act as a Prompt Creator.\n"
    "Your goal is to draw inspiration from the #Given Prompt# to create a brand new prompt.\n"
    "This new prompt should belong to the same domain as the #Given Prompt# but be even more rare.\n"
    "The LENGTH and complexity of the #Created Prompt# should be similar to that of the #Given Prompt#.\n"
    "The #Created Prompt# must be reasonable and must be understood and responded by humans.\n"
    "'#Given Prompt#', '#Created Prompt#', 'given prompt' and 'created prompt' are not allowed to appear in "
    "#Created Prompt#\n"
    "#Given Prompt#:\n{instruction}\n"
    "#Created Prompt#:\n"
)

BREADTH = "breadth"
METHODS = (*DEPTH_METHODS, BREADTH)

# Words of the evolving prompts an evolved instruction must not copy (rule 4).
COPIED_PHRASES = ("#the given prompt#", "#given prompt#", "#rewritten prompt#", "#created prompt#",
                  "given prompt", "rewritten prompt", "created prompt", "prompt rewriter", "prompt creator")

# A small English stop-word list (NLTK's, lowercased) for rule 3.
STOP_WORDS = frozenset("""
a about above after again against all am an and any are aren't as at be because been before being below between
both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each few for from
further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself him himself his
how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my myself no nor
not of off on once only or other ought our ours ourselves out over own same shan't she she'd she'll she's should
shouldn't so some such than that that's the their theirs them themselves then there there's these they they'd
they'll they're they've this those through to too under until up very was wasn't we we'd we'll we're we've were
weren't what what's when when's where where's which while who who's whom why why's with won't would wouldn't
you you'd you'll you're you've your yours yourself yourselves
""".split())

_SORRY_MAX_WORDS = 80


def evolve_prompt(instruction: str, method: str) -> str:
    """The evolving prompt for ``instruction`` with ``method`` (a depth method name or ``breadth``)."""
    if method == BREADTH:
        return _BREADTH_BASE.format(instruction=instruction.strip())
    if method not in DEPTH_METHODS:
        raise ValueError(f"unknown evolution method {method!r}; expected one of {', '.join(METHODS)}")
    return _DEPTH_BASE.format(method=DEPTH_METHODS[method], instruction=instruction.strip())


_LABEL_RE = re.compile(r"^\s*#?\s*(rewritten|created)\s+prompt\s*#?\s*:?\s*", re.IGNORECASE)


def parse_evolved(text: str) -> str:
    """The evolved instruction from a completion; rule 4 (copied prompt words) raises :class:`ParseError`.

    A leading "#Rewritten Prompt#:" label the model repeats is stripped first (that is
    formatting, not content); such words anywhere else eliminate the instruction.
    """
    evolved = _LABEL_RE.sub("", text.strip()).strip()
    if not evolved:
        raise ParseError("empty: no instruction in the completion")
    copied = copied_prompt_words(evolved)
    if copied:
        raise ParseError(f"copied_prompt_words: {copied!r}")
    return evolved


def copied_prompt_words(instruction: str) -> str | None:
    """The first evolving-prompt phrase ``instruction`` contains (case-insensitive), if any."""
    low = instruction.lower()
    return next((p for p in COPIED_PHRASES if p in low), None)


def equality_prompt(first: str, second: str) -> str:
    """The paper's equality check (appendix): do the two instructions ask the same thing?"""
    return ("Here are two Instructions to ChatGPT AI, do you think they are equal to each other, which meet the "
            "following requirements:\n"
            "1. They have same constraints and requirments.\n"
            "2. They have same depth and breadth of the inquiry.\n"
            f"The First Prompt: {first.strip()}\n"
            f"The Second Prompt: {second.strip()}\n"
            "Your Judgement (Just answer: Equal or Not Equal. No need to explain the reason.):")


def parse_equality(text: str) -> bool:
    """True when the judge says ``Equal`` (and not ``Not Equal``)."""
    low = text.strip().lower()
    if "not equal" in low or "not_equal" in low:
        return False
    if "equal" in low:
        return True
    raise ParseError(f"equality_unparsed: {text.strip()[:40]!r}")


def information_gain_reason(original: str, evolved: str, *, min_new_words: int = 3,
                            max_rouge: float = 0.9) -> str | None:
    """Rule 1 by a cheap proxy: too few new words, or ROUGE-L F1 with the original too high."""
    old = set(tokenize(original))
    new = [t for t in dict.fromkeys(tokenize(evolved)) if t not in old and t not in STOP_WORDS]
    if len(new) < min_new_words:
        return reason_text("no_information_gain", f"{len(new)} new words < {min_new_words}")
    f1 = rouge_l_f1(original, evolved)
    if f1 >= max_rouge:
        return reason_text("no_information_gain", f"rouge_l {f1:.3f} >= {max_rouge}")
    return None


def response_prompt(instruction: str) -> list[dict[str, str]]:
    """Ask the model to answer the evolved instruction (its response is checked by rules 2 and 3)."""
    return [{"role": "user", "content": instruction.strip()}]


_WORD_RE = re.compile(r"[a-z0-9']+")


def response_reason(response: str) -> str | None:
    """Rules 2 and 3 on the model's response to the evolved instruction."""
    words = response.split()
    if "sorry" in response.lower() and len(words) < _SORRY_MAX_WORDS:
        return reason_text("sorry_response", f"'sorry' in a {len(words)}-word response")
    content = [w for w in _WORD_RE.findall(response.lower().replace("\u2019", "'")) if w.strip("'")]
    if all(w.strip("'") in STOP_WORDS for w in content):
        return "empty_response: only punctuation and stop words"
    return None


def elimination_reason(original: str, evolved: str, response: str | None, *, equal: bool | None = None,
                       check_gain: bool = True, min_new_words: int = 3, max_rouge: float = 0.9) -> str | None:
    """The first elimination rule an evolution fails, or ``None``.

    ``equal`` is the LLM equality verdict when one was asked (rule 1 then uses it instead
    of the proxy); ``check_gain=False`` skips rule 1; ``response`` is the model's answer to
    the evolved instruction (rules 2 and 3 are skipped when it is ``None``).
    """
    copied = copied_prompt_words(evolved)
    if copied:
        return reason_text("copied_prompt_words", f"{copied!r}")
    if equal is not None:
        if equal:
            return "no_information_gain: judged equal to the original"
    elif check_gain:
        reason = information_gain_reason(original, evolved, min_new_words=min_new_words, max_rouge=max_rouge)
        if reason:
            return reason
    if response is not None:
        return response_reason(response)
    return None


# ---- the whole loop ----------------------------------------------------------------
Complete = Callable[[Sequence[Prompt], Decoding], list[Completion]]


@dataclass(frozen=True)
class EvolConfig:
    """Settings of an Evol-Instruct run (the operator's parameters, minus the backend)."""

    methods: tuple[str, ...] = METHODS
    evolutions_per_row: int = 1
    rounds: int = 1
    equality_check: str = "rouge"   # rouge | llm | none
    min_new_words: int = 3
    max_rouge: float = 0.9
    generate_response: bool = True
    seed: int = 0


def run_evolution(rows: Sequence[dict[str, Any]], instructions: Sequence[str | None], complete: Complete,
                  decoding: Decoding, response_decoding: Decoding,
                  config: EvolConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Evolve each instruction ``rounds`` times; returns (evolved rows, rejects).

    Round r evolves every instruction that survived round r-1 (round 1: the inputs) with
    ``evolutions_per_row`` methods picked by a generator seeded with ``seed`` and the
    row's position. Per round, at most four backend calls: evolve, equality check (only
    with ``equality_check: llm``), respond. Each kept row has ``instruction`` (the evolved
    one), ``output`` (the model's response, when ``generate_response``), ``evol.method``,
    ``evol.round``, ``evol.original`` and ``gen.parent`` (the input row's id).
    """
    cfg = config
    out: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    # (input row, instruction to evolve, lineage of methods)
    active: list[tuple[int, str, tuple[str, ...]]] = []
    for i, inst in enumerate(instructions):
        if inst is None or not str(inst).strip():
            rejects.append({**rows[i], REASON: "prompt: no instruction"})
        else:
            active.append((i, str(inst).strip(), ()))
    for rnd in range(1, cfg.rounds + 1):
        jobs = []  # (row index, original, method, lineage)
        for i, inst, lineage in active:
            rng = random.Random(f"{cfg.seed}:{rnd}:{i}:{len(lineage)}")
            for method in rng.sample(list(cfg.methods), min(cfg.evolutions_per_row, len(cfg.methods))):
                jobs.append((i, inst, method, lineage))
        if not jobs:
            break
        evolved_c = complete([evolve_prompt(inst, m) for _, inst, m, _ in jobs],
                             decoding.model_copy(update={"seed": decoding.seed + rnd}))
        stage = []  # jobs whose evolution parsed: (job, evolved text, completion)
        for job, c in zip(jobs, evolved_c):
            i, inst, method, lineage = job
            parent = rows[i].get("id") if rows[i].get("id") is not None else f"row{i}"
            path = "/".join((*lineage, method))
            meta = {"id": f"{parent}-{path}", "gen.parent": parent, "evol.method": method, "evol.round": rnd,
                    "evol.original": inst, "evol.lineage": path}
            if c.finish_reason == "error":
                rejects.append(_charge({**rows[i], **meta, "gen.raw": None, REASON: reason_text("backend", str(c.error))}, c))
                continue
            try:
                evolved = parse_evolved(c.text)
            except ParseError as exc:
                rejects.append(_charge({**rows[i], **meta, "gen.raw": c.text, REASON: str(exc)}, c))
                continue
            stage.append((job, meta, evolved, [c]))
        equal: list[bool | None] = [None] * len(stage)
        if cfg.equality_check == "llm" and stage:
            eq_c = complete([equality_prompt(job[1], ev) for job, _, ev, _ in stage],
                            decoding.model_copy(update={"temperature": 0.0, "max_tokens": 8, "num_beams": 1}))
            for k, c in enumerate(eq_c):
                stage[k][3].append(c)
                if c.finish_reason != "error":
                    try:
                        equal[k] = parse_equality(c.text)
                    except ParseError:
                        equal[k] = None  # an unreadable verdict falls back to the proxy
        responses: list[Completion | None] = [None] * len(stage)
        if cfg.generate_response and stage:
            responses = list(complete([response_prompt(ev) for _, _, ev, _ in stage], response_decoding))
        survivors = []
        for k, ((i, inst, method, lineage), meta, evolved, cs) in enumerate(stage):
            r = responses[k]
            if r is not None:
                cs.append(r)
            row = {**rows[i], **meta, "instruction": evolved, "text": evolved}
            if r is not None and r.finish_reason == "error":
                rejects.append(_charge({**row, "gen.raw": None, REASON: reason_text("backend", str(r.error))}, *cs))
                continue
            reason = elimination_reason(inst, evolved, r.text if r is not None else None,
                                        equal=equal[k] if cfg.equality_check == "llm" else None,
                                        check_gain=cfg.equality_check != "none",
                                        min_new_words=cfg.min_new_words, max_rouge=cfg.max_rouge)
            if reason:
                rejects.append(_charge({**row, "gen.raw": r.text if r is not None else None, REASON: reason}, *cs))
                continue
            output = r.text.strip() if r is not None else None
            out.append(_charge({**row, "input": "", "output": output,
                                "text": "\n\n".join(x for x in (evolved, output) if x)}, *cs))
            survivors.append((i, evolved, (*lineage, method)))
        active = survivors
    return out, rejects


def _charge(row: dict[str, Any], *completions: Completion) -> dict[str, Any]:
    row.update({"gen.tokens_in": sum(c.tokens_in for c in completions),
                "gen.tokens_out": sum(c.tokens_out for c in completions),
                "gen.cached": all(c.cached for c in completions)})
    return row
