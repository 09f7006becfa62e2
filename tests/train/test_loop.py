"""The one training loop: schedule, weight-decay rule, accumulation, clipping, checkpoints and bitwise resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gristmill.train.checkpoint import ResumeMismatch, save_checkpoint
from gristmill.train.loop import Loop, LoopConfig, lr_factor, param_groups


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Tiny(torch.nn.Module):
    """Embedding, LayerNorm, dropout and a linear head: every kind of parameter the decay rule sorts."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(10, 8)
        self.norm = torch.nn.LayerNorm(8)
        self.drop = torch.nn.Dropout(0.3)
        self.out = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.norm(self.emb(x))))


def _data(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(step)
    return torch.randint(0, 10, (6,), generator=g), torch.randint(0, 3, (6,), generator=g)


def _loss(model: Tiny):
    return lambda b: torch.nn.functional.cross_entropy(model(b[0]), b[1])


def test_lr_factor_warmup_then_cosine_linear_or_constant() -> None:
    assert [lr_factor(s, 10, warmup=2) for s in (0, 1)] == [0.5, 1.0]
    assert lr_factor(2, 10, warmup=2) == 1.0 and lr_factor(10, 10, warmup=2) == pytest.approx(0.0)
    assert lr_factor(6, 10, warmup=2, schedule="cosine") == pytest.approx(0.5)
    assert lr_factor(6, 10, warmup=2, schedule="linear") == pytest.approx(0.5)
    assert lr_factor(4, 10, warmup=2, schedule="linear", min_ratio=0.2) == pytest.approx(0.2 + 0.8 * 0.75)
    assert lr_factor(9, 10, warmup=2) > 0  # the last step still learns
    assert lr_factor(500, 10, schedule="constant") == 1.0 and lr_factor(0, 0, 4, "constant") == 0.25
    cos = [lr_factor(s, 50, 5, "cosine", 0.1) for s in range(5, 60)]
    assert all(a >= b for a, b in zip(cos, cos[1:])) and cos[-1] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="schedule"):
        lr_factor(0, 10, schedule="step")
    with pytest.raises(ValueError, match="schedule"):
        LoopConfig(lr=1.0, schedule="exp")


def test_weight_decay_on_matrices_only_and_frozen_parameters_left_out() -> None:
    model = Tiny()
    model.norm.bias.requires_grad_(False)
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(model.emb.weight), id(model.out.weight)}
    assert {id(p) for p in no_decay["params"]} == {id(model.norm.weight), id(model.out.bias)}


def test_accumulated_micro_batches_equal_one_batch_and_clipping_bounds_the_update() -> None:
    x, y = _data(0)
    whole, split = Tiny().eval(), Tiny().eval()
    whole.drop.p = split.drop.p = 0.0
    a = Loop(whole, LoopConfig(lr=0.1, total_steps=1, max_grad_norm=0.0))
    b = Loop(split, LoopConfig(lr=0.1, total_steps=1, max_grad_norm=0.0))
    la = a.train_step([(x, y)], _loss(whole))
    # two halves, each loss scaled by its share: their sum is the whole batch's mean loss
    lb = b.train_step([(x[:2], y[:2]), (x[2:], y[2:])],
                      lambda m: torch.nn.functional.cross_entropy(split(m[0]), m[1]) * len(m[0]) / len(x))
    assert lb == pytest.approx(la, rel=1e-6) and a.step == b.step == 1
    for p, q in zip(whole.parameters(), split.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    # clipping: AdamW is handed gradients whose global norm is max_grad_norm
    clipped = Tiny()
    c = Loop(clipped, LoopConfig(lr=0.1, total_steps=1, max_grad_norm=1e-3))
    seen = []
    c.optimizer.register_step_pre_hook(lambda opt, *_: seen.append(
        math.sqrt(sum(float(p.grad.pow(2).sum()) for g in opt.param_groups for p in g["params"]))))
    c.train_step([(x, y)], _loss(clipped))
    assert seen[0] == pytest.approx(1e-3, rel=1e-3)


def test_on_step_order_stop_and_checkpoints(tmp_path: Path) -> None:
    model = Tiny()
    loop = Loop(model, LoopConfig(lr=1e-2, total_steps=10, checkpoint_every=3, checkpoint_last=True,
                                  keep_checkpoints=0), tmp_path / "c", {"model": "tiny"})
    assert loop.begin(resume=False) is None
    seen: list[tuple[int, bool]] = []

    def on_step(step: int, loss: float) -> bool:
        seen.append((step, (tmp_path / "c" / f"step-{step:06d}").exists()))
        return step == 7

    assert loop.run(lambda s: [_data(s)], _loss(model), on_step, state=lambda: {"n": len(seen)}) == 7
    assert [s for s, _ in seen] == list(range(1, 8)) and not any(exists for _, exists in seen)  # hook first
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["step-000003", "step-000006"]
    loop = Loop(Tiny(), LoopConfig(lr=1e-2, total_steps=10, checkpoint_every=3, checkpoint_last=True,
                                   keep_checkpoints=0), tmp_path / "c", {"model": "tiny"})
    assert loop.begin(resume=True) == {"n": 6} and loop.step == 6
    loop.run(lambda s: [_data(s)], _loss(loop.model))
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["step-000003", "step-000006", "step-000009",
                                                                   "step-000010"]


def test_resume_is_bitwise_the_uninterrupted_run_dropout_included(tmp_path: Path) -> None:
    cfg = LoopConfig(lr=5e-2, total_steps=12, warmup=3, schedule="cosine", weight_decay=0.1, max_grad_norm=1.0,
                     checkpoint_every=4)

    def train(root: Path, resume: bool = False, stop_after: int | None = None) -> tuple[Tiny, list[float]]:
        torch.manual_seed(1)
        model = Tiny()
        loop = Loop(model, cfg, root, {"model": "tiny"})
        saved = loop.begin(resume)
        losses = list(saved["losses"]) if saved else []
        loop.run(lambda s: [_data(s)], _loss(model), lambda s, v: losses.append(v),
                 state=lambda: {"losses": losses}, stop_after=stop_after)
        return model, losses

    whole, whole_losses = train(tmp_path / "a")
    train(tmp_path / "b", stop_after=10)  # killed after step 10: the last checkpoint is step 8
    torch.manual_seed(99)  # another global RNG state: the checkpoint's is restored
    resumed, resumed_losses = train(tmp_path / "b", resume=True)
    assert resumed_losses == whole_losses
    for k, v in whole.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_checkpoint_keeps_trainable_weights_only_and_refuses_other_shapes_and_old_layouts(tmp_path: Path) -> None:
    model = Tiny()
    model.emb.weight.requires_grad_(False)  # frozen: not in the checkpoint
    loop = Loop(model, LoopConfig(lr=1e-2, total_steps=2, checkpoint_every=1), tmp_path / "c", {"model": "tiny"})
    loop.begin(False)
    loop.run(lambda s: [_data(s)], _loss(model))
    state = torch.load(tmp_path / "c" / "step-000002" / "state.pt", weights_only=False)
    assert "emb.weight" not in state["model"] and "out.weight" in state["model"]
    other = Tiny()
    other.emb.weight.requires_grad_(False)
    with pytest.raises(ResumeMismatch, match=r"shape changed \(model tiny -> small\)"):
        Loop(other, LoopConfig(lr=1e-2, total_steps=2), tmp_path / "c", {"model": "small"}).begin(True)
    # a checkpoint written before the shared loop (no layout mark) is refused, not half-loaded
    old = {k: v for k, v in state.items() if k not in ("layout", "step")}
    save_checkpoint(tmp_path / "old", 1, old)
    with pytest.raises(ResumeMismatch, match="older gristmill"):
        Loop(other, LoopConfig(lr=1e-2, total_steps=2), tmp_path / "old", {"model": "tiny"}).begin(True)
