import json

from gristmill.rundir import RunDir, read_metrics


def test_rundir_writes_config_metrics_results_and_report(tmp_path):
    run = RunDir.create(tmp_path / "r", "train-lm", {"lr": 0.001})
    for step in range(3):
        run.log("train", step, loss=3.0 - step)
    run.log("dev", 2, loss=2.5, perplexity=12.2)
    run.result(perplexity=12.2)
    run.result(seconds=1.5)
    run.table("Per type", ["type", "f1"], [["PER", 0.5]])
    run.curve("Dev perplexity", {"replace": ([0, 1], [10.0, 12.0])}, bands={"replace": ([0, 1], [9, 11], [11, 13])})
    run.samples("Samples", [("greedy", "to be <or> not")])
    html = run.finish().read_text()
    assert json.loads((tmp_path / "r/config.json").read_text()) == {"kind": "train-lm", "lr": 0.001}
    assert run.results() == {"perplexity": 12.2, "seconds": 1.5}
    assert "Per type" in html and "&lt;or&gt;" in html and html.count("<svg") >= 3
    assert [p["series"] for p in run.metrics()] == ["train"] * 3 + ["dev"]


def test_same_title_replaces_item_and_resume_keeps_metrics(tmp_path):
    run = RunDir.create(tmp_path / "r", "x", {})
    run.log("train", 0, loss=1.0)
    run.table("T", ["a"], [[1]])
    run.table("T", ["a"], [[2]])
    assert json.loads((tmp_path / "r/report.json").read_text())[0]["rows"] == [[2]]
    again = RunDir.create(tmp_path / "r", "x", {}, resume=True)
    assert len(again.metrics()) == 1
    fresh = RunDir.create(tmp_path / "r", "x", {})
    assert fresh.metrics() == [] and not (tmp_path / "r/report.json").exists()


def test_torn_metrics_line_is_skipped(tmp_path):
    f = tmp_path / "metrics.jsonl"
    f.write_text('{"series": "train", "step": 0, "loss": 1}\n{"series": "tr')
    assert len(read_metrics(f)) == 1


def test_forget_after_drops_later_points_of_the_named_series_and_torn_lines(tmp_path):
    run = RunDir.create(tmp_path / "r", "x", {})
    for step in (1, 2, 3):
        run.log("train", step, loss=1.0)
        run.log("pulls", step, arm=0)
    with open(tmp_path / "r/metrics.jsonl", "a") as f:
        f.write('{"series": "train", "st')
    run.forget_after(2, series=("train",))
    assert [(p["series"], p["step"]) for p in run.metrics()] == [
        ("train", 1), ("pulls", 1), ("train", 2), ("pulls", 2), ("pulls", 3)]
    run.forget_after(1)
    assert [p["step"] for p in run.metrics()] == [1, 1]


def test_a_directory_gristmill_did_not_make_is_refused_untouched(tmp_path):
    import pytest

    from gristmill.rundir import NotARunDirectory

    victim = tmp_path / "mine"
    victim.mkdir()
    (victim / "results.json").write_text("my own results")
    (victim / "report.html").write_text("my page")
    with pytest.raises(NotARunDirectory, match="was not made by gristmill"):
        RunDir.create(victim, kind="eval", config={})
    assert (victim / "results.json").read_text() == "my own results"
    assert (victim / "report.html").read_text() == "my page" and not (victim / "config.json").exists()
    (tmp_path / "empty").mkdir()
    RunDir.create(tmp_path / "empty", kind="eval", config={})  # an empty directory is fine


def test_a_model_directory_with_its_own_config_json_is_not_a_run(tmp_path):
    import pytest

    from gristmill.rundir import NotARunDirectory

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    (model / "results.json").write_text("{}")
    with pytest.raises(NotARunDirectory):
        RunDir.create(model, kind="train-sft", config={"lr": 1})
    assert json.loads((model / "config.json").read_text()) == {"model_type": "llama", "hidden_size": 64}
    run = RunDir.create(tmp_path / "run", kind="eval", config={})
    (run.path / "extra.txt").write_text("x")
    RunDir.create(tmp_path / "run", kind="eval", config={})  # gristmill's own: reused
    (run.path / ".gristmill-run").unlink()
    RunDir.create(tmp_path / "run", kind="eval", config={})  # older runs: known by config.json's kind
