"""``gristmill train ner`` and ``gristmill train classify`` end to end on tiny data with a tiny model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gristmill.cli import app
from tests.conftest import SHARED_DATA
from tests.train.test_token_classify import tiny_model_dir, toy_sentences

import torch  # noqa: E402
runner = CliRunner()


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_conll(path: Path, sentences, extra: str = "") -> Path:
    path.write_text("\n\n".join("\n".join(f"{w}\t{t}" for w, t in zip(s.tokens, s.tags)) for s in sentences)
                    + "\n\n" + extra, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_token_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("tiny-token"), "token")


@pytest.fixture(scope="module")
def tiny_seq_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("tiny-seq"), "seq")


def test_train_ner_end_to_end(tmp_path: Path, tiny_token_model: Path) -> None:
    train = write_conll(tmp_path / "train.conll", toy_sentences(30), extra="broken\tline\twith three\n\n")
    dev = write_conll(tmp_path / "dev.conll", toy_sentences(9, 50))
    test = tmp_path / "test.jsonl"
    test.write_text("\n".join(json.dumps({"id": s.id, "tokens": s.tokens, "tags": s.tags})
                              for s in toy_sentences(9, 80)) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", "ner", "--train", str(train), "--dev", str(dev), "--test", str(test),
                              "--model", str(tiny_token_model), "--epochs", "3", "--lr", "3e-3", "--batch-size", "6",
                              "--out", str(out), "--quiet", "--threads", "1", "--no-save-model"])
    assert res.exit_code == 0, res.output
    assert "skipped 1 malformed record" in res.output
    assert "micro avg" in res.output and "person" in res.output  # seqeval's table
    assert "B-person" in res.output and "accuracy" in res.output  # scikit-learn's token table
    results = json.loads((out / "results.json").read_text())
    assert 0.0 <= results["test_f1"] <= 1.0 and set(results["test_per_type"]) == {"person", "location"}
    assert results["skipped_records"] == 1
    config = json.loads((out / "config.json").read_text())
    assert config["labels"] == ["O", "B-location", "I-location", "B-person", "I-person"]
    assert len([json.loads(x) for x in (out / "quarantine.jsonl").read_text().splitlines()]) == 1
    html = (out / "report.html").read_text()
    assert "Dev entity F1 per epoch" in html and "token level (scikit-learn)" in html
    dev_points = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()
                  if json.loads(x)["series"] == "dev"]
    assert 1 <= len(dev_points) <= 3


def test_train_without_tags_exits_2(tmp_path: Path, tiny_token_model: Path) -> None:
    untagged = tmp_path / "plain.conll"
    untagged.write_text("hello\nworld\n\nagain\n", encoding="utf-8")
    dev = write_conll(tmp_path / "dev.conll", toy_sentences(3))
    res = runner.invoke(app, ["train", "ner", "--train", str(untagged), "--dev", str(dev),
                              "--model", str(tiny_token_model), "--out", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 2
    assert "--train" in res.output and "no tags" in res.output
    assert not (tmp_path / "r").exists()


def test_bad_options_exit_2_before_any_work(tmp_path: Path) -> None:
    dev = write_conll(tmp_path / "dev.conll", toy_sentences(3))
    res = runner.invoke(app, ["train", "ner", "--train", str(tmp_path / "missing.conll"), "--dev", str(dev)])
    assert res.exit_code == 2 and "missing.conll: no such file" in res.output
    res = runner.invoke(app, ["train", "ner", "--train", str(dev), "--dev", str(dev), "--epochs", "0"])
    assert res.exit_code == 2 and "--epochs" in res.output
    res = runner.invoke(app, ["train", "classify", "--train", str(dev), "--dev", str(dev), "--model", str(tmp_path)])
    assert res.exit_code == 2 and "--model" in res.output


def _texts(n: int, offset: int = 0) -> list[dict]:
    good, bad = ["great", "lovely", "excellent", "superb"], ["awful", "terrible", "horrid", "dreadful"]
    rows = []
    for i in range(offset, offset + n):
        pos = i % 2 == 0
        word = (good if pos else bad)[i % 4]
        rows.append({"id": f"t{i}", "body": f"the film was {word} , really {word}", "y": "pos" if pos else "neg"})
    return rows


def test_train_classify_end_to_end(tmp_path: Path, tiny_seq_model: Path) -> None:
    def write(name: str, rows: list[dict]) -> Path:
        p = tmp_path / name
        p.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n", encoding="utf-8")
        return p

    train, dev, test = write("train.jsonl", _texts(40)), write("dev.jsonl", _texts(10, 100)), \
        write("test.jsonl", _texts(10, 200))
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", "classify", "--train", str(train), "--dev", str(dev), "--test", str(test),
                              "--text-field", "body", "--label-field", "y", "--model", str(tiny_seq_model),
                              "--epochs", "8", "--patience", "8", "--lr", "3e-3", "--batch-size", "8",
                              "--out", str(out), "--quiet", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "macro avg" in res.output and "pos" in res.output
    results = json.loads((out / "results.json").read_text())
    assert results["skipped_records"] == 3
    assert results["test_macro_f1"] > 0.6, res.output
    assert (out / "model" / "config.json").is_file()
    res = runner.invoke(app, ["train", "classify", "--train", str(train), "--dev", str(dev),
                              "--model", str(tiny_seq_model), "--out", str(tmp_path / "r2"), "--quiet"])
    assert res.exit_code == 2 and "'label'" in res.output


@pytest.mark.slow
def test_train_ner_real_minilm_on_wnut(tmp_path: Path) -> None:
    """MiniLM fine-tuned on 200 WNUT-17 sentences for one epoch runs end to end and finds some entities."""
    src = re.split(r"\n[ \t]*\n", (SHARED_DATA / "wnut17" / "wnut17train.conll").read_text(encoding="utf-8"))
    train = tmp_path / "train.conll"
    train.write_text("\n\n".join(src[:200]) + "\n", encoding="utf-8")
    dev = tmp_path / "dev.conll"
    dev.write_text("\n\n".join(src[200:300]) + "\n", encoding="utf-8")
    res = runner.invoke(app, ["train", "ner", "--train", str(train), "--dev", str(dev), "--test", str(dev),
                              "--epochs", "1", "--lr", "1e-4", "--batch-size", "8", "--bf16", "--threads", "1",
                              "--out", str(tmp_path / "run"), "--quiet", "--no-save-model"])
    assert res.exit_code == 0, res.output
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["train_sentences"] == 200 and results["epochs_run"] == 1
    assert 0.0 <= results["test_f1"] <= 1.0 and "person" in results["test_per_type"]
    # ~20 s on 2 idle cores; no time assertion, since a shared machine can be several times slower.


# -- checkpoints and --resume ----------------------------------------------------------------------


def _resume_args(kind: str, tmp_path: Path, model: Path) -> list[str]:
    """30 training sentences / 40 texts in batches of 4: 8 or 10 steps an epoch, 3 epochs."""
    if kind == "ner":
        train = write_conll(tmp_path / "train.conll", toy_sentences(30))
        dev = write_conll(tmp_path / "dev.conll", toy_sentences(9, 50))
        extra: list[str] = []
    else:
        train, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
        train.write_text("".join(json.dumps(r) + "\n" for r in _texts(40)), encoding="utf-8")
        dev.write_text("".join(json.dumps(r) + "\n" for r in _texts(10, 100)), encoding="utf-8")
        extra = ["--text-field", "body", "--label-field", "y"]
    return ["train", kind, "--train", str(train), "--dev", str(dev), *extra, "--model", str(model), "--epochs", "3",
            "--patience", "3", "--lr", "3e-3", "--batch-size", "4", "--checkpoint-every", "3", "--threads", "1",
            "--quiet", "--no-save-model"]


def _points(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(x).items() if k != "time"}
            for x in (run / "metrics.jsonl").read_text().splitlines()]


def _results(run: Path) -> dict:
    return {k: v for k, v in json.loads((run / "results.json").read_text()).items() if "seconds" not in k}


# about 10 s each (two of the three runs render a report); classify shares fit() and differs only in wiring
@pytest.mark.parametrize("kind", ["ner", pytest.param("classify", marks=pytest.mark.slow)])
def test_interrupted_then_resumed_ends_like_an_uninterrupted_run(kind: str, tmp_path: Path, tiny_token_model: Path,
                                                                 tiny_seq_model: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from gristmill.commands import train_ner as cmd

    args = _resume_args(kind, tmp_path, tiny_token_model if kind == "ner" else tiny_seq_model)
    clean, cut = tmp_path / "clean", tmp_path / "cut"
    assert runner.invoke(app, [*args, "--out", str(clean)]).exit_code == 0

    hooks = cmd._progress_hooks

    def interrupting(*a, **kw):  # Ctrl-C after step 11, in epoch 2; the last checkpoint is step 9
        task, on_step, on_resume = hooks(*a, **kw)

        def step(s: int, loss: float, n: int) -> None:
            on_step(s, loss, n)
            if s == 11:
                raise KeyboardInterrupt
        return task, step, on_resume

    monkeypatch.setattr(cmd, "_progress_hooks", interrupting)
    res = runner.invoke(app, [*args, "--out", str(cut)])
    assert res.exit_code == 130 and "run the same command with --resume" in res.output, res.output
    assert [p["step"] for p in _points(cut) if p["series"] == "train"] == list(range(1, 12))
    assert sorted(p.name for p in (cut / "checkpoints").iterdir()) == ["step-000006", "step-000009"]
    monkeypatch.undo()

    res = runner.invoke(app, [*args, "--out", str(cut), "--resume"])
    assert res.exit_code == 0, res.output
    assert f"resuming from step 9 ({cut / 'checkpoints' / 'step-000009'})" in res.output
    assert _points(cut) == _points(clean)  # every step and epoch once, same losses and dev scores (bitwise)
    assert _results(cut) == _results(clean)


@pytest.mark.parametrize("kind", ["ner", "classify"])
def test_resume_with_another_model_shape_exits_2(kind: str, tmp_path: Path, tiny_token_model: Path,
                                                 tiny_seq_model: Path) -> None:
    model = tiny_token_model if kind == "ner" else tiny_seq_model
    args = _resume_args(kind, tmp_path, model)
    out = tmp_path / "run"
    assert runner.invoke(app, [*args, "--out", str(out), "--epochs", "1"]).exit_code == 0
    config, ckpts = (out / "config.json").read_bytes(), sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts
    wider = tmp_path / "wider"  # same vocabulary, 48 wide instead of 32: every tensor changes shape
    import transformers

    from tests.train.test_token_classify import minilm_tokenizer

    cls = transformers.BertForTokenClassification if kind == "ner" else transformers.BertForSequenceClassification
    cls(transformers.BertConfig(vocab_size=minilm_tokenizer().vocab_size, hidden_size=48, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
        ).save_pretrained(wider)
    minilm_tokenizer().save_pretrained(wider)
    res = runner.invoke(app, [*[str(wider) if a == str(model) else a for a in args], "--out", str(out), "--resume"])
    assert res.exit_code == 2, res.output
    error = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "cannot resume from" in error[0] and f"shape changed (model {model} -> {wider})" \
        in error[0]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ckpts  # left as they were
    assert (out / "config.json").read_bytes() == config
