from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gristmill.recipe import RecipeError, load_recipe
from tests.conftest import recipe_dict


def errors_of(data: dict, overrides: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(RecipeError) as info:
        load_recipe(data, overrides)
    return info.value.errors


def test_valid_recipe_resolves_defaults(docs_file: Path) -> None:
    r = load_recipe(recipe_dict(docs_file))
    resolved = r.resolved()
    assert [s["op"] for s in resolved["steps"]] == ["clean.normalize", "filter.length", "dedup.exact", "split.train_test"]
    assert resolved["steps"][1]["params"]["min_words"] == 15
    assert "max_chars" in resolved["steps"][1]["params"]  # defaults are filled in
    assert resolved["input"]["path"] == [str(docs_file)]


def test_negative_parameter_names_its_location(docs_file: Path) -> None:
    data = recipe_dict(docs_file)
    data["steps"][1]["params"]["min_words"] = -1
    assert errors_of(data) == ["steps[1].params.min_words: must be >= 0"]


def test_unknown_operator_suggests_close_names(docs_file: Path) -> None:
    data = recipe_dict(docs_file)
    data["steps"][1]["op"] = "filter.lenght"
    [err] = errors_of(data)
    assert err.startswith("steps[1].op: unknown operator 'filter.lenght'") and "filter.length" in err


def test_unknown_parameter_and_top_level_key(docs_file: Path) -> None:
    data = recipe_dict(docs_file)
    data["steps"][1]["params"]["min_wrds"] = 3
    errs = errors_of(data)
    [err] = errs
    assert err.startswith("steps[1].params.min_wrds: unknown key; did you mean min_words")
    data = recipe_dict(docs_file, stpes=[])
    [err] = errors_of(data)
    assert err.startswith("stpes: unknown key; did you mean steps")


def test_all_errors_are_reported_together(docs_file: Path) -> None:
    data = recipe_dict(docs_file)
    data["steps"][0]["op"] = "clean.nope"
    data["steps"][1]["params"]["min_words"] = -5
    data["steps"][3]["params"]["test"] = 7
    errs = errors_of(data)
    assert len(errs) == 3
    assert any(e.startswith("steps[0].op") for e in errs)
    assert any(e.startswith("steps[1].params.min_words") for e in errs)
    assert any(e.startswith("steps[3].params.test") for e in errs)


def test_step_reading_a_missing_column_is_rejected(docs_file: Path) -> None:
    data = recipe_dict(docs_file)
    data["steps"][3]["params"]["label_column"] = "category"
    [err] = errors_of(data)
    assert err.startswith("steps[3] (split.train_test): reads column(s) 'category'")
    data["steps"][3]["params"]["label_column"] = "label"  # the input provides it
    load_recipe(data)


def test_set_overrides_a_value(docs_file: Path) -> None:
    r = load_recipe(recipe_dict(docs_file), ["steps.1.params.min_words=25"])
    assert r.steps[1].op.params.min_words == 25
    assert errors_of(recipe_dict(docs_file), ("steps.9.params.x=1",))[0].startswith("--set steps.9.params.x")
    assert errors_of(recipe_dict(docs_file), ("steps.1.params.min_words=-2",)) == [
        "steps[1].params.min_words: must be >= 0"]


def test_missing_input_path_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    [err] = errors_of(recipe_dict(missing))
    assert err.startswith("input.path: ") and str(missing) in err


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("input:\n  path: [unclosed\nsteps: []\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(p)
    assert "line" in info.value.errors[0] and "invalid YAML" in info.value.errors[0]


def test_relative_paths_resolve_against_the_recipe(tmp_path: Path, docs_file: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump({"input": {"path": docs_file.name}, "steps": []}))
    r = load_recipe(p)
    assert r.input_paths == [docs_file.resolve()] and r.name == "r"


def test_shipped_recipes_validate() -> None:
    repo = Path(__file__).resolve().parents[1]
    for recipe in sorted((repo / "recipes").glob("*.yaml")):
        load_recipe(recipe)
