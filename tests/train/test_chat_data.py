from __future__ import annotations

import json
from pathlib import Path

import pytest

from gristmill.train.chat_data import IGNORE, load_chat_rows, tokenize_chat


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from gristmill.models.causal_lm import hf_dir

    return AutoTokenizer.from_pretrained(hf_dir())


def _labelled(tokenizer, tc) -> str:
    return tokenizer.decode([t for t, lab in zip(tc.input_ids, tc.labels) if lab != IGNORE])


def test_load_chat_rows_reads_every_shape_and_reports_bad_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}),
        json.dumps({"conversations": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}]}),
        json.dumps({"instruction": "Add", "input": "2 and 3", "output": "5"}),
        json.dumps({"instruction": "Greet", "response": "Hi!"}),
        '{"messages": [',                                                     # line 5: not JSON
        json.dumps({"text": "just text"}),                                   # line 6: unknown shape
        json.dumps({"messages": [{"role": "user", "content": "only a question"}]}),  # 7: no answer
        "",
        json.dumps({"messages": [{"role": "wizard", "content": "x"}]}),       # line 9: bad role
        json.dumps([1, 2]),                                                   # line 10: not an object
    ]
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows, bad = load_chat_rows(path)
    assert len(rows) == 4
    assert rows[1] == [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]
    assert rows[2][0]["content"] == "Add\n\n2 and 3" and rows[2][1]["content"] == "5"
    assert rows[3][1] == {"role": "assistant", "content": "Hi!"}
    assert [b.line for b in bad] == [5, 6, 7, 9, 10]
    assert "invalid JSON" in bad[0].reason and "unknown shape" in bad[1].reason
    assert "assistant" in bad[2].reason and "wizard" in bad[3].reason
    assert str(bad[0]).startswith(f"{path}:5: ")


def test_load_chat_rows_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_chat_rows(tmp_path / "nope.jsonl")


def test_labels_cover_exactly_assistant_content_and_end_of_turn(tokenizer) -> None:
    msgs = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": "Hello! How are you?"},
            {"role": "user", "content": "ok"},
            {"role": "assistant", "content": "\n\nGood."}]
    tc = tokenize_chat(tokenizer, msgs)
    assert len(tc.input_ids) == len(tc.labels)
    # the whole sequence is the template's rendering, token for token when decoded
    assert tokenizer.decode(tc.input_ids) == tokenizer.apply_chat_template(msgs, tokenize=False)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    labelled = [i for i, lab in enumerate(tc.labels) if lab != IGNORE]
    # two contiguous runs, each = the content's own tokens followed by <|im_end|>
    runs, cur = [], [labelled[0]]
    for i in labelled[1:]:
        if i == cur[-1] + 1:
            cur.append(i)
        else:
            runs.append(cur)
            cur = [i]
    runs.append(cur)
    assert len(runs) == 2
    for run, content in zip(runs, ["Hello! How are you?", "\n\nGood."]):
        ids = [tc.input_ids[i] for i in run]
        assert ids == tokenizer(content, add_special_tokens=False)["input_ids"] + [end]
        assert all(tc.labels[i] == tc.input_ids[i] for i in run)
    # the newline after each <|im_end|> and the next header carry no label
    assert tc.labels[runs[0][-1] + 1] == IGNORE


def test_truncation_and_default_system_prompt(tokenizer) -> None:
    msgs = [{"role": "user", "content": "word " * 50}, {"role": "assistant", "content": "answer"}]
    full = tokenize_chat(tokenizer, msgs)
    assert "SmolLM" in tokenizer.decode(full.input_ids)  # the template's default system turn, unlabelled
    assert _labelled(tokenizer, full) == "answer<|im_end|>"
    cut = tokenize_chat(tokenizer, msgs, max_length=20)
    assert len(cut.input_ids) == 20 and cut.n_labels == 0
