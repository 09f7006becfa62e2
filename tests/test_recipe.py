from __future__ import annotations

import subprocess
import sys
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


def test_shipped_recipes_validate(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    # recipes/digits.yaml reads the image folder recipes/data/make_digits.py writes (its documented first step)
    digits = tmp_path / "digits"
    subprocess.run([sys.executable, str(repo / "recipes" / "data" / "make_digits.py"), "--out", str(digits),
                    "--limit", "20"], check=True, capture_output=True)
    for recipe in sorted((repo / "recipes").glob("*.yaml")):
        load_recipe(recipe, [f"input.path={digits}"] if recipe.stem == "digits" else [])


# ---- hostile recipe files (issue 15, items 5 and 9) ---------------------------------------

def alias_bomb(levels: int = 9, width: int = 10) -> str:
    lines = ["name: bomb", "input: {path: docs.jsonl}", "x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * width) + "]")
    lines.append("steps:\n  - op: generate.self_instruct\n    params:\n      backend: {type: mock, responses: *x%d}"
                 % (levels - 1))
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_before_it_is_built(tmp_path: Path) -> None:
    import time

    from gristmill.recipe import MAX_YAML_NODES

    p = tmp_path / "bomb.yaml"
    p.write_text(alias_bomb())
    t0 = time.perf_counter()
    with pytest.raises(RecipeError) as info:
        load_recipe(p)
    assert time.perf_counter() - t0 < 5
    [err] = info.value.errors
    assert f"more than {MAX_YAML_NODES:,} YAML nodes" in err and err.startswith("line ")


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "loop.yaml"
    p.write_text("name: loop\ninput: {path: x.jsonl}\na: &a [1, *a]\n")
    with pytest.raises(RecipeError, match="refers to the node that contains it|invalid YAML"):
        load_recipe(p)


def test_modest_aliases_still_load(tmp_path: Path, docs_file: Path) -> None:
    p = tmp_path / "ok.yaml"
    p.write_text(f"name: ok\ninput: &inp {{path: {docs_file}, format: jsonl}}\nsteps:\n"
                 "  - &len {op: filter.length, params: {min_words: 3}}\n  - *len\n")
    assert [s.op.name for s in load_recipe(p).steps] == ["filter.length", "filter.length"]


def test_alias_bomb_in_a_set_value_is_refused(docs_file: Path) -> None:
    levels = ["&a0 [" + ", ".join(["x"] * 10) + "]"]
    levels += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    errs = errors_of(recipe_dict(docs_file), (f"description=[{', '.join(levels)}]",))
    assert len(errs) == 1 and errs[0].startswith("--set description:") and "YAML nodes" in errs[0]


def test_recipe_that_is_not_utf8_is_a_located_error(tmp_path: Path) -> None:
    p = tmp_path / "latin1.yaml"
    p.write_bytes("name: t\ndescription: caf\u00e9\ninput: {path: x.jsonl}\n".encode("latin-1"))
    with pytest.raises(RecipeError) as info:
        load_recipe(p)
    [err] = info.value.errors
    assert err.startswith("line 2: not UTF-8") and "0xe9" in err


def test_an_error_in_one_section_does_not_hide_the_others(docs_file: Path) -> None:
    data = recipe_dict(docs_file, executor={"workers": 0}, strict="maybe")
    data["steps"][0]["op"] = "clean.nope"
    data["steps"][1]["params"]["min_words"] = -5
    data["output"] = {"format": "jsonl", "nonsense": 1}
    errs = errors_of(data)
    for where in ("executor.workers", "strict", "steps[0].op", "steps[1].params.min_words", "output.nonsense"):
        assert any(e.startswith(where) for e in errs), (where, errs)


def test_executor_type_names_a_registered_executor(docs_file: Path) -> None:
    [err] = errors_of(recipe_dict(docs_file, executor={"type": "lcoal"}))
    assert err.startswith("executor.type: ") and "did you mean local?" in err
    assert load_recipe(recipe_dict(docs_file, executor={"type": "local", "workers": 1})).spec.executor.type == "local"
