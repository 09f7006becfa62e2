"""gristmill.train.config: one declaration per setting, defaults per trainer, checks, older names, no torch."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path

import pytest

from gristmill.train.config import (BATCH_SIZE, ConfigError, FitConfig, LMConfig, SFTConfig, Setting, TrainConfig,
                                    setting_of)

SRC = Path(__file__).resolve().parents[2] / "src"


def test_importing_the_config_imports_neither_torch_nor_typer() -> None:
    code = ("import sys; import gristmill.train.config as c; c.SFTConfig(); c.LMConfig(); c.FitConfig(); "
            "print(sorted(m for m in ('torch', 'typer', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_every_trainer_shares_the_train_config_fields() -> None:
    shared = [f.name for f in fields(TrainConfig)]
    for cls in (SFTConfig, LMConfig, FitConfig):
        names = [f.name for f in fields(cls)]
        assert names[:len(shared)] == shared, cls  # the shared settings first, in one order
        for name in shared:
            assert setting_of(cls, name) is setting_of(TrainConfig, name), (cls, name)  # declared once


def test_defaults_per_trainer() -> None:
    assert TrainConfig().dtype == "float32" and TrainConfig().lr is None
    sft, lm, fit = SFTConfig(), LMConfig(), FitConfig()
    assert (sft.lr, sft.batch_size, sft.dtype, sft.schedule, sft.epochs, sft.dev_fraction) == \
        (2e-4, 8, "auto", "cosine", 1.0, 0.05)
    assert SFTConfig(method="full").lr == 2e-5 and SFTConfig(method="full", lr=1e-3).lr == 1e-3
    assert (lm.lr, lm.batch_size, lm.warmup, lm.min_lr_ratio, lm.weight_decay, lm.checkpoint_every, lm.steps) == \
        (3e-3, 32, 100, 0.1, 0.1, 500, 1500)
    assert (fit.lr, fit.batch_size, fit.schedule, fit.epochs, fit.max_length, fit.patience, fit.weight_decay) == \
        (5e-5, 16, "linear", 3, 128, 2, 0.01)


@pytest.mark.parametrize(("cls", "values", "field", "message"), [
    (SFTConfig, {"batch_size": 0}, "batch_size", "batch_size must be >= 1, not 0"),
    (SFTConfig, {"lr": 0.0}, "lr", "lr must be > 0, not 0"),
    (SFTConfig, {"dtype": "float16"}, "dtype", "dtype must be one of auto, bfloat16, float32, not 'float16'"),
    (SFTConfig, {"method": "bogus"}, "method", "method must be one of lora, full"),
    (SFTConfig, {"warmup_ratio": 1.0}, "warmup_ratio", "warmup_ratio must be < 1, not 1"),
    (SFTConfig, {"epochs": 0}, "epochs", "epochs must be > 0"),
    (FitConfig, {"schedule": "step"}, "schedule", "schedule must be one of cosine, linear, constant"),
    (FitConfig, {"patience": 0}, "patience", "patience must be >= 1"),
    (FitConfig, {"max_length": 4}, "max_length", "max_length must be >= 8"),
    (LMConfig, {"vocab_size": 100}, "vocab_size", "vocab_size must be >= 258"),
    (LMConfig, {"dropout": 1.0}, "dropout", "dropout must be < 1"),
    (LMConfig, {"d_model": 30, "n_head": 4}, "d_model", "d_model (30) must be a multiple of n_head (4)"),
    (LMConfig, {"threads": 0}, "threads", "threads must be >= 1"),
    (LMConfig, {"grad_accum": 0}, "grad_accum", "grad_accum must be >= 1"),
    (LMConfig, {"max_grad_norm": float("nan")}, "max_grad_norm", "max_grad_norm must be a number, not nan"),
])
def test_a_value_outside_its_declaration_is_refused_naming_the_field(cls: type, values: dict, field: str,
                                                                     message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")) as caught:
        cls(**values)
    assert caught.value.field == field and isinstance(caught.value, ValueError)


def test_older_field_names_are_still_accepted() -> None:
    assert SFTConfig(learning_rate=1e-3).lr == 1e-3
    lm = LMConfig(bf16=True, grad_clip=0.5)
    assert lm.dtype == "bfloat16" and lm.max_grad_norm == 0.5 and "bf16" not in lm.to_dict()
    assert FitConfig(bf16=True).dtype == "bfloat16" and FitConfig(bf16=False).dtype == "float32"
    assert replace(lm, seed=3).dtype == "bfloat16"  # dataclasses.replace keeps working


def test_warmup_steps_and_dict_round_trip() -> None:
    assert SFTConfig(warmup_ratio=0.1).warmup_steps(95) == 9
    assert SFTConfig(warmup_ratio=0.1, warmup=3).warmup_steps(95) == 3
    sft = SFTConfig(target_modules=["q_proj"], dtype="float32")
    d = sft.to_dict()
    assert d["target_modules"] == ["q_proj"] and d["lr"] == 2e-4
    assert SFTConfig.from_dict({**d, "kind": "train-sft", "data": "x.jsonl"}) == sft  # other keys ignored
    old = {"vocab_size": 300, "grad_clip": 1.0, "bf16": False, "steps": 5}  # a model's config.json of before
    assert LMConfig.from_dict(old) == LMConfig(vocab_size=300, steps=5)


def test_loop_settings_come_from_the_config() -> None:
    from gristmill.train.loop import LoopConfig

    cfg = FitConfig(lr=0.1, warmup_ratio=0.25, weight_decay=0.5, max_grad_norm=2.0, checkpoint_every=3,
                    keep_checkpoints=4, min_lr_ratio=0.1, dtype="bfloat16")
    loop = LoopConfig.of(cfg, 8)
    assert (loop.lr, loop.total_steps, loop.warmup, loop.schedule, loop.min_lr_ratio, loop.weight_decay,
            loop.max_grad_norm, loop.bf16, loop.checkpoint_every, loop.keep_checkpoints) == \
        (0.1, 8, 2, "linear", 0.1, 0.5, 2.0, True, 3, 4)
    assert LoopConfig.of(cfg, 8, bf16=False, betas=(0.9, 0.95)).bf16 is False


def test_a_setting_states_its_problem() -> None:
    s = Setting("x", ge=1, lt=10)
    assert s.problem(1) is None and s.problem(None) is None
    assert s.problem(0) == "must be >= 1, not 0" and s.problem(10) == "must be < 10, not 10"
    assert Setting("y", choices=("a", "b")).problem("c") == "must be one of a, b, not 'c'"
    assert BATCH_SIZE.problem(True) is None  # flags are not numbers to bound
