"""``gristmill eval perplexity | generation | diversity | divergence`` end to end on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gristmill.cli import app
from tests.evaluate.test_perplexity import tiny_dir  # noqa: F401  (fixture: a tiny random Llama)

runner = CliRunner()


def _jsonl(path: Path, rows: list, extra_lines: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(r) for r in rows] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def texts(tmp_path: Path) -> Path:
    rows = [{"id": f"t{i}", "text": t} for i, t in enumerate([
        "The cat sat on the mat.", "A dog ran in the park and barked.", "The cat sat on the mat again.",
        "Stocks rose on Monday.", "Rain is expected tomorrow in the north."])]
    return _jsonl(tmp_path / "texts.jsonl", rows, ('{"id": "broken", "text": ', '{"id": "x", "body": "no text"}'))


def test_generation_from_one_jsonl(tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "gen.jsonl", [
        {"prediction": "The cat sat on the mat.", "reference": "the cat sat on the mat"},
        {"prediction": "Paris", "reference": ["Paris, France", "paris"]},
        {"prediction": "a dog", "reference": "the cat"},
    ], ("not json", json.dumps({"prediction": 3, "reference": "x"})))
    out = tmp_path / "run"
    res = runner.invoke(app, ["eval", "generation", "--predictions", str(data), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    figures = json.loads(res.stdout)
    assert figures["examples"] == 3 and figures["skipped"] == 2
    assert figures["exact_match"] == pytest.approx(2 / 3)
    assert figures["bleu"]["tokenizer"] == "13a" and "tok:13a" in figures["bleu"]["signature"]
    assert f"{data}:4: invalid JSON" in res.stderr and f"{data}:5: field 'prediction' is int" in res.stderr
    per = [json.loads(x) for x in (out / "per_example.jsonl").read_text().splitlines()]
    assert [p["exact_match"] for p in per] == [True, True, False] and per[1]["reference"] == ["Paris, France", "paris"]
    assert json.loads((out / "config.json").read_text())["kind"] == "eval-generation"
    assert json.loads((out / "results.json").read_text())["rougeL"] == pytest.approx(figures["rougeL"])
    html = (out / "report.html").read_text()
    assert "Corpus scores" in html and "Skipped records" in html and "<svg" in html


def test_generation_from_two_aligned_text_files(tmp_path: Path) -> None:
    preds = tmp_path / "pred.txt"
    refs = tmp_path / "ref.txt"
    preds.write_text("the cat sat on the mat\nhello world\n", encoding="utf-8")
    refs.write_text("the cat sat on the mat\nhello world\n", encoding="utf-8")
    res = runner.invoke(app, ["eval", "generation", "--predictions", str(preds), "--references", str(refs),
                              "--out", str(tmp_path / "run"), "--json"])
    assert res.exit_code == 0, res.output
    figures = json.loads(res.stdout)
    assert figures["bleu"]["score"] == pytest.approx(100.0) and figures["rouge1"] == 1.0
    refs.write_text("only one line\n", encoding="utf-8")
    res = runner.invoke(app, ["eval", "generation", "--predictions", str(preds), "--references", str(refs)])
    assert res.exit_code == 2 and "has 2 lines but --references" in res.stderr


def test_bad_input_exits_2_before_writing(tmp_path: Path) -> None:
    res = runner.invoke(app, ["eval", "diversity", "--data", str(tmp_path / "missing.jsonl"), "--out",
                              str(tmp_path / "run")])
    assert res.exit_code == 2 and "missing.jsonl" in res.stderr
    assert not (tmp_path / "run").exists()
    empty = _jsonl(tmp_path / "empty.jsonl", [{"body": "x"}])
    res = runner.invoke(app, ["eval", "diversity", "--data", str(empty), "--no-embed"])
    assert res.exit_code == 2 and "no usable texts" in res.stderr and "missing required field 'text'" in res.stderr
    res = runner.invoke(app, ["eval", "divergence", "--data", str(empty), "--other", str(empty), "--alpha", "0"])
    assert res.exit_code == 2 and "--alpha" in res.stderr


def test_diversity(texts: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = runner.invoke(app, ["eval", "diversity", "--data", str(texts), "--no-embed", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    figures = json.loads(res.stdout)
    assert figures["texts"] == 5 and figures["skipped"] == 2
    assert 0 < figures["distinct_1"] < 1 and figures["vendi_ngram"] > 1 and figures["embedding_distance"] is None
    html = (out / "report.html").read_text()
    assert "Length distribution" in html and "Vendi score" in html and "Distinct-n" in html
    res = runner.invoke(app, ["eval", "diversity", "--data", str(texts), "--no-embed", "--out", str(out)])
    assert res.exit_code == 0 and "distinct-1/2/3" in res.stdout and "report:" in res.stdout


def test_divergence(texts: Path, tmp_path: Path) -> None:
    other = _jsonl(tmp_path / "other.jsonl", [{"body": "The bank held rates."}, {"body": "The cat sat on the mat."}])
    out = tmp_path / "run"
    res = runner.invoke(app, ["eval", "divergence", "--data", str(texts), "--other", str(other), "--other-field",
                              "body", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    f = json.loads(res.stdout)
    assert f["texts_a"] == 5 and f["texts_b"] == 2 and f["units"] == "bits"
    assert 0 < f["unigram"]["js"] < 1 and 0 < f["bigram"]["js"] < 1 and f["unigram"]["kl_ab"] > 0
    html = (out / "report.html").read_text()
    assert "Top unigrams by contribution to JS" in html and "KL by smoothing alpha" in html
    same = runner.invoke(app, ["eval", "divergence", "--data", str(texts), "--other", str(texts), "--json",
                               "--out", str(tmp_path / "same")])
    assert json.loads(same.stdout)["bigram"]["js"] == pytest.approx(0.0, abs=1e-12)


def test_perplexity_of_texts_and_chats(tiny_dir: Path, texts: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "run"
    res = runner.invoke(app, ["eval", "perplexity", "--model", str(tiny_dir), "--data", str(texts), "--out", str(out),
                              "--json", "--threads", "1"])
    assert res.exit_code == 0, res.output
    f = json.loads(res.stdout)
    assert f["documents"] == 5 and f["skipped"] == 2 and f["max_length"] == 64 and f["stride"] == 32
    assert f["ci95"][0] <= f["perplexity"] <= f["ci95"][1]
    per = [json.loads(x) for x in (out / "per_document.jsonl").read_text().splitlines()]
    assert [p["id"] for p in per] == ["t0", "t1", "t2", "t3", "t4"]
    assert sum(p["tokens"] for p in per) == f["tokens"]
    html = (out / "report.html").read_text()
    assert "Per-document perplexity" in html and "Highest-perplexity documents" in html

    chats = _jsonl(tmp_path / "chats.jsonl", [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there!"}]},
        {"messages": [{"role": "user", "content": "No answer yet"}]},
        {"messages": "not a list"},
    ])
    res = runner.invoke(app, ["eval", "perplexity", "--model", str(tiny_dir), "--data", str(chats), "--chat",
                              "assistant", "--out", str(tmp_path / "chat"), "--json"])
    assert res.exit_code == 0, res.output
    f_assist = json.loads(res.stdout)
    assert f_assist["scored_documents"] == 1 and f_assist["skipped"] == 1
    res = runner.invoke(app, ["eval", "perplexity", "--model", str(tiny_dir), "--data", str(chats), "--chat",
                              "whole", "--out", str(tmp_path / "whole"), "--json"])
    assert json.loads(res.stdout)["tokens"] > f_assist["tokens"]


def test_perplexity_rejects_bad_options(tiny_dir: Path, texts: Path) -> None:  # noqa: F811
    for args, message in ((["--stride", "64", "--max-length", "64"], "--stride"), (["--chat", "maybe"], "--chat"),
                          (["--dtype", "half"], "--dtype"), (["--model", "/nonexistent/model"], "--model")):
        base = ["eval", "perplexity", "--data", str(texts)] + ([] if "--model" in args else ["--model", str(tiny_dir)])
        res = runner.invoke(app, base + args)
        assert res.exit_code == 2 and message in res.stderr, (args, res.output)


def test_out_directory_that_holds_other_files_is_refused_untouched(tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "gen.jsonl", [{"prediction": "a", "reference": "a"}])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.json").write_text("my results")
    (mine / "report.html").write_text("my page")
    res = runner.invoke(app, ["eval", "generation", "--predictions", str(data), "--out", str(mine)])
    assert res.exit_code == 2 and "was not made by gristmill" in res.output
    assert (mine / "results.json").read_text() == "my results" and (mine / "report.html").read_text() == "my page"
    assert sorted(p.name for p in mine.iterdir()) == ["report.html", "results.json"]


def test_generation_reads_compressed_files_through_io(tmp_path: Path) -> None:
    """Pairs are read with gristmill.io (compression, the pipeline's reasons): .gz and .zst predictions,
    a line that is not an object named file:line with io's wording."""
    import gzip

    import zstandard

    rows = [json.dumps({"prediction": "a b", "reference": "a b"}), "[1, 2]", json.dumps({"prediction": "c"})]
    text = ("\n".join(rows) + "\n").encode("utf-8")
    gz, zst = tmp_path / "p.jsonl.gz", tmp_path / "p.jsonl.zst"
    gz.write_bytes(gzip.compress(text))
    zst.write_bytes(zstandard.ZstdCompressor().compress(text))
    for path in (gz, zst):
        res = runner.invoke(app, ["eval", "generation", "--predictions", str(path), "--out", str(tmp_path / f"run-{path.suffix[1:]}"),
                                  "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["examples"] == 1
        assert f"{path}:2: not a JSON object: got list" in res.stderr
        assert f"{path}:3: missing field 'reference'" in res.stderr
    refs = tmp_path / "r.txt.gz"
    refs.write_bytes(gzip.compress("a b\nx\ny\n".encode("utf-8")))
    res = runner.invoke(app, ["eval", "generation", "--predictions", str(gz), "--references", str(refs),
                              "--out", str(tmp_path / "two"), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["examples"] == 2, res.output  # line 3 needs no reference
    assert f"{gz}:2: not a JSON object" in res.stderr


def test_generation_names_a_truncated_file(tmp_path: Path) -> None:
    import gzip

    broken = tmp_path / "p.jsonl.gz"
    broken.write_bytes(gzip.compress(b'{"prediction": "a", "reference": "a"}\n' * 200)[:40])
    res = runner.invoke(app, ["eval", "generation", "--predictions", str(broken)])
    assert res.exit_code == 2 and f"--predictions {broken}: unreadable" in res.stderr, res.output


def test_eval_bias_is_an_eval_command_with_the_shared_options() -> None:
    res = runner.invoke(app, ["eval", "bias", "--help"])
    assert res.exit_code == 0
    for option in ("--quiet", "--threads", "--limit", "--batch-size", "--out"):
        assert option in res.output
