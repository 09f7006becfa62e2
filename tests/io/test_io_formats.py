"""Format-specific reading: chunking, CoNLL, Self-Instruct and the chat formats, on real data too."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from gristmill.io import BadRecord, ReaderOptions, open_reader, split_chunks

DATA = Path(__file__).parents[2] / ".." / "shared" / "data"


def read(path, **options):
    items = list(open_reader(path, ReaderOptions(**options)))
    return [i for i in items if isinstance(i, dict)], [i for i in items if isinstance(i, BadRecord)]


def write_lines(path, *records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# ---- chunking --------------------------------------------------------------------------

def test_chunk_chars_cuts_on_paragraphs_then_lines_then_hard(tmp_path):
    text = ("Para one is short.\n\nPara two is also short.\n\n\n"
            "line a of three\nline b of three\nline c of three\n\n" + "x" * 45)
    path = write_lines(tmp_path / "a.jsonl", {"id": "doc", "text": text, "lang": "en"})
    rows, bad = read(path, chunk_chars=43)
    assert not bad
    assert [r["text"] for r in rows] == [
        "Para one is short.\n\nPara two is also short.",
        "line a of three\nline b of three",
        "line c of three",
        "x" * 43,
        "xx",
    ]
    assert [r["id"] for r in rows] == [f"doc#{k}" for k in range(5)]
    assert {r["lang"] for r in rows} == {"en"} and {r["source"] for r in rows} == {str(path)}


def test_chunk_chars_keeps_short_text_whole(tmp_path):
    rows, _ = read(write_lines(tmp_path / "a.jsonl", {"id": "d", "text": "short"}), chunk_chars=100)
    assert [(r["id"], r["text"]) for r in rows] == [("d#0", "short")]


@settings(max_examples=25, deadline=None)
@given(st.text(st.sampled_from("ab \n"), max_size=300), st.integers(1, 40))
def test_split_chunks_loses_nothing_but_whitespace(text, size):
    chunks = split_chunks(text, size)
    assert all(0 < len(c) <= size and c.strip() for c in chunks)
    assert re.sub(r"\s", "", "".join(chunks)) == re.sub(r"\s", "", text)


def test_chunking_a_real_book():
    rows, bad = read(DATA / "tinyshakespeare.txt", chunk_chars=2000)
    assert not bad and len(rows) > 500
    assert all(len(r["text"]) <= 2000 for r in rows)
    assert rows[0]["id"] == "tinyshakespeare.txt#0" and rows[0]["text"].startswith("First Citizen:")


# ---- CoNLL and Self-Instruct on the shared data -----------------------------------------

def test_wnut17_sentence_counts():
    counts = {}
    for name in ("wnut17train.conll", "emerging.dev.conll", "emerging.test.annotated"):
        rows, bad = read(DATA / "wnut17" / name, format="conll")
        assert not bad
        assert all(len(r["tokens"]) == len(r["tags"]) > 0 for r in rows)
        counts[name] = len(rows)
    assert counts == {"wnut17train.conll": 3394, "emerging.dev.conll": 1009, "emerging.test.annotated": 1287}
    rows, _ = read(DATA / "wnut17" / "wnut17train.conll")
    assert rows[0]["tokens"][:3] == ["@paulwalk", "It", "'s"] and rows[0]["id"] == "wnut17train.conll:1"
    assert {t for r in rows for t in r["tags"]} >= {"O", "B-location", "I-location", "B-person"}


def test_self_instruct_seed_tasks():
    rows, bad = read(DATA / "self_instruct_seed_tasks.jsonl", format="self_instruct")
    assert not bad and len(rows) == 175
    first = rows[0]
    assert first["id"] == "seed_task_0" and first["text"] == first["instruction"]
    assert first["input"] == first["instances"][0]["input"] and first["output"] == first["instances"][0]["output"]
    assert sum(r["is_classification"] for r in rows) > 0


def test_self_instruct_bad_tasks(tmp_path):
    path = write_lines(tmp_path / "s.jsonl",
                       {"id": "ok", "instruction": "Add.", "instances": [{"input": "1 2", "output": "3"}]},
                       {"id": "a", "instances": [{"input": "", "output": "x"}]},
                       {"id": "b", "instruction": "No instances."},
                       {"id": "c", "instruction": "Empty.", "instances": []},
                       {"id": "d", "instruction": "No output.", "instances": [{"input": "x"}]})
    rows, bad = read(path, format="self_instruct")
    assert [r["id"] for r in rows] == ["ok"] and rows[0]["is_classification"] is False
    assert [(b.line, b.reason) for b in bad] == [
        (2, "missing required field 'instruction'"),
        (3, "missing required field 'instances'"),
        (4, "field 'instances' must be a non-empty list of {input, output}"),
        (5, "instance 1: missing required field 'output'"),
    ]


# ---- chat formats ------------------------------------------------------------------------

def test_alpaca_reader(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", {"instruction": "Say hi", "output": "hi"},
                       {"instruction": "", "input": "", "output": "x"}, {"instruction": "No output"})
    rows, bad = read(path, format="alpaca")
    assert [(r["instruction"], r["input"], r["output"], r["text"]) for r in rows] == [("Say hi", "", "hi", "Say hi")]
    assert [(b.line, b.reason) for b in bad] == [(2, "empty instruction"), (3, "missing required field 'output'")]


def test_alpaca_json_array_file(tmp_path):
    path = tmp_path / "alpaca_data.json"
    path.write_text(json.dumps([{"instruction": "A", "input": "", "output": "1"},
                                {"instruction": "B", "input": "ctx", "output": "2"}], indent=2))
    rows, bad = read(path, format="alpaca")
    assert not bad and [(r["id"], r["instruction"]) for r in rows] == [("alpaca_data.json:2", "A"),
                                                                      ("alpaca_data.json:7", "B")]


def test_sharegpt_reader_normalizes_roles(tmp_path):
    path = write_lines(tmp_path / "s.jsonl",
                       {"id": 1, "conversations": [{"from": "system", "value": "be brief"},
                                                   {"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]},
                       {"id": 2, "conversations": [{"from": "robot", "value": "?"}]},
                       {"id": 3, "conversations": []})
    rows, bad = read(path, format="sharegpt")
    assert rows == [{"id": "1", "messages": [{"role": "system", "content": "be brief"},
                                             {"role": "user", "content": "hi"},
                                             {"role": "assistant", "content": "yo"}], "source": str(path)}]
    assert [(b.line, b.reason) for b in bad] == [
        (2, "conversations[1] has unsupported role 'robot' (expected system, user or assistant)"),
        (3, "empty conversations")]


def test_openai_reader_content_parts_and_errors(tmp_path):
    path = write_lines(tmp_path / "o.jsonl",
                       {"messages": [{"role": "developer", "content": "rules"},
                                     {"role": "user", "content": [{"type": "text", "text": "a"},
                                                                  {"type": "text", "text": "b"}]},
                                     {"role": "assistant", "content": "c"}]},
                       {"messages": [{"role": "assistant", "content": None}]},
                       {"prompt": "no messages"})
    rows, bad = read(path, format="openai")
    assert rows[0]["messages"] == [{"role": "system", "content": "rules"}, {"role": "user", "content": "ab"},
                                   {"role": "assistant", "content": "c"}]
    assert [(b.line, b.reason) for b in bad] == [(2, "messages[1] has no 'content'"),
                                                 (3, "missing required field 'messages'")]


def test_chat_format_from_parquet(tmp_path):
    msgs = [[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]]
    pq.write_table(pa.table({"id": ["x"], "messages": msgs}), tmp_path / "c.parquet")
    rows, bad = read(tmp_path / "c.parquet", format="openai")
    assert not bad and rows[0]["messages"] == msgs[0]
