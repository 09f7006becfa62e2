"""The Python API (``gristmill.run``, ``Pipeline``, ``op``, ``apply``, ``load_run``): the README's
examples run as written, every input kind round-trips, operators run as in a run, and the CLI
calls the same ``run``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from typer.testing import CliRunner

import gristmill
from gristmill.api import data as api_data
from gristmill.ops.base import Context, Mapper
from gristmill.recipe import RecipeError, load_recipe
from gristmill.registry import UnknownOperator
from tests.conftest import REPO, recipe_dict

SENTENCE = "Rivers carry sediment from the mountains down to the sea over many years."
DOCS = [{"text": SENTENCE}, {"text": "Too short."}, {"text": SENTENCE}]


def readme_blocks() -> list[str]:
    """The fenced ``python`` blocks of the README's "Python API" section, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "readme"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md Python API block {i}", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "runs" / "notebook" / "report.html").is_file()
    assert (tmp_path / "runs" / "loose" / "data" / "data.parquet").is_file()


def test_import_is_light_and_the_api_loads_no_model_library() -> None:
    code = ("import sys\n"
            "import gristmill\n"
            "print(sorted(m for m in sys.modules if m.startswith('gristmill')))\n"
            "ops = [gristmill.op('filter.length', min_words=2), gristmill.op('dedup.minhash'), gristmill.op("
            "'generate.qa_from_documents', backend={'type': 'mock'})]\n"
            "gristmill.apply(ops[:2], [{'text': 'a b c'}]); gristmill.Pipeline; gristmill.load_run\n"
            "heavy = ('torch', 'transformers', 'llama_cpp', 'spacy', 'sklearn', 'faiss', 'accelerate', 'peft')\n"
            "print(sorted(m for m in sys.modules if m.partition('.')[0] in heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    first, second = out.stdout.strip().splitlines()
    assert first == "['gristmill']"
    assert second == "[]"


def test_the_package_exports_the_api() -> None:
    for name in gristmill.__all__:
        assert getattr(gristmill, name) is not None
    assert {"run", "Pipeline", "op", "apply", "load_run"} <= set(dir(gristmill))
    with pytest.raises(AttributeError):
        gristmill.no_such_name  # noqa: B018


# ---- op() and apply() on data in memory ------------------------------------------------------

def _to(kind: str, rows: list[dict[str, Any]]) -> Any:
    if kind == "rows":
        return rows
    if kind == "arrow":
        return pa.Table.from_pylist(rows)
    if kind == "pandas":
        import pandas as pd

        return pd.DataFrame(rows)
    import datasets

    return datasets.Dataset.from_list(rows)


def _rows(kind: str, data: Any) -> list[dict[str, Any]]:
    if kind == "rows":
        assert isinstance(data, list)
        return data
    if kind == "arrow":
        assert isinstance(data, pa.Table)
        return data.to_pylist()
    if kind == "pandas":
        import pandas as pd

        assert isinstance(data, pd.DataFrame)
        return data.to_dict("records")
    import datasets

    assert isinstance(data, datasets.Dataset)
    return data.to_list()


@pytest.mark.parametrize("kind", ["rows", "pandas", "arrow", "hf"])
def test_each_input_kind_comes_back_as_it_went_in(kind: str) -> None:
    docs = [{"text": SENTENCE, "n": 1}, {"text": "Too short.", "n": 2}, {"text": SENTENCE, "n": 3}]
    result = gristmill.apply([gristmill.op("filter.length", min_words=5), ("dedup.exact", {})], _to(kind, docs))
    kept, rejected = _rows(kind, result.kept), _rows(kind, result.rejected)
    assert [(r["id"], r["text"], r["n"]) for r in kept] == [("row:1", SENTENCE, 1)]
    assert [(r["id"], r["_where"], r["_reason"]) for r in rejected] == [
        ("row:2", "00-filter.length", "min_words: 2 < 5"), ("row:3", "01-dedup.exact", "duplicate: of row:1")]
    assert [(s["step"], s["rows_in"], s["rows_out"], s["dropped"]) for s in result.steps] == [
        ("00-filter.length", 3, 2, {"min_words": 1}), ("01-dedup.exact", 2, 1, {"duplicate": 1})]


@pytest.mark.parametrize("kind", ["rows", "pandas", "arrow", "hf"])
def test_nothing_rejected_is_an_empty_value_of_the_same_kind(kind: str) -> None:
    result = gristmill.apply("clean.normalize", _to(kind, [{"text": "fine text"}]))
    assert _rows(kind, result.rejected) == []
    assert [r["text"] for r in _rows(kind, result.kept)] == ["fine text"]


def test_ids_follow_the_readers_rule() -> None:
    rows = [{"id": 7, "text": "a"}, {"id": None, "text": "b"}, {"id": "x", "text": "c"}, {"id": "x", "text": "d"},
            {"id": "", "text": "e"}]
    kept = gristmill.apply("clean.normalize", rows).kept
    assert [r["id"] for r in kept] == ["7", "row:2", "x", "x~2", "row:5"]
    table = api_data.with_ids(pa.table({"text": ["a", "b"]}))
    assert table.column_names == ["id", "text"] and table.column("id").to_pylist() == ["row:1", "row:2"]


def test_bad_data_and_bad_steps_are_named() -> None:
    with pytest.raises(TypeError, match="a dict is one row"):
        gristmill.apply("clean.normalize", {"text": "x"})
    with pytest.raises(TypeError, match="row 1 is a str"):
        gristmill.apply("clean.normalize", [{"text": "x"}, "y"])
    with pytest.raises(TypeError, match="step 0"):
        gristmill.apply([42], [{"text": "x"}])
    with pytest.raises(TypeError, match="step 0: .* got \\('filter.length', 'dedup.exact'\\)"):
        gristmill.apply(("filter.length", "dedup.exact"), [{"text": "x"}])  # a chain is a list
    with pytest.raises(KeyError, match="column 'text' not in batch") as info:
        gristmill.apply("filter.length", [{"body": "x"}])
    assert "in step 00-filter.length of gristmill.apply" in info.value.__notes__


def test_op_validates_like_a_recipe() -> None:
    length = gristmill.op("filter.length", {"min_words": 3}, max_words=9)
    assert (length.params.min_words, length.params.max_words) == (3, 9)
    assert length.context.base_dir == Path.cwd()
    with pytest.raises(RecipeError) as info:
        gristmill.op("filter.length", min_words=-1)
    assert info.value.errors == ["params.min_words: must be >= 0"]
    with pytest.raises(UnknownOperator, match="did you mean filter.length"):
        gristmill.op("filter.lenght")


@pytest.mark.parametrize("name", ["dedup.exact", "dedup.minhash"])
def test_a_global_operator_is_fitted_on_every_batch_before_it_applies(name: str) -> None:
    """Duplicates in different batches are found: summarize runs on each batch, fit once on all."""
    texts = [SENTENCE, "A completely different line about baking bread at home on a cold winter morning.",
             "Third of its kind: stars form in clouds of gas and dust that collapse under gravity."]
    rows = [{"id": f"d{i}", "text": texts[i % 3]} for i in range(6)]
    result = gristmill.apply(name, rows, batch_size=2)
    assert [r["id"] for r in result.kept] == ["d0", "d1", "d2"]
    assert sorted(r["id"] for r in result.rejected) == ["d3", "d4", "d5"]
    assert {r["_reason"].partition(":")[0] for r in result.rejected} <= {"duplicate", "near_duplicate"}
    assert [s["rows_in"] for s in result.steps] == [6]


class CountingSetup(Mapper):
    """Upper-cases text; counts its setup calls."""

    name = "test.upper"
    setups = 0

    def setup(self, ctx: Context) -> None:
        type(self).setups += 1

    def map(self, batch: pa.Table) -> pa.Table:
        return batch.set_column(batch.schema.get_field_index("text"), "text",
                                pa.array([t.upper() for t in batch.column("text").to_pylist()]))


def test_setup_runs_once_over_every_batch() -> None:
    op = CountingSetup()
    kept = gristmill.apply(op, [{"text": t} for t in "abcde"], batch_size=2).kept
    assert [r["text"] for r in kept] == list("ABCDE") and CountingSetup.setups == 1
    gristmill.apply(op, [{"text": "f"}])
    assert CountingSetup.setups == 1


def test_a_generator_with_the_mock_backend() -> None:
    answers = ["Question: What do rivers carry?\nAnswer: sediment\nEvidence: Rivers carry sediment",
               "no question here at all"]
    qa = gristmill.op("generate.qa_from_documents", backend={"type": "mock", "responses": answers})
    import pandas as pd

    result = gristmill.apply(qa, pd.DataFrame([{"id": "doc", "text": SENTENCE}, {"id": "other", "text": SENTENCE}]))
    assert isinstance(result.kept, pd.DataFrame) and isinstance(result.rejected, pd.DataFrame)
    assert result.kept["instruction"].tolist() == ["What do rivers carry?"]
    assert result.kept["output"].tolist() == ["sediment"]
    assert len(result.rejected) == 1 and result.rejected["_where"].tolist() == ["00-generate.qa_from_documents"]
    assert result.rejected["_reason"].iloc[0]
    assert result.steps[0]["llm"]["requests"] == 2


# ---- Pipeline ---------------------------------------------------------------------------------

def test_pipeline_builds_the_recipe_a_yaml_file_builds(tmp_path: Path, docs_file: Path) -> None:
    data = recipe_dict(docs_file)
    steps = [gristmill.op("clean.normalize"), ("filter.length", {"min_words": 15}), "dedup.exact",
             {"op": "split.train_test", "params": {"test": 0.25, "seed": 1}}]
    pipe = gristmill.Pipeline(input=data["input"], steps=steps, output="jsonl", name="t", executor={"workers": 1})
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(data))
    assert pipe.validate().resolved() == load_recipe(tmp_path / "t.yaml").resolved()
    assert load_recipe(yaml.safe_load(pipe.to_yaml())).resolved() == pipe.validate().resolved()
    assert pipe.validate(["steps.1.params.min_words=3"]).steps[1].op.params.min_words == 3


def test_pipeline_validate_locates_every_error(docs_file: Path) -> None:
    pipe = gristmill.Pipeline(input=str(docs_file), steps=[
        ("filter.length", {"min_words": -1}), "dedup.exakt", ("quality.gopher", {"text_column": "body"}),
        ("filter.length", {"column": "body"})], output="jsonx", gates=["rows.outt >= 1"])
    with pytest.raises(RecipeError) as info:
        pipe.validate()
    errors = info.value.errors
    assert "steps[0].params.min_words: must be >= 0" in errors
    assert any(e.startswith("steps[1].op: unknown operator 'dedup.exakt'; did you mean dedup.exact") for e in errors)
    assert "steps[2].params.text_column: unknown key; did you mean column?" in errors
    assert any(e.startswith("steps[3] (filter.length): reads column(s) 'body'") for e in errors)
    assert any(e.startswith("output.format:") for e in errors)
    assert any(e.startswith("gates[0]: unknown metric 'rows.outt'") for e in errors)

    with pytest.raises(RecipeError) as info:
        gristmill.Pipeline(steps=["dedup.exact"]).validate()
    assert info.value.errors == ["input: required"]
    with pytest.raises(RecipeError) as info:
        gristmill.Pipeline(input=str(docs_file), steps=["dedup.exact", 3]).validate()
    assert info.value.errors[0].startswith("steps[1]:")


def test_pipeline_paths_resolve_against_base_dir(tmp_path: Path, docs_file: Path) -> None:
    pipe = gristmill.Pipeline(input=docs_file.name, steps=["dedup.exact"], base_dir=docs_file.parent)
    assert pipe.validate().input_paths == [docs_file.resolve()]
    assert len(pipe.apply([{"text": "x"}, {"text": "x"}]).kept) == 1


# ---- run() and load_run() ---------------------------------------------------------------------

@pytest.fixture
def finished_run(tmp_path: Path, docs_file: Path) -> Path:
    summary = gristmill.run(recipe_dict(docs_file, name="api"), runs_dir=tmp_path / "runs", progress=False)
    assert summary.run_dir == tmp_path / "runs" / "api" and summary.audit["passed"]
    return summary.run_dir


def test_load_run_reads_a_real_run(finished_run: Path) -> None:
    run = gristmill.load_run(finished_run)
    stats = json.loads((finished_run / "stats.json").read_text())
    assert run.stats == stats and run.name == "api"
    assert run.data.num_rows == stats["output"]["rows"] > 0
    assert {"id", "text", "split", "dedup.cluster"} <= set(run.data.column_names)
    rejected = run.rejected
    assert rejected.num_rows == sum(sum(s["dropped"].values()) for s in stats["steps"])
    assert set(rejected.column("_where").to_pylist()) == {"01-filter.length", "02-dedup.exact"}
    assert all(rejected.column("_reason").to_pylist())
    assert run.dropped == {rule: n for s in stats["steps"] for rule, n in s["dropped"].items()}
    assert run.quarantine.num_rows == stats["input"]["quarantined"] == 2
    assert {r["line"] for r in run.quarantine.to_pylist()} == {11, 21}
    assert run.audit == json.loads((finished_run / "audit.json").read_text())
    assert run.card == (finished_run / "DATASET_CARD.md").read_text(encoding="utf-8")
    assert run.recipe["steps"][1]["params"]["min_words"] == 15
    assert run.report.is_file()

    frames = gristmill.load_run(finished_run, pandas=True)
    import pandas as pd

    assert isinstance(frames.data, pd.DataFrame) and len(frames.data) == run.data.num_rows
    assert isinstance(frames.rejected, pd.DataFrame) and isinstance(frames.quarantine, pd.DataFrame)


def test_load_run_refuses_an_unfinished_run(finished_run: Path, tmp_path: Path) -> None:
    (finished_run / "INCOMPLETE").write_text("")
    with pytest.raises(gristmill.RunIncomplete, match="incomplete"):
        gristmill.load_run(finished_run)
    assert gristmill.load_run(finished_run, incomplete=True).data.num_rows > 0
    with pytest.raises(gristmill.RunIncomplete, match="no such run directory"):
        gristmill.load_run(tmp_path / "nowhere", incomplete=True)


def test_run_takes_a_dict_with_base_dir_and_overrides(tmp_path: Path, docs_file: Path) -> None:
    data = recipe_dict(Path(docs_file.name), name="rel")
    summary = gristmill.run(data, runs_dir=tmp_path / "runs", base_dir=docs_file.parent, progress=False,
                            overrides=["steps.1.params.min_words=1"], report=False)
    assert summary.stats["steps"][1]["dropped"] == {}
    assert not (summary.run_dir / "report.html").exists()
    with pytest.raises(ValueError, match="overrides"):
        gristmill.run(load_recipe(data, base_dir=docs_file.parent), overrides=["name=x"])


def test_the_cli_calls_the_api_run(tmp_path: Path, docs_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gristmill.api
    from gristmill.cli import app

    calls: list[tuple[Any, dict[str, Any]]] = []
    real = gristmill.api.run

    def spy(recipe: Any, **options: Any) -> Any:
        calls.append((recipe, options))
        return real(recipe, **options)

    monkeypatch.setattr(gristmill.api, "run", spy)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe_dict(docs_file)))
    res = CliRunner().invoke(app, ["run", str(path), "--runs-dir", str(tmp_path / "runs"), "-q",
                                   "--set", "steps.1.params.min_words=3"])
    assert res.exit_code == 0, res.output
    assert calls == [(path, {"overrides": ["steps.1.params.min_words=3"], "runs_dir": tmp_path / "runs", "name": None,
                             "workers": None, "progress": False, "fresh": False, "strict": None,
                             "fresh_cache": False, "overwrite": False})]
    res = CliRunner().invoke(app, ["run", str(path), "--set", "steps.1.params.min_words=-3", "-q"])
    assert res.exit_code == 2 and "steps[1].params.min_words: must be >= 0" in res.output
