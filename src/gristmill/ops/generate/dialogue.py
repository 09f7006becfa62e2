"""``generate.dialogue``: multi-turn conversations grounded in a persona or a document."""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field, model_validator

from gristmill.llm.tasks import dialogue
from gristmill.llm.types import Completion, Decoding, ParseError
from gristmill.ops.generate.base import RAW, LLMGenerator, LLMParams
from gristmill.ops.generate.common import _inherit, _parent_id
from gristmill.records import ID, REASON, Reason

# A scripted model for the conformance suite and the examples: the first key found in a prompt answers it
# (the user simulator's prompt about a document or for a persona, a persona's follow-ups, then the
# assistant's second and first turns). It does not read which sentence of a document the simulator is
# asked about, so a document's turn 3 repeats turn 1 and its dialogue is cut to 2 turns.
_EXAMPLE_BACKEND = {"type": "mock", "responses": {
    "What question would a curious reader": "What does the river carry?",
    "one question you would like help with": "What does the river carry?",
    "Ask one short follow-up": "And how fast does the water flow?",
    "how fast does the water flow": "Slowly, near the sea.",
    "helpful assistant": "It carries sand and silt.",
}}


class Dialogue(LLMGenerator):
    """Multi-turn dialogues (user and assistant turns) from a persona or a document, one per input row.

    The model plays both sides with separate prompts (:mod:`gristmill.llm.tasks.dialogue`): a
    user simulator that asks (as the persona in ``persona_column``, about the document in
    ``document_column``) and an assistant that answers from the document. Every dialogue of a
    shard advances in lockstep, one batched backend call per turn, through the run's response
    cache, so a rerun is answered from the cache. A dialogue stops at ``max_turns`` turns (user
    and assistant messages), when a reply holds ``end_marker``, or at a failed turn, where it is
    cut to its last complete exchange; one with fewer than ``min_turns`` turns is rejected.

    Rows: ``messages`` (OpenAI chat messages: the assistant's system prompt with the document
    when ``include_system``, then the turns; the chat writers output them as OpenAI messages or
    ShareGPT), ``text`` (the turns as ``User: ...`` / ``Assistant: ...`` paragraphs, for text
    operators), ``dialogue.turns``, ``dialogue.stop`` (``max_turns``, ``end_marker``, ``cut``),
    ``dialogue.persona``, ``dialogue.document``, ``gen.parent`` and the ``gen.*`` columns (tokens of
    every turn). Rejected, one row per failed turn (id ``<dialogue id>-t<turn>``, with the good
    ``messages`` before it, ``dialogue.turn``, ``dialogue.role`` and the reply in ``gen.raw``) --
    also when its dialogue was kept, cut: ``turn_parse: turn 3: empty reply``, ``turn_parse: turn 5:
    repeats turn 1``, ``turn_parse: turn 4: truncated with no complete sentence``, ``backend:
    transient: ... (turn 2)``; one row per dialogue ended short by the marker (``too_short: ended
    by the end marker after 2 turns (min_turns 4)``); an input row with neither a persona nor a
    document (``prompt: no persona or document``). Rejected rows keep the input row's columns (``text``
    becomes the transcript); kept dialogues keep only ``source`` and ``license`` of it.
    """

    name = "generate.dialogue"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {"min_turns": 2, "max_turns": 4, "backend": _EXAMPLE_BACKEND}

    class Params(LLMParams):
        decoding: Decoding = Field(default_factory=lambda: Decoding(max_tokens=160),
                                   description="Decoding settings of both sides (greedy, 160 tokens by default).")
        persona_column: str | None = Field(None, description="Column describing the user (\"a nurse on night "
                                                              "shifts\"); none: no persona.")
        document_column: str | None = Field("text", description="Column holding the document the dialogue is "
                                                                "about; none: persona only.")
        max_turns: int = Field(6, ge=2, description="Most turns (user and assistant messages; even).")
        min_turns: int = Field(4, ge=2, description="Fewest turns a kept dialogue has (even).")
        end_marker: str = Field(dialogue.END_MARKER, min_length=1,
                                description="A reply holding it ends the dialogue (the text before it is kept).")
        user_max_tokens: int = Field(64, ge=1, description="Most tokens of a user turn (the decoding's "
                                                           "max_tokens when smaller).")
        repeat_rouge: float = Field(0.7, gt=0, le=1, description="A turn whose ROUGE-L F1 with an earlier turn "
                                                                "is at least this repeats it (a user turn: any "
                                                                "turn; an answer: earlier answers); 1: exact only.")
        trim_truncated: bool = Field(True, description="Trim a reply cut by max_tokens to its last complete "
                                                       "sentence; off: such a turn fails.")
        user_system: str = Field(dialogue.USER_SYSTEM, description="The user simulator's system prompt "
                                                                   "(the persona is appended).")
        assistant_system: str = Field(dialogue.ASSISTANT_SYSTEM, description="The assistant's system prompt "
                                                                             "(the document is appended).")
        include_system: bool = Field(True, description="Start messages with the assistant's system prompt "
                                                       "(its instructions and the document).")

        @model_validator(mode="after")
        def _turns(self) -> Dialogue.Params:
            if self.max_turns % 2 or self.min_turns % 2:
                raise ValueError("min_turns and max_turns count user and assistant turns: both must be even")
            if self.min_turns > self.max_turns:
                raise ValueError(f"min_turns ({self.min_turns}) must not exceed max_turns ({self.max_turns})")
            if not self.persona_column and not self.document_column:
                raise ValueError("set persona_column, document_column or both")
            return self

    def make_task(self) -> None:
        return None

    def reads(self) -> list[str]:
        return [c for c in (self.params.persona_column, self.params.document_column) if c]

    def writes(self) -> list[str]:
        return ["messages", "text", "dialogue.turns", "dialogue.stop", "dialogue.persona", "dialogue.document",
                *super().writes()]

    def _config(self) -> dialogue.DialogueConfig:
        p = self.params
        return dialogue.DialogueConfig(max_turns=p.max_turns, min_turns=p.min_turns, end_marker=p.end_marker,
                                       trim_truncated=p.trim_truncated, user_system=p.user_system,
                                       assistant_system=p.assistant_system, user_max_tokens=p.user_max_tokens,
                                       repeat_rouge=p.repeat_rouge)

    def _seed(self, row: dict[str, Any]) -> dialogue.Seed:
        p = self.params

        def value(column: str | None) -> str | None:
            v = row.get(column) if column else None
            return v.strip() if isinstance(v, str) and v.strip() else None

        return dialogue.Seed(persona=value(p.persona_column), document=value(p.document_column))

    def generate(self, batch: pa.Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows = batch.to_pylist()
        failures: list[dict[str, Any]] = []
        todo: list[tuple[int, dict[str, Any], dialogue.Seed]] = []
        for n, row in enumerate(rows):
            try:
                todo.append((n, row, self._seed(row)))
            except ParseError as exc:
                failures.append({**row, REASON: Reason("prompt", str(exc))})
        results = dialogue.run_dialogues([s for _, _, s in todo], self.complete, self.params.decoding,
                                         self._config()) if todo else []
        out: list[dict[str, Any]] = []
        for (n, row, _), r in zip(todo, results):
            kept, rejected = self._rows(r, row, _parent_id(row, n))
            out += kept
            failures += rejected
        return out, failures

    def _tokens(self, completions: list[Completion]) -> dict[str, Any]:
        return {"gen.model": self.backend.model, "gen.tokens_in": sum(c.tokens_in for c in completions),
                "gen.tokens_out": sum(c.tokens_out for c in completions),
                "gen.cached": bool(completions) and all(c.cached for c in completions)}

    def _rows(self, r: dialogue.DialogueResult, row: dict[str, Any],
              parent: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The kept dialogue (when it reached min_turns) and its rejected rows; each completion's tokens
        are counted once: the failed turn's on its reject row, every other on the dialogue's row."""
        did = f"{parent}-0"
        messages = ([{"role": "system", "content": r.system}] if self.params.include_system else []) + r.turns
        grounding = {"dialogue.persona": r.seed.persona, "dialogue.document": r.seed.document}
        failed = r.failure.completion if r.failure is not None else None
        rest = [c for c in r.completions if c is not failed]
        kept: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        if r.kept:
            new = {ID: did, "messages": messages, "text": dialogue.transcript(r.turns),
                   "dialogue.turns": len(r.turns), "dialogue.stop": r.stop, **grounding, **self._tokens(rest)}
            kept.append(_inherit(new, row, parent, self.name))
        if r.failure is not None:
            f = r.failure
            charged = [failed] if failed is not None else []
            reject = {**row, ID: f"{did}-t{f.turn}", "messages": messages, "text": dialogue.transcript(r.turns),
                      "dialogue.turn": f.turn, "dialogue.role": f.role,
                      **grounding, **self._tokens(charged if r.kept else r.completions), RAW: f.raw, REASON: f.reason}
            rejected.append(_inherit(reject, row, parent, self.name))
        elif not r.kept:
            reject = {**row, ID: did, "messages": messages, "text": dialogue.transcript(r.turns),
                      "dialogue.turns": len(r.turns), "dialogue.stop": r.stop,
                      **grounding, **self._tokens(r.completions), RAW: None, REASON: r.reason}
            rejected.append(_inherit(reject, row, parent, self.name))
        return kept, rejected
