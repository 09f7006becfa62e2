"""Checkpoints: atomic save, pruning, broken ones skipped with a reason, the shape check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gristmill.train.checkpoint import (Checkpoint, ResumeMismatch, check_compatible, complete_checkpoints,
                                        load_latest, resume_point, save_checkpoint, tensor_shapes)


def _state(step: int) -> dict:
    return {"model": {"w": torch.full((2, 3), float(step))}, "identity": {"model": "m", "lora_r": 4},
            "shapes": {"w": [2, 3]}}


def _steps(root: Path) -> list[int]:
    return [s for s, _ in complete_checkpoints(root)]


def test_save_keeps_the_newest_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    for step in (1, 2, 3):
        save_checkpoint(root, step, _state(step), keep=2)
    assert sorted(p.name for p in root.iterdir()) == ["step-000002", "step-000003"]
    meta = json.loads((root / "step-000003" / "meta.json").read_text())
    assert meta["step"] == 3 and meta["files"]["state.pt"] == (root / "step-000003" / "state.pt").stat().st_size
    ckpt = load_latest(root)
    assert ckpt is not None and ckpt.step == 3 and torch.equal(ckpt.state["model"]["w"], torch.full((2, 3), 3.0))
    save_checkpoint(root, 4, _state(4), keep=0)  # 0: keep all
    assert _steps(root) == [2, 3, 4]


def test_a_save_cut_short_is_never_read_and_is_cleaned_up(tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    save_checkpoint(root, 2, _state(2))
    # killed while writing step 4: only the temporary directory exists, with half a file
    tmp = root / ".tmp-step-000004"
    tmp.mkdir()
    (tmp / "state.pt").write_bytes(b"PK\x03\x04 half a zip")
    (root / ".old-step-000001").mkdir()  # killed while pruning
    skipped = []
    ckpt = load_latest(root, lambda p, why: skipped.append(p))
    assert ckpt is not None and ckpt.step == 2 and skipped == []
    save_checkpoint(root, 4, _state(4))
    assert sorted(p.name for p in root.iterdir()) == ["step-000002", "step-000004"]


@pytest.mark.parametrize("damage, reason", [
    (lambda d: (d / "state.pt").write_bytes((d / "state.pt").read_bytes()[:100]), "state.pt has 100 bytes"),
    (lambda d: (d / "state.pt").unlink(), "state.pt is missing"),
    (lambda d: (d / "meta.json").unlink(), "no meta.json"),
    (lambda d: (d / "meta.json").write_text('{"step": 4, "fil'), "unreadable meta.json"),
    # same size, garbage inside: torch.load fails
    (lambda d: (d / "state.pt").write_bytes(b"\0" * (d / "state.pt").stat().st_size), "state.pt does not load"),
])
def test_a_damaged_newest_checkpoint_is_skipped_with_its_reason(tmp_path: Path, damage, reason: str) -> None:
    root = tmp_path / "ckpt"
    save_checkpoint(root, 2, _state(2))
    save_checkpoint(root, 4, _state(4))
    damage(root / "step-000004")
    notes: list[str] = []
    ckpt = resume_point(root, notes.append)
    assert ckpt is not None and ckpt.step == 2
    assert torch.equal(ckpt.state["model"]["w"], torch.full((2, 3), 2.0))
    assert len(notes) == 2 and "step-000004 skipped" in notes[0] and reason in notes[0]
    assert notes[1].startswith("resuming from step 2 ")
    # the next save at step 4 replaces the broken one
    save_checkpoint(root, 4, _state(4))
    assert load_latest(root).step == 4


def test_no_usable_checkpoint_starts_from_zero_and_says_so(tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    save_checkpoint(root, 3, _state(3))
    (root / "step-000003" / "meta.json").unlink()
    notes: list[str] = []
    assert resume_point(root, notes.append) is None
    assert notes[-1] == f"no usable checkpoint in {root}; starting from step 0"
    notes.clear()
    assert resume_point(tmp_path / "none", notes.append) is None
    assert notes == [f"no checkpoint in {tmp_path / 'none'}; starting from step 0"]


def test_saving_a_step_drops_later_ones_that_were_passed_over(tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    for step in (2, 4, 6):
        save_checkpoint(root, step, _state(step), keep=3)
    (root / "step-000006" / "meta.json").unlink()  # broken: a resume goes on from step 4
    assert load_latest(root).step == 4
    save_checkpoint(root, 5, _state(5), keep=3)
    assert sorted(p.name for p in root.iterdir()) == ["step-000002", "step-000004", "step-000005"]


def test_check_compatible_names_what_changed(tmp_path: Path) -> None:
    ckpt = Checkpoint(4, tmp_path / "step-000004", _state(4))
    check_compatible(ckpt, {"model": "m", "lora_r": 4}, {"w": (2, 3)})  # same: no error
    with pytest.raises(ResumeMismatch, match=r"shape changed \(lora_r 4 -> 8\); train without --resume"):
        check_compatible(ckpt, {"model": "m", "lora_r": 8}, {"w": (2, 6)})
    with pytest.raises(ResumeMismatch, match=r"model m -> other"):
        check_compatible(ckpt, {"model": "other", "lora_r": 4}, {"w": (2, 3)})
    with pytest.raises(ResumeMismatch, match=r"w \[2, 3\] -> \[3, 3\]"):
        check_compatible(ckpt, {"model": "m", "lora_r": 4}, tensor_shapes({"w": torch.zeros(3, 3)}))
    with pytest.raises(ResumeMismatch, match=r"1 tensors added or removed, e.g. v"):
        check_compatible(ckpt, {"model": "m", "lora_r": 4}, {"w": (2, 3), "v": (1,)})
    with pytest.raises(ValueError) as info:  # a ValueError, in one line
        check_compatible(ckpt, {"model": "m", "lora_r": 2}, {"w": (2, 3)})
    assert "\n" not in str(info.value)
