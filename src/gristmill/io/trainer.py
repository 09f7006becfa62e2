"""Trainer formats: TRL's prompt/completion and preference records, and an Axolotl config beside chat data.

``prompt_completion`` writes ``{"prompt", "completion"}``; ``preference`` writes
``{"prompt", "chosen", "rejected"}`` (TRL's DPO / ORPO / reward trainers), or with ``unpaired:
true`` two records per pair, ``{"prompt", "completion", "label"}`` (``true`` for the chosen
response, ``false`` for the rejected one: KTO, BCO; what ``trl.data_utils.unpair_preference_dataset``
makes of a paired set). Both come in TRL's two forms, the ``style`` output option:

* ``conversational`` (the default): ``prompt`` is a list of ``{role, content}`` messages (the
  ``system_prompt`` option adds a system turn), ``completion`` / ``chosen`` / ``rejected`` a list
  holding the assistant message; the trainer applies the model's chat template;
* ``standard``: plain strings, for a model without a chat template; a conversation of more than
  one user turn, or with a system turn, has no standard form and is an error naming the row.

A row's prompt is its ``prompt`` column (a string or a list of messages), else its ``messages``
without the last assistant turn, else its ``instruction`` (and ``input``); its completion is its
``completion`` column, else that last assistant turn, else its ``output``. Preference rows need
``chosen`` and ``rejected`` columns, which ``generate.preference_pairs`` writes.

:func:`axolotl_config` is the ``axolotl.yaml`` written beside ``openai`` / ``sharegpt`` / ``alpaca``
output: the ``datasets`` (and ``test_datasets``) entries of an Axolotl config that read those files
(``type: chat_template`` with the tokenizer's own template, or ``type: alpaca``), ready to paste.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from gristmill.io.base import RecordError
from gristmill.io.chat import normalize_messages, row_messages

__all__ = ["AXOLOTL_FILE", "TRAINER_FORMATS", "axolotl_config", "check_trainer_columns", "write_preference",
           "write_prompt_completion"]

TRAINER_FORMATS = ("prompt_completion", "preference")
AXOLOTL_FILE = "axolotl.yaml"


def _name(row: Mapping[str, Any]) -> str:
    return f"row {row['id']!r}" if row.get("id") is not None else "a row"


def _messages(value: Any, row: Mapping[str, Any], field: str) -> list[dict[str, str]]:
    try:
        return normalize_messages(value, "role", "content", field)
    except RecordError as exc:
        raise ValueError(f"{_name(row)}: {exc}") from None


def _prompt_messages(row: Mapping[str, Any], system_prompt: str | None) -> list[dict[str, str]]:
    """The prompt of ``row`` as messages (see the module docstring)."""
    prompt = row.get("prompt")
    if isinstance(prompt, str):
        msgs = [{"role": "user", "content": prompt}]
    elif prompt is not None:
        msgs = _messages(prompt, row, "prompt")
    elif row.get("messages") is not None:
        msgs = _messages(row["messages"], row, "messages")
        if msgs[-1]["role"] == "assistant" and row.get("completion") is None and row.get("chosen") is None:
            msgs = msgs[:-1]
    elif row.get("instruction") is not None:
        msgs = [{"role": "user", "content": row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")}]
    else:
        raise ValueError(f"{_name(row)} has no prompt: no 'prompt', 'messages' or 'instruction'")
    if not any(m["role"] == "user" for m in msgs):
        raise ValueError(f"{_name(row)}: the prompt has no user turn")
    if system_prompt and msgs[0]["role"] != "system":
        msgs.insert(0, {"role": "system", "content": system_prompt})
    return msgs


def _answer(value: Any, row: Mapping[str, Any], field: str) -> list[dict[str, str]]:
    """A completion (``chosen``, ``rejected``) as the assistant message list."""
    if isinstance(value, str):
        return [{"role": "assistant", "content": value}]
    if value is None:
        raise ValueError(f"{_name(row)} has no {field!r}")
    return _messages(value, row, field)


def _standard_prompt(msgs: list[dict[str, str]], row: Mapping[str, Any]) -> str:
    if len(msgs) != 1 or msgs[0]["role"] != "user":
        raise ValueError(f"{_name(row)}: a prompt of {len(msgs)} turns ({', '.join(m['role'] for m in msgs)}) has no "
                         "standard (plain text) form; use style: conversational")
    return msgs[0]["content"]


def _standard_answer(msgs: list[dict[str, str]], row: Mapping[str, Any], field: str) -> str:
    if len(msgs) != 1 or msgs[0]["role"] != "assistant":
        raise ValueError(f"{_name(row)}: {field} is not one assistant turn; use style: conversational")
    return msgs[0]["content"]


def _completion(row: Mapping[str, Any]) -> Any:
    if row.get("completion") is not None:
        return row["completion"]
    if row.get("messages") is not None:
        msgs = _messages(row["messages"], row, "messages")
        if msgs[-1]["role"] != "assistant":
            raise ValueError(f"{_name(row)}: messages do not end with an assistant turn to use as the completion")
        return [msgs[-1]]
    if row.get("output") is not None:
        return row["output"]
    raise ValueError(f"{_name(row)} has no completion: no 'completion', 'messages' or 'output'")


def _with_id(row: Mapping[str, Any], out: dict[str, Any], suffix: str = "") -> dict[str, Any]:
    return {"id": f"{row['id']}{suffix}", **out} if row.get("id") is not None else out


def write_prompt_completion(row: Mapping[str, Any], system_prompt: str | None = None,
                            style: str = "conversational") -> dict[str, Any]:
    """TRL's prompt-completion record of ``row``."""
    prompt = _prompt_messages(row, system_prompt)
    completion = _answer(_completion(row), row, "completion")
    if style == "standard":
        return _with_id(row, {"prompt": _standard_prompt(prompt, row),
                              "completion": _standard_answer(completion, row, "completion")})
    return _with_id(row, {"prompt": prompt, "completion": completion})


def write_preference(row: Mapping[str, Any], system_prompt: str | None = None, style: str = "conversational",
                     unpaired: bool = False) -> list[dict[str, Any]]:
    """TRL's preference record of ``row`` (one), or its two unpaired records (chosen: label true)."""
    prompt: Any = _prompt_messages(row, system_prompt)
    chosen: Any = _answer(row.get("chosen"), row, "chosen")
    rejected: Any = _answer(row.get("rejected"), row, "rejected")
    if style == "standard":
        prompt = _standard_prompt(prompt, row)
        chosen, rejected = _standard_answer(chosen, row, "chosen"), _standard_answer(rejected, row, "rejected")
    if not unpaired:
        return [_with_id(row, {"prompt": prompt, "chosen": chosen, "rejected": rejected})]
    return [_with_id(row, {"prompt": prompt, "completion": chosen, "label": True}, "/chosen"),
            _with_id(row, {"prompt": prompt, "completion": rejected, "label": False}, "/rejected")]


def check_trainer_columns(fmt: str, names: Sequence[str]) -> None:
    """Raise ValueError when a table lacks the columns ``fmt`` is built from."""
    have = set(names)
    has_prompt = bool(have & {"prompt", "messages", "instruction"})
    if fmt == "preference":
        missing = [c for c in ("chosen", "rejected") if c not in have]
        if missing or not has_prompt:
            need = ", ".join(map(repr, missing)) + (" and " if missing and not has_prompt else "") + (
                "a 'prompt', 'messages' or 'instruction' column" if not has_prompt else "")
            raise ValueError(f"the preference writer needs {need} (generate.preference_pairs writes prompt, chosen "
                             f"and rejected); the table has: {', '.join(names)}")
        return
    if {"prompt", "completion"} <= have or "messages" in have or {"instruction", "output"} <= have:
        return
    raise ValueError("the prompt_completion writer needs 'prompt' and 'completion', a 'messages' column, or "
                     f"'instruction' and 'output'; the table has: {', '.join(names)}")


_CHAT_TEMPLATE = {
    "openai": {"type": "chat_template", "field_messages": "messages",
               "message_property_mappings": {"role": "role", "content": "content"}, "roles_to_train": ["assistant"]},
    "sharegpt": {"type": "chat_template", "field_messages": "conversations",
                 "message_property_mappings": {"role": "from", "content": "value"},
                 "roles": {"system": ["system"], "user": ["human"], "assistant": ["gpt"]},
                 "roles_to_train": ["assistant"]},
    "alpaca": {"type": "alpaca"},
}
AXOLOTL_FORMATS = tuple(_CHAT_TEMPLATE)
_EVAL_SPLITS = ("dev", "validation", "valid", "val")


def axolotl_config(fmt: str, files: Mapping[str, Path]) -> str | None:
    """An Axolotl config snippet reading ``files`` (split name -> JSON Lines file) of chat format ``fmt``,
    or None for another format. ``train`` (or a run's single ``data`` file) goes under ``datasets``, a
    dev split under ``test_datasets`` (Axolotl's evaluation during training); ``test`` stays held out
    (named in a comment)."""
    if fmt not in _CHAT_TEMPLATE or not files:
        return None

    def entry(path: Path) -> dict[str, Any]:
        return {"path": str(path), "ds_type": "json", "split": "train", **copy.deepcopy(_CHAT_TEMPLATE[fmt])}

    evals = [p for s, p in files.items() if s in _EVAL_SPLITS]
    held = [p for s, p in files.items() if s == "test"]
    train = [p for s, p in files.items() if s not in (*_EVAL_SPLITS, "test")]
    config: dict[str, Any] = {}
    if fmt != "alpaca":
        config["chat_template"] = "tokenizer_default"
    config["datasets"] = [entry(p) for p in train]
    if evals:
        config["test_datasets"] = [entry(p) for p in evals]
    head = [f"# Axolotl dataset config for this {fmt} output, written by gristmill: paste it into your Axolotl",
            "# config (base_model, adapter, sequence_len, ... are yours)."]
    if fmt != "alpaca":
        head.append("# chat_template: tokenizer_default uses the base model's own chat template; only assistant "
                    "turns are trained.")
    head += [f"# Held out for evaluation after training (not listed): {p}" for p in held]
    return "\n".join(head) + "\n" + yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
