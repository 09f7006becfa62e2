"""``gristmill generate``: prompts are read through gristmill.io (the model runs in test_train_lm_cli.py)."""

from __future__ import annotations

import gzip
from pathlib import Path

from typer.testing import CliRunner

from gristmill.cli import app
from gristmill.commands.generate import _read_prompts

runner = CliRunner()


def test_prompts_from_lines_and_from_json_lines(tmp_path: Path) -> None:
    txt = tmp_path / "p.txt"
    txt.write_text("\ufeffBram likes\n\n  \nCleo\r\n", encoding="utf-8")
    assert _read_prompts(txt, "prompt") == ["Bram likes", "Cleo"]
    gz = tmp_path / "p.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"prompt": "A"}\n\n{"prompt": "", "x": 1}\n'))
    assert _read_prompts(gz, "prompt") == ["A", ""]  # an empty prompt is an unconditional sample


def test_a_bad_prompt_line_exits_2_with_file_and_line(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf-8")  # a transformers directory; never loaded here
    for body, reason in (('{"prompt": "A"}\n[1]\n', "not a JSON object"), ('{"prompt": "A"}\n{"text": "B"}\n',
                                                                            "no string field 'prompt'")):
        prompts = tmp_path / "p.jsonl"
        prompts.write_text(body, encoding="utf-8")
        res = runner.invoke(app, ["generate", "--model", str(model), "--prompts", str(prompts), "-q"])
        assert res.exit_code == 2 and f"--prompts: {prompts}:2: {reason}" in res.output, res.output
    res = runner.invoke(app, ["generate", "--model", str(model), "--prompts", str(tmp_path / "none.txt")])
    assert res.exit_code == 2 and "no such file" in res.output
