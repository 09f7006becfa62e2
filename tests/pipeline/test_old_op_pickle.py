"""A run directory from before a module move (issue 17): its global steps' ``op.pkl`` name module
paths that no longer exist. Resuming must fit such a step again, not crash on the old pickle."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from gristmill.pipeline.worker import loadable
from gristmill.runner import run_recipe
from tests.conftest import recipe_dict
from tests.pipeline.test_kill_resume import snapshot

NEW, OLD = b"gristmill.ops.dedup.exact", b"gristmill.ops.dedup_exact"  # same length: the pickle stays well-formed


def _dedup_pkl(run: Path) -> Path:
    (pkl,) = [p for p in (run / "cache").glob("step-*/op.pkl") if NEW in p.read_bytes()]
    return pkl


def _make_old(pkl: Path) -> None:
    data = pkl.read_bytes()
    pkl.write_bytes(data.replace(NEW, OLD))
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(pkl.read_bytes())


def test_loadable(tmp_path: Path) -> None:
    assert not loadable(tmp_path / "missing.pkl")
    (tmp_path / "bad.pkl").write_bytes(b"\x80\x05not a pickle")
    assert not loadable(tmp_path / "bad.pkl")
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps({"a": 1}))
    assert loadable(tmp_path / "ok.pkl")


def test_a_global_step_pickled_under_an_old_module_path_is_fitted_again(docs_file: Path, tmp_path: Path) -> None:
    recipe = recipe_dict(docs_file)
    run_recipe(recipe, runs_dir=tmp_path, progress=False)
    run = tmp_path / "t"
    expected = snapshot(run)
    pkl = _dedup_pkl(run)

    # every shard of the step is done: the run finishes, and the step's op.pkl is readable again
    _make_old(pkl)
    assert not loadable(pkl)
    run_recipe(recipe, runs_dir=tmp_path, progress=False)
    assert loadable(pkl)
    assert snapshot(run) == expected

    # killed after fitting, before applying: the shards are computed with the step fitted again
    _make_old(pkl)
    for shard in pkl.parent.glob("shard-*"):
        shutil.rmtree(shard)
    run_recipe(recipe, runs_dir=tmp_path, progress=False)
    assert loadable(pkl)
    assert snapshot(run) == expected
