"""Multi-turn dialogues: one model plays the user and the assistant, with separate prompts, in lockstep.

A dialogue is grounded in a persona (who the user is), a document (what the talk is about),
or both. Turns alternate user, assistant, user, ... and a dialogue always ends on an
assistant turn. Each side has its own prompt (:func:`user_prompt`, :func:`assistant_prompt`):

* the **user simulator** gets a system prompt that makes it ask, never answer (plus the
  persona). With a document, its user turn *i* shows the document and asks what a curious
  reader would ask about sentence *i* of it (:func:`sentences`, cycling), so each question has
  a new focus; persona only, the first turn asks for help with something and a later one shows
  only the last exchange ("You asked ... The assistant answered ...") and asks for a follow-up
  (small models echo a whole transcript back instead of continuing it). Once the dialogue has
  ``min_turns`` turns the prompt also tells it to write the end marker when it has nothing
  more to ask;
* the **assistant** gets its system prompt (with the document) and the dialogue so far as
  chat messages.

:func:`run_dialogues` drives every dialogue of a batch in lockstep through a
``complete(prompts, decoding)`` callable: step *k* asks for turn *k + 1* of every live
dialogue in one call, so a shard costs ``max_turns`` calls, one request per turn per
dialogue. A reply is read by :func:`parse_turn` (speaker labels such as ``You:`` or
``Assistant:`` stripped, anything after a second speaker's label dropped, a user turn cut to
its first paragraph, a reply cut by ``max_tokens`` trimmed to its last complete sentence) and
checked by :func:`repeats` (the same text as an earlier turn, the same first 8 words, for a user
turn an earlier turn quoted whole, and a ROUGE-L F1 of ``repeat_rouge`` (0.7) or more: a user turn
against any earlier turn, an assistant turn against the earlier answers).

Stop rule, in order:

1. a reply that holds the **end marker** (``[END]``) ends the dialogue: the text before it
   is kept as the turn (a user turn with text still gets its answer, then the dialogue
   ends); a reply that is only the marker ends it at the last complete exchange;
2. a **failed turn** (the request failed: ``backend: transient: ... (turn 3)``; or the reply
   is empty, echoes the simulator's prompt, repeats an earlier turn, or was cut with no
   complete sentence: ``turn_parse: turn 3: empty reply``, ``turn_parse: turn 5: repeats
   turn 1``) ends the dialogue, which is **cut** to its last complete exchange;
3. at ``max_turns`` turns the dialogue ends.

A dialogue that ends with fewer than ``min_turns`` turns is rejected: by its failed turn's
reason when a turn failed, else ``too_short: ended by the end marker after 2 turns
(min_turns 4)``. A cut dialogue that still has ``min_turns`` turns is kept, and its failed
turn is reported on its own as well (:attr:`DialogueResult.failure`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gristmill.llm.rouge import rouge_l_f1
from gristmill.llm.types import Completion, Decoding, Message, ParseError, Prompt
from gristmill.records import Reason

__all__ = ["ASSISTANT_SYSTEM", "DialogueConfig", "DialogueResult", "END_MARKER", "Failure", "Seed",
           "USER_SYSTEM", "assistant_prompt", "parse_turn", "repeats", "run_dialogues", "sentences", "transcript",
           "user_prompt"]

Complete = Callable[[Sequence[Prompt], Decoding], list[Completion]]

END_MARKER = "[END]"
USER_SYSTEM = "You play a curious person who asks an AI assistant questions. You never answer; you only ask."
ASSISTANT_SYSTEM = "You are a helpful assistant."
USER, ASSISTANT = "user", "assistant"

_LABELS = r"(?:you|user|me|human|question|q|assistant|ai|answer|a|bot)"
_PREFIX = re.compile(rf"^\s*[*#]*\s*{_LABELS}\s*[*]*\s*:[*\s]*", re.IGNORECASE)
_NEXT_SPEAKER = re.compile(rf"\n\s*[*#]*\s*{_LABELS}\s*[*]*\s*:", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*(?=\s|$)")
_SENTENCE_SPLIT = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'”’)\]]))\s+(?=[\"“‘(\[A-Z0-9])")
_NOT_WORD = re.compile(r"[\W_]+")
_PARAGRAPH = re.compile(r"\n\s*\n")
_PREAMBLE = re.compile(r'^[^"“\n]{0,120}:\s*["“](?P<q>[^"”\n]+)["”]?\s*$')
_ECHO = re.compile(r"^\W*(the assistant answered|you asked|text\s*:|what question would a curious reader)",
                   re.IGNORECASE)
OPENING = 8  # words: two turns opening with the same 8 words are a repeat
_QUOTES = "\"'“”‘’"


@dataclass(frozen=True)
class Seed:
    """What grounds one dialogue: the user's persona and/or the document it is about."""

    persona: str | None = None
    document: str | None = None

    def __post_init__(self) -> None:
        if not (self.persona or "").strip() and not (self.document or "").strip():
            raise ParseError("no persona or document")


@dataclass(frozen=True)
class DialogueConfig:
    """The stop rule and the two sides' instructions (the operator's parameters, minus the backend)."""

    max_turns: int = 6
    min_turns: int = 4
    end_marker: str = END_MARKER
    trim_truncated: bool = True
    user_system: str = USER_SYSTEM
    assistant_system: str = ASSISTANT_SYSTEM
    user_max_tokens: int | None = 64
    repeat_rouge: float = 0.7


@dataclass(frozen=True)
class Failure:
    """A turn that failed: its number (1-based), whose turn it was, why, and the raw reply."""

    turn: int
    role: str
    reason: Reason
    raw: str | None
    completion: Completion | None


@dataclass
class DialogueResult:
    """A finished dialogue: the kept turns (complete exchanges), how it stopped, what failed, what it cost.

    ``stop`` is ``max_turns``, ``end_marker`` or ``cut`` (a turn failed); ``kept`` says whether it
    reached ``min_turns``. ``completions`` are every reply received, the failed one included.
    """

    seed: Seed
    system: str
    turns: list[Message] = field(default_factory=list)
    stop: str = ""
    failure: Failure | None = None
    completions: list[Completion] = field(default_factory=list)
    kept: bool = False
    reason: Reason | None = None


# ---- prompts -----------------------------------------------------------------------
def _user_system(seed: Seed, config: DialogueConfig) -> str:
    persona = (seed.persona or "").strip()
    return f"{config.user_system} You are {persona.rstrip('.')}." if persona else config.user_system


def assistant_system(seed: Seed, config: DialogueConfig) -> str:
    """The assistant's system prompt: its instructions, then the document to answer from."""
    document = (seed.document or "").strip()
    if not document:
        return config.assistant_system
    return f"{config.assistant_system} Answer the user's questions using this text:\n\n{document}"


def sentences(text: str) -> list[str]:
    """``text`` cut into sentences (after ``.``, ``!`` or ``?`` and a space, before a capital, digit or quote)."""
    return [p.strip() for p in _SENTENCE_SPLIT.split(text.strip()) if p.strip()]


def user_prompt(seed: Seed, turns: Sequence[Message], config: DialogueConfig) -> list[Message]:
    """The user simulator's prompt for the next user turn after ``turns`` (complete exchanges).

    With a document, user turn *i* asks about sentence *i* of it (cycling): the document, then
    ``What question would a curious reader ask about this sentence of the text: "..."?``. Persona only:
    the first turn asks for help with something, a later one for a follow-up to the last exchange."""
    system = {"role": "system", "content": _user_system(seed, config)}
    document = (seed.document or "").strip()
    end = (f" If you have nothing more to ask, write only {config.end_marker}."
           if turns and len(turns) >= config.min_turns else "")
    if document:
        parts = sentences(document)
        focus = parts[(len(turns) // 2) % len(parts)]
        ask = (f"Text:\n{document}\n\nWhat question would a curious reader ask about this sentence of the text: "
               f"\"{focus}\"?{end} Write only the question.")
    elif not turns:
        ask = "Ask me, an AI assistant, one question you would like help with. Write only the question."
    else:
        ask = (f"You asked: {turns[-2]['content']}\nThe assistant answered: {turns[-1]['content']}\n\n"
               f"Ask one short follow-up question about the answer.{end} Write only the question.")
    return [system, {"role": "user", "content": ask}]


def assistant_prompt(system: str, turns: Sequence[Message]) -> list[Message]:
    """The assistant's prompt: its system prompt and the dialogue so far (ending on a user turn)."""
    return [{"role": "system", "content": system}, *({"role": t["role"], "content": t["content"]} for t in turns)]


# ---- reading a reply -----------------------------------------------------------------
def _trim_to_sentence(text: str) -> str:
    ends = list(_SENTENCE_END.finditer(text))
    return text[: ends[-1].end()].strip() if ends else ""


def parse_turn(text: str, *, role: str = USER, end_marker: str = END_MARKER, finish_reason: str = "stop",
               trim_truncated: bool = True) -> tuple[str, bool]:
    """A reply as ``(turn text, ended)``: ``ended`` when it holds the end marker (the text is what
    came before it, possibly empty). A leading speaker label is dropped, and so is everything from a
    second speaker's label on; a user turn is its first paragraph, and a user reply that echoes the
    instruction before a quoted question (``What would a reader ask: "Why ...?"``) is the question.
    Raises :class:`ParseError` (``empty reply``, ``echoes the prompt`` -- a user reply that starts like
    the simulator's own prompt --, ``truncated at max_tokens``, ``truncated with no complete sentence``)
    when there is no usable turn."""
    ended = bool(end_marker) and end_marker in text
    if ended:
        text = text[: text.index(end_marker)]
    text = _PREFIX.sub("", text.strip(), count=1)
    m = _NEXT_SPEAKER.search(text)
    if m:  # the model went on to write the other side too
        text = text[: m.start()]
        finish_reason = "stop"
    text = text.strip()
    if role == USER:
        first = _PARAGRAPH.split(text, maxsplit=1)[0].strip()
        if first != text:
            text, finish_reason = first, "stop"
        quoted = _PREAMBLE.match(text)
        if quoted:
            text = quoted.group("q").strip()
        if _ECHO.match(text):
            raise ParseError("echoes the prompt")
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    if finish_reason == "length" and not ended and text:
        if not trim_truncated:
            raise ParseError("truncated at max_tokens")
        text = _trim_to_sentence(text)
        if not text:
            raise ParseError("truncated with no complete sentence")
    if not text and not ended:
        raise ParseError("empty reply")
    return text, ended


def _key(text: str) -> str:
    return _NOT_WORD.sub(" ", text.lower()).strip()


def repeats(text: str, turns: Sequence[Message], *, role: str = USER, rouge: float = 1.0) -> int | None:
    """The 1-based number of the earlier turn ``text`` repeats, or None. Compared lowercased with
    punctuation dropped, a repeat is the same text or the same first :data:`OPENING` words as an
    earlier turn; a user turn also repeats an earlier turn (of 4 words or more) it quotes whole. With
    ``rouge < 1``, a ROUGE-L F1 of at least ``rouge`` is a repeat too: a user turn against every earlier
    turn (the simulator parroting the assistant), an assistant turn against earlier assistant turns
    (an answer may restate its question)."""
    key = _key(text)
    opening = key.split()[:OPENING]
    for n, t in enumerate(turns, 1):
        earlier = _key(t["content"])
        if earlier == key:
            return n
        words = earlier.split()
        if len(opening) == OPENING and words[:OPENING] == opening:
            return n
        if role == USER and len(words) >= 4 and f" {earlier} " in f" {key} ":
            return n
        if rouge < 1 and (role == USER or t["role"] == ASSISTANT) and rouge_l_f1(text, t["content"]) >= rouge:
            return n
    return None


def transcript(messages: Sequence[Message]) -> str:
    """The dialogue as text, one ``User: ...`` / ``Assistant: ...`` paragraph per turn (system dropped)."""
    names = {USER: "User", ASSISTANT: "Assistant"}
    return "\n\n".join(f"{names[m['role']]}: {m['content']}" for m in messages if m["role"] in names)


# ---- the lockstep loop -------------------------------------------------------------------
@dataclass
class _Live:
    result: DialogueResult
    end_after_answer: bool = False
    done: bool = False


def _finish(d: _Live, stop: str, config: DialogueConfig, failure: Failure | None = None) -> None:
    r = d.result
    if len(r.turns) % 2:  # a user turn without its answer
        r.turns.pop()
    r.stop, r.failure, d.done = stop, failure, True
    r.kept = len(r.turns) >= config.min_turns
    if not r.kept:
        r.reason = failure.reason if failure is not None else Reason(
            "too_short", f"ended by the end marker after {len(r.turns)} turns (min_turns {config.min_turns})")


def _step(d: _Live, c: Completion, role: str, config: DialogueConfig) -> None:
    r = d.result
    r.completions.append(c)
    n = len(r.turns) + 1
    if c.finish_reason == "error":
        _finish(d, "cut", config, Failure(n, role, Reason("backend", f"{c.error} (turn {n})"), None, c))
        return
    try:
        text, ended = parse_turn(c.text, role=role, end_marker=config.end_marker, finish_reason=c.finish_reason,
                                 trim_truncated=config.trim_truncated)
        earlier = repeats(text, r.turns, role=role, rouge=config.repeat_rouge) if text else None
        if earlier is not None:
            raise ParseError(f"repeats turn {earlier}")
    except ParseError as exc:
        _finish(d, "cut", config, Failure(n, role, Reason("turn_parse", f"turn {n}: {exc}"), c.text, c))
        return
    if text:
        r.turns.append({"role": role, "content": text})
    if role == ASSISTANT and (ended or d.end_after_answer):
        _finish(d, "end_marker", config)
    elif role == USER and ended:
        if text:
            d.end_after_answer = True  # answer this last message, then stop
        else:
            _finish(d, "end_marker", config)
    elif len(r.turns) >= config.max_turns:
        _finish(d, "max_turns", config)


def run_dialogues(seeds: Sequence[Seed], complete: Complete, decoding: Decoding,
                  config: DialogueConfig) -> list[DialogueResult]:
    """One dialogue per seed, all advanced in lockstep: each step is one ``complete`` call holding the
    next turn of every live dialogue (user turns with ``decoding`` capped at ``user_max_tokens``)."""
    live = [_Live(DialogueResult(seed, assistant_system(seed, config))) for seed in seeds]
    user_decoding = decoding
    if config.user_max_tokens is not None:
        user_decoding = decoding.model_copy(update={"max_tokens": min(decoding.max_tokens, config.user_max_tokens)})
    for k in range(config.max_turns):
        todo = [d for d in live if not d.done]
        if not todo:
            break
        role = USER if k % 2 == 0 else ASSISTANT
        if role == USER:
            prompts: list[Prompt] = [user_prompt(d.result.seed, d.result.turns, config) for d in todo]
        else:
            prompts = [assistant_prompt(d.result.system, d.result.turns) for d in todo]
        for d, c in zip(todo, complete(prompts, user_decoding if role == USER else decoding)):
            _step(d, c, role, config)
    for d in live:  # max_turns reached on a user turn (cannot happen with an even max_turns) or the loop ran out
        if not d.done:
            _finish(d, "max_turns", config)
    return [d.result for d in live]
