"""The Dialogues section: turns per dialogue, words per turn, distinct-n of each side, rejects by reason."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gristmill.pipeline.run_reader import RunReader
from gristmill.report.dialogue import _messages, conversations, dialogue_stats, render, turn_stats
from gristmill.report.sections import SECTIONS

CONVS = [
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is silt?"},
     {"role": "assistant", "content": "Fine sand."}, {"role": "user", "content": "Where does it go?"},
     {"role": "assistant", "content": "To the sea."}],
    [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Fine sand."}],
]


def test_registered() -> None:
    assert ("dialogues", "Dialogues") in [(s.id, s.title) for s in SECTIONS]


def test_turn_stats_hand_computed() -> None:
    s = turn_stats(CONVS)
    assert (s["dialogues"], s["turns"], s["user_turns"], s["assistant_turns"]) == (2, 6, 3, 3)
    assert s["turns_per_dialogue"] == {"mean": 3.0, "median": 3.0, "min": 2, "max": 4}
    assert s["words_per_user_turn"]["mean"] == pytest.approx((3 + 4 + 2) / 3)
    assert s["words_per_assistant_turn"] == {"mean": pytest.approx(7 / 3), "median": 2.0, "min": 2, "max": 3}
    # assistant words: fine sand. / to the sea. / fine sand. -> 5 unique of 7; bigrams 3 unique of 4
    assert s["assistant_distinct_1"] == pytest.approx(5 / 7)
    assert s["assistant_distinct_2"] == pytest.approx(3 / 4)
    assert turn_stats([])["turns_per_dialogue"]["mean"] is None


def _run(root: Path, messages: list | None) -> Path:
    run = root / "runs" / "dlg"
    step = {"index": 0, "step": "00-generate.dialogue", "op": "generate.dialogue", "kind": "generator",
            "rows_in": 3, "rows_out": 2, "dropped": {"turn_parse": 2, "too_short": 1}, "fingerprint": "f00"}
    stats = {"run": "dlg", "input": {"rows": 3}, "steps": [step], "output": {"rows": 2, "format": "openai"}}
    run.mkdir(parents=True)
    (run / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    shard = run / "cache" / "step-00-generate.dialogue-f00" / "shard-00000"
    shard.mkdir(parents=True)
    cols = {"id": ["a-0", "b-0"]}
    if messages is not None:
        cols["messages"] = messages
    pq.write_table(pa.table(cols), shard / "data.parquet")
    (run / "rejected").mkdir()
    pq.write_table(pa.table({"id": ["a-0-t5", "b-0-t3", "c-0"],
                             "_reason": ["turn_parse: turn 5: repeats turn 1", "turn_parse: turn 3: repeats turn 1",
                                         "too_short: ended by the end marker after 2 turns (min_turns 4)"]}),
                   run / "rejected" / "00-generate.dialogue.parquet")
    return run


def test_section_reads_the_output_messages_and_the_rejects(tmp_path: Path) -> None:
    reader = RunReader(_run(tmp_path, CONVS))
    assert len(conversations(reader)) == 2
    html = render(reader)
    assert html.count("<svg") == 3  # turns per dialogue, words per user turn, words per assistant turn
    assert "words per assistant turn" in html and "mean 2.3, median 2.0, min 2, max 3" in html
    assert "turn_parse: turn N: repeats turn N" in html and "Rejected by 00-generate.dialogue: 3 rows" in html
    stats = dialogue_stats(reader)
    assert stats["dialogues"] == 2
    assert stats["rejected"]["00-generate.dialogue"]["by_rule"] == {"turn_parse": 2, "too_short": 1}


def test_sharegpt_conversations_and_no_messages(tmp_path: Path) -> None:
    sharegpt = [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}]
    expected = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]
    assert _messages(sharegpt) == _messages(json.dumps(sharegpt)) == expected  # JSON text decoded too
    empty = RunReader(_run(tmp_path / "none", None))
    assert conversations(empty) == []
    assert "no dialogue was kept" in render(empty)  # its rejects are still shown
