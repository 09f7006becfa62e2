"""The Hub layout: data/<split>-0000i-of-0000N.parquet + README.md whose YAML huggingface_hub parses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from huggingface_hub import DatasetCard, DatasetCardData
from pydantic import ValidationError

from gristmill.io import hub, open_writer
from gristmill.io.hub import CardMetadata, card_metadata, card_yaml, hub_license, size_category, write_hub
from gristmill.runner import run_recipe

PROVENANCE = {"recipe": "0123456789abcdef", "ops": ["generate.self_instruct@1", "dedup.exact@1"]}


def load(root: Path) -> datasets.DatasetDict:
    datasets.disable_progress_bars()
    return datasets.load_dataset("parquet", data_dir=str(root), cache_dir=str(root.parent / ".hf-cache"))


def test_hub_layout_loads_with_datasets_and_its_card_parses(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    train = pa.table({"id": [f"t{i}" for i in range(5)], "text": list("abcde"), "license": ["MIT"] * 4 + ["CC BY 4.0"],
                      "lang.code": ["en"] * 5})
    test = pa.table({"id": ["x"], "text": ["z"], "license": ["MIT"], "lang.code": ["fr"]})
    files = write_hub(root, {"train": train, "test": test}, provenance=PROVENANCE, rows_per_file=2,
                      card={"task_categories": "text-generation", "pretty_name": "Tiny"})
    assert sorted(p.relative_to(root).as_posix() for p in files) == [
        "README.md", "data/test-00000-of-00001.parquet", "data/train-00000-of-00003.parquet",
        "data/train-00001-of-00003.parquet", "data/train-00002-of-00003.parquet"]
    ds = load(root)
    assert ds["train"]["id"] == [f"t{i}" for i in range(5)] and ds["test"]["text"] == ["z"]
    card = DatasetCard.load(root / "README.md")
    assert isinstance(card.data, DatasetCardData)
    data = card.data.to_dict()
    assert data["license"] == ["cc-by-4.0", "mit"] and data["language"] == ["en", "fr"]
    assert data["multilinguality"] == ["multilingual"] and data["size_categories"] == ["n<1K"]
    assert data["annotations_creators"] == ["machine-generated"] and "synthetic" in data["tags"]
    assert data["configs"] == [{"config_name": "default", "data_files": [
        {"split": "test", "path": "data/test-*"}, {"split": "train", "path": "data/train-*"}]}]
    assert data["pretty_name"] == "Tiny" and data["gristmill"] == PROVENANCE
    assert "| train | 5 | 3 |" in card.text
    meta = pq.read_schema(root / "data" / "test-00000-of-00001.parquet").metadata
    assert json.loads(meta[b"gristmill.provenance"]) == PROVENANCE
    assert len(datasets.load_dataset(str(root), cache_dir=str(tmp_path / ".c2"))["train"]) == 5  # README configs


def test_writing_a_split_again_replaces_its_files(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_hub(root, pa.table({"id": ["a", "b", "c"]}), rows_per_file=1)
    write_hub(root, pa.table({"id": ["a"]}))
    assert sorted(p.name for p in (root / "data").iterdir()) == ["train-00000-of-00001.parquet"]
    with open_writer(root / "data", "hub") as w:  # a run's split-less output is the Hub's train split
        w.write(pa.table({"id": ["q"]}))
    assert load(root)["train"]["id"] == ["q"]


def test_the_yaml_is_the_same_with_or_without_huggingface_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    meta = card_metadata(rows=12_345, splits={"train": "data/train-*"}, licenses=["Apache-2.0", "Custom terms"],
                         languages={"en": 12_000, "de": 345, "xx": 1}, ops=["judge.score@1"],
                         columns=["tokens", "tags"], pretty_name="n", provenance=PROVENANCE)
    assert list(meta) == [k for k in hub.CARD_KEYS if k in meta]
    assert meta["license"] == ["apache-2.0", "other"] and meta["license_name"] == "custom-terms"
    assert meta["language"] == ["en", "de"]  # xx: under 1% of the rows
    assert meta["task_categories"] == ["token-classification"] and meta["size_categories"] == ["10K<n<100K"]
    assert meta["annotations_creators"] == ["machine-generated"] and meta["language_creators"] == ["found"]
    with_hub = card_yaml(meta)
    assert with_hub == DatasetCardData(**meta).to_yaml()
    import builtins
    real = builtins.__import__

    def no_hub(name, *args, **kwargs):
        if name.startswith("huggingface_hub"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_hub)
    assert card_yaml(meta) == with_hub
    assert yaml.safe_load(with_hub) == meta


def test_license_ids_size_buckets_and_validated_overrides() -> None:
    assert [hub_license(v) for v in ("Apache-2.0", "CC BY-SA 4.0", "CC-BY-4.0", "cc0", "MIT", "public domain")] == [
        "apache-2.0", "cc-by-sa-4.0", "cc-by-4.0", "cc0-1.0", "mit", None]
    assert [size_category(n) for n in (0, 999, 1000, 99_999, 100_000, 10**13)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "n>1T"]
    assert CardMetadata(license="Apache-2.0", language="en").overrides() == {"license": ["apache-2.0"],
                                                                             "language": ["en"]}
    for bad, where in [({"language": ["English"]}, "ISO 639"), ({"license": ["my own"]}, "Hugging Face license id"),
                       ({"size_categories": ["huge"]}, "size category"), ({"task_categories": ["Text Gen"]}, "Hub id"),
                       ({"langauge": ["en"]}, "Extra inputs")]:
        with pytest.raises(ValidationError, match=where):
            CardMetadata(**bad)


def test_a_recipe_writes_the_hub_layout_and_its_card_is_the_readme(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    rows = [{"id": f"r{i}", "text": f"The quick brown fox number {i} jumps over the lazy dog.", "license": "MIT"}
            for i in range(20)]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    recipe = {"name": "hubrun", "input": {"path": str(data)},
              "steps": [{"op": "lang.identify"}, {"op": "split.train_test", "params": {"test": 0.25}}],
              "output": {"format": "hub", "rows_per_file": 10},
              "card": {"task_categories": ["text-classification"], "tags": ["demo"]}, "executor": {"workers": 1}}
    s = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False, report=False)
    root = s.run_dir / "data"
    ds = load(root)
    assert ds["train"].num_rows + ds["test"].num_rows == 20 and ds["train"].num_rows == 15
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert readme == (s.run_dir / "DATASET_CARD.md").read_text(encoding="utf-8")  # the whole card, YAML first
    meta = DatasetCard(readme).data.to_dict()
    assert meta["task_categories"] == ["text-classification"] and meta["tags"] == ["demo"]  # the recipe's
    assert meta["language"] == ["en"] and meta["license"] == ["mit"] and meta["pretty_name"] == "hubrun"
    assert meta["gristmill"]["ops"] == ["lang.identify@1", "split.train_test@1"]
    assert [f["split"] for f in meta["configs"][0]["data_files"]] == ["test", "train"]
    assert "# Dataset card: hubrun" in readme
    again = run_recipe(recipe, runs_dir=tmp_path / "runs", progress=False, report=False)  # rerun: same files
    assert (again.run_dir / "data" / "README.md").read_text(encoding="utf-8").startswith("---\n")
    shutil.rmtree(again.run_dir / "cache")  # the card is then rebuilt from the hub files themselves
    from gristmill.audit import build_card
    from gristmill.pipeline.run_reader import RunReader

    assert RunReader(again.run_dir).output_source == "data"
    assert DatasetCard(build_card(again.run_dir)).data.to_dict()["language"] == ["en"]


def test_push_to_hub_uploads_the_card_and_parquet_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not against the network: HfApi is replaced by a recorder."""
    import huggingface_hub

    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kw):
            calls.append(("create", repo_id, kw["repo_type"], kw["exist_ok"]))

        def upload_folder(self, **kw):
            calls.append(("upload", kw["repo_id"], kw["allow_patterns"]))
            return type("Info", (), {"commit_url": "https://hf.co/datasets/me/x/commit/1"})()

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    root = tmp_path / "ds"
    write_hub(root, pa.table({"id": ["a"]}))
    assert hub.push_to_hub(root, "me/x", token="t") == "https://hf.co/datasets/me/x/commit/1"
    assert calls == [("init", "t"), ("create", "me/x", "dataset", True),
                     ("upload", "me/x", ["README.md", "data/*.parquet"])]
    with pytest.raises(ValueError, match="not a hub-layout directory"):
        hub.push_to_hub(tmp_path, "me/y")
