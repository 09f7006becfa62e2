from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.rundir import RunDir
from gristmill.train.sft import SFTConfig, epoch_batches, split_dev, train_sft


def make_tiny_model(directory: Path) -> Path:
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer, saved to ``directory``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from gristmill.models.causal_lm import hf_dir

    tokenizer = AutoTokenizer.from_pretrained(hf_dir())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=True, initializer_range=0.2, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def chat_rows(n: int) -> list[list[dict[str, str]]]:
    colours = ["red", "blue", "green", "yellow", "black", "white"]
    return [[{"role": "user", "content": f"Name colour {i % 6}."},
             {"role": "assistant", "content": f"The colour is {colours[i % 6]}."}] for i in range(n)]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


def _cfg(model: Path, **kw) -> SFTConfig:
    base = dict(model=str(model), dtype="float32", batch_size=4, max_length=64, threads=1, seed=3,
                learning_rate=2e-2, warmup_ratio=0.0)
    base.update(kw)
    return SFTConfig(**base)


def test_lora_trains_only_adapter_and_loss_falls(tiny_model: Path, tmp_path: Path) -> None:
    import torch

    run = RunDir.create(tmp_path / "run", kind="train-sft", config={})
    res = train_sft(chat_rows(16), chat_rows(4), _cfg(tiny_model, max_steps=15, lora_dropout=0.0), run=run)
    model = res.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert res.trainable_params < res.total_params / 5
    # frozen base weights are untouched
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    q0 = base.model.layers[0].self_attn.q_proj.weight
    q1 = model.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight
    assert torch.equal(q0, q1)
    first = sum(loss for _, loss in res.losses[:3]) / 3
    last = sum(loss for _, loss in res.losses[-3:]) / 3
    assert last < first - 1.0
    assert res.dev_loss is not None and res.dev_perplexity == pytest.approx(torch.tensor(res.dev_loss).exp().item())
    assert (run.path / "adapter" / "adapter_config.json").is_file()
    assert {p["series"] for p in run.metrics()} == {"train", "dev"}
    assert run.results()["train_tokens"] == res.train_tokens > 0


def test_merged_model_matches_adapter_model(tiny_model: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = RunDir.create(tmp_path / "run", kind="train-sft", config={})
    res = train_sft(chat_rows(8), [], _cfg(tiny_model, max_steps=4), run=run)
    assert res.dev_loss is None
    ids = torch.tensor([[1, 200, 300, 400, 500]])
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    with_adapter = PeftModel.from_pretrained(base, res.adapter_dir).eval()
    merged = AutoModelForCausalLM.from_pretrained(res.merged_dir).eval()
    AutoTokenizer.from_pretrained(res.merged_dir)  # saved with it
    with torch.no_grad():
        a, m = with_adapter(ids).logits, merged(ids).logits
        plain = AutoModelForCausalLM.from_pretrained(tiny_model)(ids).logits
    assert torch.allclose(a, m, atol=1e-4)
    assert not torch.allclose(a, plain, atol=1e-4)  # the adapter did change the model


def test_full_finetuning_changes_base_weights(tiny_model: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    run = RunDir.create(tmp_path / "run", kind="train-sft", config={})
    res = train_sft(chat_rows(8), chat_rows(2), _cfg(tiny_model, method="full", max_steps=3), run=run)
    assert res.trainable_params == res.total_params
    assert res.adapter_dir is None and not (run.path / "adapter").exists()
    before = AutoModelForCausalLM.from_pretrained(tiny_model).model.layers[1].mlp.up_proj.weight
    after = AutoModelForCausalLM.from_pretrained(res.merged_dir).model.layers[1].mlp.up_proj.weight
    assert not torch.allclose(before, after)


def test_full_finetuning_in_bf16_autocast_runs(tiny_model: Path) -> None:
    res = train_sft(chat_rows(8), chat_rows(2), _cfg(tiny_model, method="full", dtype="bfloat16", max_steps=2))
    assert res.dtype == "bfloat16" and res.dev_loss is not None


def test_resume_continues_with_same_batches_and_weights(tiny_model: Path, tmp_path: Path) -> None:
    import torch

    cfg = _cfg(tiny_model, max_steps=6, checkpoint_every=2, grad_accum=2, batch_size=2, lora_dropout=0.1,
               warmup_ratio=0.3, save_merged=False)
    rows = chat_rows(12)
    whole = train_sft(rows, [], cfg, run=RunDir.create(tmp_path / "a", kind="train-sft", config={}))
    run_b = RunDir.create(tmp_path / "b", kind="train-sft", config={})
    cut = train_sft(rows, [], cfg, run=run_b, stop_after=5)  # interrupted after step 5; last checkpoint: step 4
    assert cut.steps == 5 and not (run_b.path / "adapter").exists()
    assert sorted(p.name for p in (run_b.path / "checkpoints").iterdir()) == ["step-000002", "step-000004"]
    resumed = train_sft(rows, [], cfg, run=RunDir.create(run_b.path, kind="train-sft", config={}, resume=True),
                        resume=True)
    assert [s for s, _ in resumed.losses] == list(range(1, 7))
    assert [loss for _, loss in resumed.losses] == pytest.approx([loss for _, loss in whole.losses], abs=1e-6)
    a = {n: p for n, p in whole.model.named_parameters() if p.requires_grad}
    b = {n: p for n, p in resumed.model.named_parameters() if p.requires_grad}
    assert all(torch.allclose(a[n], b[n], atol=1e-6) for n in a)
    assert resumed.train_tokens == whole.train_tokens


def test_rows_with_no_assistant_token_left_are_dropped(tiny_model: Path) -> None:
    long_prompt = [[{"role": "user", "content": "word " * 80}, {"role": "assistant", "content": "ok"}]]
    res = train_sft(chat_rows(4) + long_prompt, [], _cfg(tiny_model, max_steps=1))
    assert res.dropped_no_assistant == 1 and res.train_rows == 4
    with pytest.raises(ValueError, match="no training row"):
        train_sft(long_prompt, [], _cfg(tiny_model, max_steps=1))


def test_batches_group_by_length_and_depend_only_on_seed_and_epoch() -> None:
    lengths = [5, 100, 7, 98, 6, 99, 8, 97]
    b = epoch_batches(lengths, 2, seed=1, epoch=0, pool_batches=4)
    assert sorted(i for batch in b for i in batch) == list(range(8))
    assert all(abs(lengths[x] - lengths[y]) <= 3 for x, y in b)  # short with short, long with long
    assert b == epoch_batches(lengths, 2, seed=1, epoch=0, pool_batches=4)
    assert b != epoch_batches(lengths, 2, seed=1, epoch=1, pool_batches=4) or \
        b != epoch_batches(lengths, 2, seed=2, epoch=0, pool_batches=4)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="method"):
        SFTConfig(method="bogus")
    with pytest.raises(ValueError, match="dtype"):
        SFTConfig(dtype="float16")
    with pytest.raises(ValueError, match="batch_size"):
        SFTConfig(batch_size=0)
    with pytest.raises(ValueError, match="schedule"):
        SFTConfig(schedule="step")
    assert SFTConfig(schedule="constant").schedule == "constant"  # train.loop's schedules
    assert SFTConfig().lr == 2e-4 and SFTConfig(method="full").lr == 2e-5


def test_unknown_target_module_is_named(tiny_model: Path) -> None:
    with pytest.raises(ValueError, match="c_attn"):
        train_sft(chat_rows(4), [], _cfg(tiny_model, target_modules=("c_attn",), max_steps=1))


def test_split_dev() -> None:
    train, dev = split_dev(list(range(20)), 0.1, seed=0)
    assert len(dev) == 2 and sorted(train + dev) == list(range(20))
    assert split_dev(list(range(20)), 0.1, seed=0) == (train, dev)
    assert split_dev([1], 0.5)[1] == []


@pytest.mark.slow
def test_gguf_model_is_dequantized_and_trains(tmp_path: Path) -> None:
    from gristmill.models.locate import smollm2_gguf

    run = RunDir.create(tmp_path / "run", kind="train-sft", config={})
    res = train_sft(chat_rows(2), [], SFTConfig(model=str(smollm2_gguf()), max_steps=1, batch_size=2,
                                               max_length=48, threads=1, save_merged=False), run=run)
    assert res.steps == 1 and (run.path / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_lora_on_real_smollm2_lowers_loss() -> None:
    rows = chat_rows(8)
    res = train_sft(rows, rows[:4], SFTConfig(max_steps=6, batch_size=4, max_length=64, threads=1,
                                             learning_rate=1e-3, warmup_ratio=0.0, lora_dropout=0.0))
    assert res.dtype in ("bfloat16", "float32")
    assert res.losses[-1][1] < res.losses[0][1]
    assert res.dev_loss is not None and res.dev_loss < 3.0


def test_resume_drops_metrics_logged_after_the_checkpoint(tiny_model: Path, tmp_path: Path) -> None:
    cfg = _cfg(tiny_model, max_steps=4, checkpoint_every=2, save_merged=False)
    run = RunDir.create(tmp_path / "r", kind="train-sft", config={})
    train_sft(chat_rows(8), [], cfg, run=run, stop_after=3)
    assert [p["step"] for p in run.metrics("train")] == [1, 2, 3]
    train_sft(chat_rows(8), [], cfg, run=run, resume=True)
    assert [p["step"] for p in run.metrics("train")] == [1, 2, 3, 4]


def test_resume_skips_a_half_written_checkpoint(tiny_model: Path, tmp_path: Path) -> None:
    cfg = _cfg(tiny_model, max_steps=6, checkpoint_every=2, batch_size=2, lora_dropout=0.1, save_merged=False)
    rows = chat_rows(8)
    whole = train_sft(rows, [], cfg, run=RunDir.create(tmp_path / "a", kind="train-sft", config={}))
    run = RunDir.create(tmp_path / "b", kind="train-sft", config={})
    train_sft(rows, [], cfg, run=run, stop_after=5)
    ckpts = run.path / "checkpoints"
    # killed while saving step 6 (a temporary directory), and step 4 damaged after the fact
    (ckpts / ".tmp-step-000006").mkdir()
    (ckpts / ".tmp-step-000006" / "state.pt").write_bytes(b"garbage")
    state = ckpts / "step-000004" / "state.pt"
    state.write_bytes(state.read_bytes()[:1000])
    notes: list[str] = []
    resumed = train_sft(rows, [], cfg, run=RunDir.create(run.path, kind="train-sft", config={}, resume=True),
                        resume=True, notify=notes.append)
    assert "step-000004 skipped: state.pt has 1000 bytes" in notes[0] and notes[1].startswith("resuming from step 2")
    assert [s for s, _ in resumed.losses] == list(range(1, 7))
    assert [loss for _, loss in resumed.losses] == pytest.approx([loss for _, loss in whole.losses], abs=1e-6)
    assert [p["step"] for p in run.metrics("train")] == list(range(1, 7))
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-000004", "step-000006"]


def test_resume_with_another_shape_is_refused(tiny_model: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from gristmill.train.checkpoint import ResumeMismatch

    cfg = _cfg(tiny_model, max_steps=4, checkpoint_every=2, save_merged=False)
    run = RunDir.create(tmp_path / "r", kind="train-sft", config={})
    train_sft(chat_rows(8), [], cfg, run=run, stop_after=3)
    with pytest.raises(ResumeMismatch, match=r"cannot resume from .*step-000002: the model's shape changed "
                                             r"\(lora_r 8 -> 4\)"):
        train_sft(chat_rows(8), [], _cfg(tiny_model, max_steps=4, checkpoint_every=2, lora_r=4), run=run, resume=True)
    with pytest.raises(ResumeMismatch, match=r"method lora -> full"):
        train_sft(chat_rows(8), [], _cfg(tiny_model, max_steps=4, method="full"), run=run, resume=True)
    # the refused attempts changed nothing: the right config still resumes (the same model by a relative path)
    assert [p.name for p in (run.path / "checkpoints").iterdir()] == ["step-000002"]
    monkeypatch.chdir(tiny_model.parent)
    res = train_sft(chat_rows(8), [], _cfg(Path(tiny_model.name), max_steps=4, checkpoint_every=2, save_merged=False),
                    run=run, resume=True)
    assert [s for s, _ in res.losses] == [1, 2, 3, 4]


def test_a_fresh_run_deletes_old_checkpoints(tiny_model: Path, tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "r", kind="train-sft", config={})
    train_sft(chat_rows(8), [], _cfg(tiny_model, max_steps=6, checkpoint_every=3, save_merged=False), run=run,
              stop_after=6)
    assert [p.name for p in sorted((run.path / "checkpoints").iterdir())] == ["step-000003", "step-000006"]
    # a new run (no resume) in the same directory must not leave step 6 for a later --resume to pick up
    train_sft(chat_rows(8), [], _cfg(tiny_model, max_steps=2, checkpoint_every=2, save_merged=False), run=run)
    assert [p.name for p in (run.path / "checkpoints").iterdir()] == ["step-000002"]


def test_rolling_loss_band_is_a_t_interval() -> None:
    from scipy import stats as sps

    from gristmill.train.sft_report import _rolling_band

    ys = [2.0, 1.5, 1.7, 1.2, 1.4]
    _, mean, lo, hi = _rolling_band(range(5), ys, window=3)
    assert lo[0] == hi[0] == mean[0] == 2.0  # one point: no band
    w = ys[2:5]
    half = sps.t.ppf(0.975, 2) * sps.sem(w)
    assert mean[4] == pytest.approx(sum(w) / 3) and hi[4] - mean[4] == pytest.approx(half)
