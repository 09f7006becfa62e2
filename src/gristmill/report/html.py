"""HTML building blocks: escaping, tables, number formats and the page shell with inline CSS.

Everything that takes text escapes it; only the ``*_html`` arguments and SVG strings from
:mod:`gristmill.report.charts` are inserted as markup.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2329;background:#fafafa}
header{background:#24303c;color:#fff;padding:16px 28px}
header h1{margin:0 0 4px;font-size:22px}
header .meta{color:#c9d3dc;font-size:13px}
nav{position:sticky;top:0;background:#eef1f4;border-bottom:1px solid #d5dbe1;padding:6px 28px;z-index:1}
nav a{margin-right:16px;color:#24507a;text-decoration:none}
main{padding:8px 28px 40px;max-width:1100px}
section{margin-top:28px}
h2{font-size:18px;border-bottom:1px solid #d5dbe1;padding-bottom:4px}
h3{font-size:15px;margin-bottom:6px}
table{border-collapse:collapse;margin:8px 0;font-size:13px;background:#fff}
th,td{border:1px solid #d5dbe1;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.text{max-width:640px;white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
dl.kv{display:grid;grid-template-columns:max-content auto;gap:2px 16px}
dl.kv dt{color:#56606b}dl.kv dd{margin:0}
pre{background:#fff;border:1px solid #d5dbe1;padding:10px;overflow:auto;font-size:12px}
svg{max-width:100%;height:auto}
.none{color:#6b7580;font-style:italic}
"""


def esc(value: Any) -> str:
    """``value`` as escaped text; ``None`` becomes an empty string."""
    return "" if value is None else html.escape(str(value), quote=True)


def num(value: Any, digits: int = 2) -> str:
    """Integers with thousands separators, floats with ``digits`` decimals, others escaped."""
    if isinstance(value, bool) or value is None:
        return esc(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return esc(value)


def none(message: str = "none") -> str:
    return f'<p class="none">{esc(message)}</p>'


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], text_cols: Sequence[int] = ()) -> str:
    """An HTML table; numbers are right-aligned, ``text_cols`` get the long-text style."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                cells.append(f'<td class="num">{num(v)}</td>')
            elif i in text_cols:
                cells.append(f'<td class="text">{esc(v)}</td>')
            else:
                cells.append(f"<td>{esc(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def kv(pairs: Iterable[tuple[str, str]]) -> str:
    """A definition list of ``(label, value_html)``; labels are escaped, values are markup."""
    return '<dl class="kv">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def page(title: str, header_html: str, nav: Sequence[tuple[str, str]], sections_html: Sequence[str]) -> str:
    """The whole self-contained document: inline CSS, header, section links, sections."""
    links = "".join(f'<a href="#{esc(anchor)}">{esc(text)}</a>' for anchor, text in nav)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header>{header_html}</header>\n<nav>{links}</nav>\n<main>\n"
        + "\n".join(sections_html)
        + "\n</main>\n</body>\n</html>\n"
    )
