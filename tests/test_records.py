"""Reasons: one format (records.reason) and one parser (records.rule_of) for every drop and quarantine."""

from __future__ import annotations

from gristmill.records import NO_REASON, reason, rule_of


def test_reason_round_trips_through_rule_of() -> None:
    assert reason("min_words", "12 < 50") == "min_words: 12 < 50"
    assert reason("duplicate") == "duplicate"
    for rule, detail in [("min_words", "12 < 50"), ("url", "http://x: y"), ("duplicate", ""),
                         ("backend", "transient: connection refused (http://127.0.0.1:9/v1)")]:
        assert rule_of(reason(rule, detail)) == rule


def test_rule_of_an_empty_reason() -> None:
    assert rule_of(None) == rule_of("") == rule_of(": detail") == NO_REASON
