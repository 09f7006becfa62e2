"""Reasons: one format (records.reason) and one parser (records.rule_of) for every drop and quarantine."""

from __future__ import annotations

from gristmill.records import NO_REASON, Reason, reason, rule_of


def test_reason_round_trips_through_rule_of() -> None:
    assert reason("min_words", "12 < 50") == "min_words: 12 < 50"
    assert reason("duplicate") == "duplicate"
    for rule, detail in [("min_words", "12 < 50"), ("url", "http://x: y"), ("duplicate", ""),
                         ("backend", "transient: connection refused (http://127.0.0.1:9/v1)")]:
        assert rule_of(reason(rule, detail)) == rule


def test_rule_of_an_empty_reason() -> None:
    assert rule_of(None) == rule_of("") == rule_of(": detail") == NO_REASON


def test_reason_is_data_with_one_text_form() -> None:
    r = Reason("contamination", "gsm8k item 12 (3 shared 13-grams)")
    assert str(r) == "contamination: gsm8k item 12 (3 shared 13-grams)" == reason(r.rule, r.detail)
    assert Reason.parse(str(r)) == r
    assert Reason.parse(r) is r
    assert Reason.parse("url: http://x: y") == Reason("url", "http://x: y")  # only the first colon splits
    assert Reason.parse("duplicate") == Reason("duplicate")
    assert Reason.parse(None) == Reason(NO_REASON)
