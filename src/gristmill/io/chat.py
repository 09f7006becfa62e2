"""Instruction and chat record shapes: Self-Instruct seeds, Alpaca, ShareGPT, OpenAI messages.

Readers turn a parsed JSON object into a record (or raise :class:`RecordError` with the
reason it is dropped); writers turn a record back into the format's JSON object.
Messages are always ``[{"role": "system"|"user"|"assistant", "content": str}]``. The Alpaca,
ShareGPT and OpenAI readers turn a record's ``metadata`` object (what gristmill's writers put
there: ``source``, ``license``, annotations, the recipe fingerprint; :mod:`gristmill.io.metadata`)
back into columns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gristmill.io.base import RecordError
from gristmill.io.metadata import metadata_source, spread

ROLES = {
    "system": "system", "developer": "system",
    "user": "user", "human": "user",
    "assistant": "assistant", "gpt": "assistant", "chatgpt": "assistant", "bard": "assistant",
    "bing": "assistant", "model": "assistant",
}
SHAREGPT_FROM = {"system": "system", "user": "human", "assistant": "gpt"}


def _required_str(obj: dict[str, Any], key: str, *, allow_empty: bool = False) -> str:
    if obj.get(key) is None:
        raise RecordError(f"missing required field {key!r}")
    value = obj[key]
    if not isinstance(value, str):
        raise RecordError(f"field {key!r} is {type(value).__name__}, expected a string")
    if not allow_empty and not value.strip():
        raise RecordError(f"empty {key}")
    return value


def optional_str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"field {key!r} is {type(value).__name__}, expected a string")
    return value


def read_self_instruct(obj: dict[str, Any]) -> dict[str, Any]:
    """A Self-Instruct seed task; ``input``/``output`` are its first instance, ``text`` the instruction."""
    instruction = _required_str(obj, "instruction")
    instances = obj.get("instances")
    if instances is None:
        raise RecordError("missing required field 'instances'")
    if not isinstance(instances, list) or not instances:
        raise RecordError("field 'instances' must be a non-empty list of {input, output}")
    norm = []
    for i, inst in enumerate(instances, 1):
        if not isinstance(inst, dict):
            raise RecordError(f"instance {i} is {type(inst).__name__}, expected an object")
        try:
            output = _required_str(inst, "output", allow_empty=True)
            norm.append({"input": optional_str(inst, "input"), "output": output})
        except RecordError as exc:
            raise RecordError(f"instance {i}: {exc}") from None
    row = dict(obj)
    row.update(instruction=instruction, instances=norm, is_classification=bool(obj.get("is_classification") or False),
               input=norm[0]["input"], output=norm[0]["output"], text=instruction)
    return row


def read_alpaca(obj: dict[str, Any]) -> dict[str, Any]:
    """An Alpaca record ``{instruction, input, output}``; ``text`` is the instruction."""
    row = spread(dict(obj))
    instruction = _required_str(obj, "instruction")
    row.update(instruction=instruction, input=optional_str(obj, "input"),
               output=_required_str(obj, "output", allow_empty=True), text=instruction)
    return row


def normalize_messages(turns: Any, role_key: str, content_key: str, field: str) -> list[dict[str, str]]:
    """Turns as ``[{role, content}]`` with roles mapped to system/user/assistant."""
    if turns is None:
        raise RecordError(f"missing required field {field!r}")
    if not isinstance(turns, list):
        raise RecordError(f"field {field!r} is {type(turns).__name__}, expected a list")
    if not turns:
        raise RecordError(f"empty {field}")
    out = []
    for i, turn in enumerate(turns, 1):
        if not isinstance(turn, dict):
            raise RecordError(f"{field}[{i}] is {type(turn).__name__}, expected an object")
        role = turn.get(role_key)
        if role is None:
            raise RecordError(f"{field}[{i}] has no {role_key!r}")
        norm = ROLES.get(str(role).lower())
        if norm is None:
            raise RecordError(f"{field}[{i}] has unsupported role {role!r} (expected system, user or assistant)")
        out.append({"role": norm, "content": _content(turn.get(content_key), f"{field}[{i}]", content_key)})
    return out


def _content(value: Any, where: str, key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # OpenAI content parts
        parts = [p.get("text") for p in value if isinstance(p, dict) and p.get("type", "text") == "text"]
        if parts and all(isinstance(p, str) for p in parts):
            return "".join(parts)
    if value is None:
        raise RecordError(f"{where} has no {key!r}")
    raise RecordError(f"{where} {key!r} is {type(value).__name__}, expected text")


def read_sharegpt(obj: dict[str, Any]) -> dict[str, Any]:
    """A ShareGPT record; ``conversations`` becomes ``messages``."""
    row = spread({k: v for k, v in obj.items() if k != "conversations"})
    row["messages"] = normalize_messages(obj.get("conversations"), "from", "value", "conversations")
    return row


def read_openai(obj: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat record ``{messages: [{role, content}]}``."""
    row = spread(dict(obj))
    row["messages"] = normalize_messages(obj.get("messages"), "role", "content", "messages")
    return row


def kept_source(obj: dict[str, Any]) -> str | None:
    """The ``source`` a chat record's metadata names: the reader keeps it instead of the file's path."""
    return metadata_source(obj)


SHAPES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "self_instruct": read_self_instruct,
    "alpaca": read_alpaca,
    "sharegpt": read_sharegpt,
    "openai": read_openai,
}


# ---- writers ---------------------------------------------------------------------------

def check_columns(fmt: str, names: Sequence[str]) -> None:
    """Raise ValueError when a table lacks the columns a chat format is built from."""
    have = set(names)
    if "messages" in have or {"instruction", "output"} <= have:
        return
    missing = [c for c in ("instruction", "output") if c not in have]
    raise ValueError(f"the {fmt} writer needs a 'messages' column or the column(s) {', '.join(map(repr, missing))}; "
                     f"the table has: {', '.join(names)}")


def _row_name(row: dict[str, Any]) -> str:
    return f"row {row['id']!r}" if row.get("id") is not None else "a row"


def row_messages(row: dict[str, Any], system_prompt: str | None) -> list[dict[str, str]]:
    """The conversation of a record: its ``messages``, else instruction (+ input) -> output."""
    if row.get("messages") is not None:
        try:
            msgs = normalize_messages(row["messages"], "role", "content", "messages")
        except RecordError as exc:
            raise ValueError(f"{_row_name(row)}: {exc}") from None
    elif row.get("instruction") is not None and row.get("output") is not None:
        user = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
        msgs = [{"role": "user", "content": user}, {"role": "assistant", "content": row["output"]}]
    else:
        raise ValueError(f"{_row_name(row)} has neither 'messages' nor 'instruction' and 'output'")
    if system_prompt and msgs[0]["role"] != "system":
        msgs.insert(0, {"role": "system", "content": system_prompt})
    return msgs


def _with_id(row: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], **out} if row.get("id") is not None else out


def write_openai(row: dict[str, Any], system_prompt: str | None) -> dict[str, Any]:
    return _with_id(row, {"messages": row_messages(row, system_prompt)})


def write_sharegpt(row: dict[str, Any], system_prompt: str | None) -> dict[str, Any]:
    conv = [{"from": SHAREGPT_FROM[m["role"]], "value": m["content"]} for m in row_messages(row, system_prompt)]
    return _with_id(row, {"conversations": conv})


def write_alpaca(row: dict[str, Any], system_prompt: str | None) -> dict[str, Any]:
    if row.get("instruction") is not None and row.get("output") is not None:
        return _with_id(row, {"instruction": row["instruction"], "input": row.get("input") or "",
                              "output": row["output"]})
    msgs = row_messages(row, None)
    user = next((m["content"] for m in msgs if m["role"] == "user"), None)
    answer = next((m["content"] for m in reversed(msgs) if m["role"] == "assistant"), None)
    if user is None or answer is None:
        raise ValueError(f"{_row_name(row)}: messages need a user and an assistant turn for alpaca")
    return _with_id(row, {"instruction": user, "input": "", "output": answer})


ROW_WRITERS: dict[str, Callable[[dict[str, Any], str | None], dict[str, Any]]] = {
    "openai": write_openai,
    "sharegpt": write_sharegpt,
    "alpaca": write_alpaca,
}
