"""Chat rows for supervised fine-tuning: reading them, and tokenizing them with loss on assistant turns.

:func:`load_chat_rows` reads JSONL in any of the shapes gristmill writes or reads
(OpenAI ``messages``, ShareGPT ``conversations``, Alpaca ``instruction/input/output``,
gristmill's own ``instruction``/``input``/``output`` or ``response`` columns) and turns
each line into a list of ``{role, content}`` messages. A line that is not JSON, has an
unknown shape, or has no non-empty assistant turn is skipped and reported as a
:class:`BadRow` (file, line, reason).

:func:`tokenize_chat` renders a conversation with the tokenizer's chat template and
labels exactly the tokens of each assistant message's content plus the end-of-turn token
that closes it; every other token (system and user turns, role headers, the newline after
the end-of-turn token, padding) gets label ``-100``. Assistant spans are found by
rendering prefixes of the conversation: the text of ``messages[:i]`` with the generation
prompt ends where assistant message ``i`` starts, and ``messages[:i+1]`` ends after its
end-of-turn marker. The text is tokenized piece by piece between those edges, so no token
straddles a prompt/answer edge.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gristmill.io.base import RecordError
from gristmill.io.chat import optional_str, normalize_messages

__all__ = ["BadRow", "TokenizedChat", "load_chat_rows", "row_to_messages", "tokenize_chat"]

IGNORE = -100
Messages = list[dict[str, str]]


@dataclass(frozen=True)
class BadRow:
    """A skipped input line: where it is and why it was skipped."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class TokenizedChat:
    """Token ids of one rendered conversation and their labels (``-100`` where no loss is taken)."""

    input_ids: list[int]
    labels: list[int]

    @property
    def n_labels(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def row_to_messages(obj: Any) -> Messages:
    """The conversation of one JSON object in any supported shape; raises RecordError why not."""
    if not isinstance(obj, dict):
        raise RecordError(f"a JSON {type(obj).__name__}, expected an object")
    if "messages" in obj:
        msgs = normalize_messages(obj["messages"], "role", "content", "messages")
    elif "conversations" in obj:
        msgs = normalize_messages(obj["conversations"], "from", "value", "conversations")
    elif "instruction" in obj and ("output" in obj or "response" in obj):
        instruction = optional_str(obj, "instruction")
        answer = optional_str(obj, "output" if "output" in obj else "response")
        if not instruction.strip():
            raise RecordError("empty instruction")
        extra = optional_str(obj, "input")
        user = instruction + (f"\n\n{extra}" if extra.strip() else "")
        msgs = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    else:
        raise RecordError("unknown shape: expected 'messages', 'conversations', or 'instruction' with "
                          "'output'/'response'")
    if not any(m["role"] == "assistant" and m["content"].strip() for m in msgs):
        raise RecordError("no non-empty assistant turn")
    if msgs[0]["role"] == "assistant":
        raise RecordError("conversation starts with an assistant turn")
    return msgs


def load_chat_rows(path: str | Path) -> tuple[list[Messages], list[BadRow]]:
    """Conversations of a JSONL file, and the lines skipped (blank lines are ignored silently).

    Raises FileNotFoundError when ``path`` is not a file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    rows: list[Messages] = []
    bad: list[BadRow] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                bad.append(BadRow(str(path), n, f"invalid JSON: {exc.msg} at column {exc.colno}"))
                continue
            try:
                rows.append(row_to_messages(obj))
            except RecordError as exc:
                bad.append(BadRow(str(path), n, str(exc)))
    return rows, bad


def _render(tokenizer: Any, messages: Sequence[dict[str, str]], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation_prompt)


def assistant_char_spans(tokenizer: Any, messages: Sequence[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character span of each assistant turn in it.

    A span runs from the first character of the assistant's content to the end of what
    the template writes for that turn (its end-of-turn marker and anything after it,
    trimmed later by token). Raises ValueError when the template does not render
    prefixes of the conversation as prefixes of the whole.
    """
    full = _render(tokenizer, messages, False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], True) if i else ""
        start = len(before)
        upto = _render(tokenizer, messages[:i + 1], False)
        if not full.startswith(before) or not full.startswith(upto) or len(upto) <= start:
            raise ValueError("the chat template does not render conversation prefixes as prefixes")
        spans.append((start, len(upto)))
    return full, spans


def tokenize_chat(tokenizer: Any, messages: Sequence[dict[str, str]], max_length: int | None = None) -> TokenizedChat:
    """Token ids and labels of a conversation, truncated on the right to ``max_length`` tokens.

    Labelled: the tokens of each assistant turn from its content's first token through the
    first special token (the end-of-turn token) at or after the content; the tokens after
    it (e.g. a newline) and all other turns are ``-100``.
    """
    text, spans = assistant_char_spans(tokenizer, messages)
    special = set(tokenizer.all_special_ids)
    ids: list[int] = []
    labels: list[int] = []
    pos = 0
    for lo, hi in [*spans, (len(text), len(text))]:
        if lo > pos:
            piece = tokenizer(text[pos:lo], add_special_tokens=False)["input_ids"]
            ids += piece
            labels += [IGNORE] * len(piece)
        if hi > lo:
            piece = tokenizer(text[lo:hi], add_special_tokens=False)["input_ids"]
            end = next((k + 1 for k, t in enumerate(piece) if t in special), len(piece))
            ids += piece
            labels += piece[:end] + [IGNORE] * (len(piece) - end)
        pos = hi
    if max_length is not None and len(ids) > max_length:
        ids, labels = ids[:max_length], labels[:max_length]
    return TokenizedChat(ids, labels)
