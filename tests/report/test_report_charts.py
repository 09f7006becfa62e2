"""Chart helpers: inline SVG strings, literal and escaped labels, deterministic, no shared ids."""

from __future__ import annotations

import re

import pytest

from gristmill.report import charts

CHARTS = {
    "hbars": lambda: charts.hbars(["input", "00-a"], [10, 7], title="funnel"),
    "stacked": lambda: charts.stacked_hbars(["r1", "r2"], {"s1": [1, 2], "s2": [3, 0]}),
    "histogram": lambda: charts.histogram([0.1, 0.2, 0.2, 0.9], bins=5, thresholds={"min": 0.15}),
    "curves": lambda: charts.curves({"train": ([1, 2, 3], [3.0, 2.0, 1.5]), "val": ([1, 3], [3.1, 2.2])}),
}


@pytest.mark.parametrize("name", CHARTS)
def test_each_chart_is_a_bare_deterministic_svg(name: str) -> None:
    svg = CHARTS[name]()
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<?xml" not in svg and "<metadata" not in svg and "<script" not in svg
    assert svg == CHARTS[name]()


def test_labels_are_literal_and_escaped() -> None:
    svg = charts.hbars(["<b>x</b> & $5 cost$", "中文"], [1, 2])
    assert "&lt;b&gt;x&lt;/b&gt; &amp; $5 cost$" in svg
    assert "<b>" not in svg and "中文" in svg


def test_long_labels_are_cut() -> None:
    assert charts.label("a" * 100) == "a" * (charts.LABEL_LIMIT - 1) + "…"


def test_charts_on_one_page_share_no_ids() -> None:
    ids = [re.findall(r' id="([^"]+)"', make()) for make in CHARTS.values()]
    flat = [i for group in ids for i in group]
    assert flat and len(flat) == len(set(flat))
    for make in CHARTS.values():
        svg = make()
        for ref in re.findall(r"url\(#([^)]+)\)|href=\"#([^\"]+)\"", svg):
            assert f' id="{ref[0] or ref[1]}"' in svg


def test_empty_inputs_render() -> None:
    assert charts.hbars([], []).startswith("<svg")
    assert charts.stacked_hbars([], {}).startswith("<svg")
    assert charts.curves({}).startswith("<svg")
