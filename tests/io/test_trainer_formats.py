"""Trainer formats (TRL prompt/completion and preference), provenance metadata in every record format, axolotl.yaml.

Each file is loaded with the library that consumes it: ``datasets`` always, TRL's data utilities
(``is_conversational``, ``maybe_apply_chat_template``, ``unpair_preference_dataset``) when trl is
installed (``pip install trl``; it imports on CPU without downloading anything).
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow as pa
import pytest
import yaml
from pydantic import ValidationError

from gristmill.io import ReaderOptions, open_reader, open_writer
from gristmill.io.metadata import metadata_columns, run_provenance
from gristmill.io.writers import finish_output
from gristmill.runner import run_recipe

PROVENANCE = {"recipe": "0123456789abcdef", "ops": ["dedup.exact@1", "judge.score@1"]}
MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."}]


def objects(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write(path: Path, fmt: str, table: pa.Table, **options) -> list[dict]:
    with open_writer(path, fmt, **options) as w:
        w.write(table)
    return objects(path)


def load_json(path: Path) -> datasets.Dataset:
    datasets.disable_progress_bars()
    return datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(path.parent / ".hf"))


CHAT = pa.table({"id": ["1", "2"], "instruction": ["Translate", "Greet"], "input": ["Katze", None],
                 "output": ["cat", "Hello"], "source": ["a.jsonl", "b.jsonl"], "license": ["MIT", None],
                 "lang.code": ["en", "en"], "judge.score": [8.0, 3.5], "quality.words": [1, 1],
                 "gen.raw": ["x", "y"]})


@pytest.mark.parametrize("fmt", ["openai", "sharegpt", "alpaca"])
def test_chat_records_carry_provenance_that_reads_back_into_the_same_columns(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"{fmt}.jsonl"
    records = write(path, fmt, CHAT, provenance=PROVENANCE)
    assert records[0]["metadata"] == {"source": "a.jsonl", "license": "MIT", "lang.code": "en", "judge.score": 8.0,
                                      "gristmill.recipe": "0123456789abcdef",
                                      "gristmill.ops": ["dedup.exact@1", "judge.score@1"]}
    rows = list(open_reader(path, ReaderOptions(format=fmt)))
    for row, expected in zip(rows, CHAT.to_pylist()):
        for column in ("id", "source", "license", "lang.code", "judge.score"):
            assert row[column] == expected[column], (column, row)
        assert row["gristmill.recipe"] == "0123456789abcdef" and "metadata" not in row
    assert load_json(path).num_rows == 2  # datasets reads the nested metadata object


def test_metadata_option_names_columns_or_patterns_or_turns_it_off(tmp_path: Path) -> None:
    records = write(tmp_path / "a.jsonl", "openai", CHAT, metadata=["license", "quality.*"])
    assert records[1]["metadata"] == {"license": None, "quality.words": 1}  # a null stays a (null) column
    rows = list(open_reader(tmp_path / "a.jsonl", ReaderOptions(format="openai")))
    assert rows[1]["license"] is None and rows[1]["quality.words"] == 1
    assert set(write(tmp_path / "b.jsonl", "openai", CHAT, metadata=False)[0]) == {"id", "messages"}
    assert metadata_columns(["id", "messages", "source", "pref.margin", "x"], True, ["messages"]) == [
        "source", "pref.margin"]
    with pytest.raises(ValidationError, match="metadata applies to the chat and trainer formats, not to jsonl"):
        open_writer(tmp_path / "c.jsonl", "jsonl", metadata=False)


def test_run_provenance_is_the_recipe_fingerprint_and_operator_versions() -> None:
    resolved = {"input": {"path": ["x.jsonl"]}, "steps": [{"op": "dedup.exact", "version": "1", "params": {}}],
                "output": {"format": "jsonl"}}
    prov = run_provenance(resolved)
    assert prov["ops"] == ["dedup.exact@1"] and len(prov["recipe"]) == 16
    assert run_provenance({**resolved, "output": {"format": "openai"}}) == prov  # the output does not change it
    assert run_provenance({**resolved, "steps": [{"op": "dedup.exact", "version": "2"}]})["recipe"] != prov["recipe"]


def test_prompt_completion_conversational_and_standard(tmp_path: Path) -> None:
    table = pa.table({"id": ["m", "i"], "messages": [MSGS, None], "instruction": [None, "Add"],
                      "input": [None, "2 and 3"], "output": [None, "5"]})
    conv = write(tmp_path / "c.jsonl", "prompt_completion", table)
    assert conv[0] == {"id": "m", "prompt": MSGS[:2], "completion": [MSGS[2]]}
    assert conv[1]["prompt"] == [{"role": "user", "content": "Add\n\n2 and 3"}]
    std = write(tmp_path / "s.jsonl", "prompt_completion", table.slice(1), style="standard")
    assert std == [{"id": "i", "prompt": "Add\n\n2 and 3", "completion": "5"}]
    with pytest.raises(ValueError, match="row 'm': a prompt of 2 turns \\(system, user\\) has no standard"):
        write(tmp_path / "x.jsonl", "prompt_completion", table.slice(0, 1), style="standard")
    with pytest.raises(ValueError, match="the prompt_completion writer needs 'prompt' and 'completion'"):
        write(tmp_path / "y.jsonl", "prompt_completion", pa.table({"id": ["1"], "text": ["t"]}))
    plain = write(tmp_path / "p.jsonl", "prompt_completion",
                  pa.table({"prompt": ["The sky is"], "completion": [" blue."]}), style="standard")
    assert plain == [{"prompt": "The sky is", "completion": " blue."}]
    assert load_json(tmp_path / "c.jsonl").column_names == ["id", "prompt", "completion"]


PAIRS = pa.table({"id": ["p1"], "prompt": ["Capital of France?"], "chosen": ["Paris."], "rejected": ["Lyon."],
                  "license": ["MIT"], "pref.margin": [6.0]})


def test_preference_paired_unpaired_and_standard(tmp_path: Path) -> None:
    paired = write(tmp_path / "p.jsonl", "preference", PAIRS, system_prompt="Be brief.")
    assert paired == [{"id": "p1", "prompt": [{"role": "system", "content": "Be brief."},
                                              {"role": "user", "content": "Capital of France?"}],
                       "chosen": [{"role": "assistant", "content": "Paris."}],
                       "rejected": [{"role": "assistant", "content": "Lyon."}],
                       "metadata": {"license": "MIT", "pref.margin": 6.0}}]
    unpaired = write(tmp_path / "u.jsonl", "preference", PAIRS, unpaired=True, style="standard", metadata=False)
    assert unpaired == [{"id": "p1/chosen", "prompt": "Capital of France?", "completion": "Paris.", "label": True},
                        {"id": "p1/rejected", "prompt": "Capital of France?", "completion": "Lyon.", "label": False}]
    with pytest.raises(ValueError, match="the preference writer needs 'chosen', 'rejected'"):
        write(tmp_path / "x.jsonl", "preference", pa.table({"id": ["1"], "prompt": ["q"]}))
    with pytest.raises(ValidationError, match="unpaired applies to the preference format, not to openai"):
        open_writer(tmp_path / "y.jsonl", "openai", unpaired=True)
    assert load_json(tmp_path / "p.jsonl").num_rows == 1


def test_axolotl_config_beside_chat_output(tmp_path: Path) -> None:
    files = {s: tmp_path / f"{s}.jsonl" for s in ("train", "dev", "test")}
    (path,) = finish_output(tmp_path, "sharegpt", files)
    text = path.read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    assert config["chat_template"] == "tokenizer_default"
    assert [d["path"] for d in config["datasets"]] == [str(files["train"])]
    assert [d["path"] for d in config["test_datasets"]] == [str(files["dev"])]
    entry = config["datasets"][0]
    assert entry["type"] == "chat_template" and entry["field_messages"] == "conversations"
    assert entry["message_property_mappings"] == {"role": "from", "content": "value"}
    assert f"Held out for evaluation after training (not listed): {files['test']}" in text
    alpaca = yaml.safe_load(finish_output(tmp_path, "alpaca", {"data": files["train"]})[0].read_text())
    assert alpaca == {"datasets": [{"path": str(files["train"]), "ds_type": "json", "split": "train",
                                    "type": "alpaca"}]}
    assert finish_output(tmp_path, "openai", files, axolotl=False) == []
    assert finish_output(tmp_path, "jsonl", files) == []


def test_a_run_writes_openai_data_with_axolotl_yaml_and_provenance(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(json.dumps({"id": f"r{i}", "instruction": f"say {i}", "output": f"{i}",
                                          "license": "MIT"}) for i in range(6)) + "\n", encoding="utf-8")
    s = run_recipe({"name": "chat", "input": {"path": str(data), "format": "alpaca"}, "steps": [{"op": "dedup.exact"}],
                    "output": {"format": "openai"}, "executor": {"workers": 1}},
                   runs_dir=tmp_path / "runs", progress=False, report=False)
    assert sorted(p.name for p in s.outputs) == ["axolotl.yaml", "data.jsonl"]
    config = yaml.safe_load((s.run_dir / "data" / "axolotl.yaml").read_text(encoding="utf-8"))
    assert config["datasets"][0]["path"] == str(s.run_dir / "data" / "data.jsonl")
    record = objects(s.run_dir / "data" / "data.jsonl")[0]
    assert record["metadata"]["gristmill.ops"] == ["dedup.exact@1"]
    assert record["metadata"]["gristmill.recipe"] == s.stats["output"]["provenance"]["recipe"]


# ---- TRL's own checks -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trl_data_utils():
    import trl.data_utils  # trl is in the dev extra: make test installs it

    return trl.data_utils


@pytest.fixture(scope="module")
def chat_tokenizer():
    from transformers import AutoTokenizer

    from gristmill.models.causal_lm import hf_dir

    return AutoTokenizer.from_pretrained(hf_dir())  # the packaged SmolLM2 (make test installs it)


def test_trl_reads_prompt_completion_and_preference_files(tmp_path: Path, trl_data_utils, chat_tokenizer) -> None:
    du = trl_data_utils
    write(tmp_path / "pc.jsonl", "prompt_completion", pa.table({"id": ["m"], "messages": [MSGS]}))
    write(tmp_path / "pref.jsonl", "preference", PAIRS)
    write(tmp_path / "std.jsonl", "preference", PAIRS, style="standard")
    pc, pref, std = (load_json(tmp_path / f) for f in ("pc.jsonl", "pref.jsonl", "std.jsonl"))
    assert du.is_conversational(pc[0]) and du.is_conversational(pref[0]) and not du.is_conversational(std[0])
    text = du.maybe_apply_chat_template(pref[0], chat_tokenizer)
    assert set(text) >= {"prompt", "chosen", "rejected"}
    assert "Capital of France?" in text["prompt"] and "Paris." in text["chosen"] and "Lyon." in text["rejected"]
    assert "Paris." in du.maybe_apply_chat_template(pc[0], chat_tokenizer)["completion"]
    unpaired = du.unpair_preference_dataset(pref.remove_columns(["id", "metadata"]))
    write(tmp_path / "u.jsonl", "preference", PAIRS, unpaired=True, metadata=False)
    ours = load_json(tmp_path / "u.jsonl").remove_columns(["id"])
    assert unpaired.to_list() == ours.to_list()  # our unpaired form is what TRL makes of the paired one
