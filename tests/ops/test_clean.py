from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import ftfy
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gristmill.ops import clean
from gristmill.ops.clean import Normalize, StripHtml, normalize_text, strip_html
from gristmill.records import from_rows


# ---- clean.normalize -------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("donâ€™t", "don’t"),  # UTF-8 read as Windows-1252; curly quote kept
    ("Ã©tÃ© Ã  Paris", "été à Paris"),
    ("ＬＯＵＤ\u3000ﬁne", "LOUD fine"),  # NFKC: full width, ideographic space, ligature
    ("cafe\u0301", "café"),  # composed
    ("a\x00b\x07c\td\x7f", "abc d"),  # controls gone, tab kept then collapsed
    ("\x1b[1mbold\x1b[0m", "bold"),  # terminal escapes
    ("\ufeffBOM", "BOM"),
    ("one\r\ntwo\rthree\u2028four\x0cfive", "one\ntwo\nthree\nfour\nfive"),
    ("  lead  and   inner \t runs  \nnext line   \n\n\n\n\nlast  ", "lead and inner runs\nnext line\n\nlast"),
    ("™Â\x9a", "TMš"),  # NFKC exposes mojibake ftfy did not see the first time
])
def test_normalize_examples(raw: str, expected: str) -> None:
    assert Normalize().normalize(raw) == expected


def test_normalize_keeps_nulls_and_column_type() -> None:
    batch = pa.table({"id": ["a", "b"], "text": pa.array(["x  y", None], pa.large_string())})
    out = Normalize().process(batch).kept
    assert out.column("text").to_pylist() == ["x y", None]
    assert out.schema.field("text").type == pa.large_string()


def test_normalize_steps_can_be_switched_off() -> None:
    raw = "donâ€™t\x00  ﬁ\n\n\n"
    assert Normalize(fix_mojibake=False, remove_control=False, normalize_unicode=False,
                     normalize_whitespace=False).normalize(raw) == raw
    assert Normalize(fix_mojibake=False).normalize(raw) == "donâ€TMt fi"  # NFKC spells out ™
    assert Normalize(remove_control=False).normalize(raw) == "don’t\x00 fi"
    assert Normalize(normalize_unicode=False).normalize(raw) == "don’t fi"  # ftfy undoes ligatures too
    assert Normalize(fix_mojibake=False, normalize_unicode=False).normalize(raw) == "donâ€™t ﬁ"
    assert Normalize(normalize_whitespace=False).normalize(raw) == "don’t  fi\n\n\n"
    assert Normalize(form="NFD").normalize("é") == "e\u0301"


def test_normalize_other_column_and_missing_column() -> None:
    batch = from_rows([{"id": "a", "title": "A  B"}])
    assert Normalize(column="title").process(batch).kept.column("title").to_pylist() == ["A B"]
    with pytest.raises(KeyError, match="column 'text'"):
        Normalize().process(batch)


def test_normalize_declares_its_columns() -> None:
    op = Normalize(column="body")
    assert op.reads() == ["body"] and op.writes() == ["body"]


LINES = st.text(alphabet=st.sampled_from(list("ÃÂâ€™œ©®\xa0\x81\x8d\x9aéèﬁＡ ab\t")) | st.characters())


@settings(max_examples=200, deadline=None)
@given(LINES)
def test_line_fix_equals_ftfy_fix_text(line: str) -> None:
    """The shortcut around ftfy's config plumbing must do what ftfy.fix_text does."""
    line = line.replace("\n", " ")
    assert clean._ftfy_line(line, compat=True) == ftfy.fix_text(line, clean.FTFY_CONFIG)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ftfy_is_the_identity_on_ascii(text: str) -> None:
    """What lets normalize skip ftfy on ASCII lines."""
    assert ftfy.fix_text(text, clean.FTFY_CONFIG) == text


MOJIBAKE_PRONE = st.lists(st.sampled_from(["â€™", "Ã©", "Ã ", "™", "Â", "\x9a", "\x81", "\u0301", "ﬁ", " ", "  ",
                                           "\t", "\n", "\r\n", "\x00", "\u2028", "a", "é"]) | st.characters(),
                          max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(MOJIBAKE_PRONE)
def test_normalize_is_idempotent_on_mojibake_prone_text(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


# ---- clean.strip_html ------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html><head><title>T</title><style>p { color: red }</style>
<script type="text/javascript">var s = "<p>not text</p>";</script></head>
<body><!-- nav --><div class="x"><h1>Heading</h1><p>First   para with <b>bold</b> &amp; an
entity&nbsp;here.</p><p>Second<br>line</p><ul><li>one</li><li>two</li></ul>
<table><tr><td>a</td><td>b</td></tr></table><pre>  code
    indented</pre></div><noscript>enable JS</noscript></body></html>"""


def test_strip_html_page() -> None:
    assert strip_html(PAGE) == (
        "T\n\nHeading\n\nFirst para with bold & an entity\u00a0here.\n\nSecond\nline\n\none\ntwo"
        "\n\na b\n\n  code\n    indented"
    )


@pytest.mark.parametrize(("raw", "expected"), [
    ("no markup at all", "no markup at all"),
    ("a < b and c > d", "a < b and c > d"),  # no tag: left alone
    ("AT&amp;T &lt;3 &#169; &eacute;", "AT&T <3 © é"),  # entities only: unescaped, nothing else
    ("x<script>alert(1)", "x"),  # an unclosed script runs to the end
    ("<<b>i>x</i>", "x"),  # tags formed by removing a tag go too
    ("<scr<b>ipt>alert(1)</script>ok", ""),  # ...and a script so formed runs to the end
    ('<a href="/x?a=1&amp;b=2" title="1 > 0">link</a>', "link"),
    ("<p>x<!-- unclosed comment", "x"),
    ("<P>Upper</P><DIV>case</DIV>", "Upper\n\ncase"),
])
def test_strip_html_examples(raw: str, expected: str) -> None:
    assert strip_html(raw) == expected


def test_strip_html_drop_tags_param() -> None:
    raw = "<p>keep</p><aside>ad</aside><script>x</script>"
    assert StripHtml(drop_tags=["aside"]).strip(raw) == "keep\n\nx"
    assert StripHtml().strip(raw) == "keep\n\nad"


def test_strip_html_batch_keeps_nulls() -> None:
    batch = from_rows([{"id": "a", "text": "<p>hi</p>"}, {"id": "b", "text": None}])
    assert StripHtml().process(batch).kept.column("text").to_pylist() == ["hi", None]


HTML_PIECES = st.sampled_from([
    "<p>", "</p>", "<div class='c'>", "</div>", "<br>", "<br/>", "<b>", "</b>", "<li>", "<pre>", "</pre>",
    "<td>", "<script>var a = '<p>';</script>", "<style>b{}</style>", "<!-- c -->", "<!DOCTYPE html>",
    "&nbsp;", "&eacute;", "&#169;", "&quot;", "<", ">", "&", "<<", "b>", "\n", "  ", "\t",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(HTML_PIECES | st.text(max_size=6), max_size=25).map("".join))
def test_strip_html_is_idempotent_on_html(doc: str) -> None:
    once = strip_html(doc)
    assert strip_html(once) == once


def test_strip_html_never_scans_quadratically() -> None:
    # Every '<a "' opens a quoted attribute that never closes: none of them is a tag, so the text
    # is kept as it is. A scanner that looked for the closing quote from each '<' would read
    # 50,000 times to the end (about 5e9 characters); the linear one takes ~0.03 s on 2 cores.
    doc = '<a "' * 50_000
    start = time.perf_counter()
    assert strip_html(doc) == doc
    assert strip_html("<script>" + "<a" * 50_000) == ""  # an unclosed script drops the rest
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"strip_html took {elapsed:.2f} s on 200,000 characters"


# ---- real data -------------------------------------------------------------------------

GUTENBERG = Path(__file__).parents[2] / ".." / "shared" / "data" / "gutenberg_sample.jsonl.gz"


@pytest.mark.slow
def test_normalize_gutenberg_books() -> None:
    with gzip.open(GUTENBERG, "rt", encoding="utf-8") as f:
        books = [json.loads(line) for line in f]
    batch = pa.table({"id": [b["id"] for b in books], "text": [b["text"] for b in books]})
    op = Normalize()
    once = op.process(batch).kept
    texts = once.column("text").to_pylist()
    assert all("\r" not in t and "  " not in t and "\n\n\n" not in t and t == t.strip() for t in texts)
    assert sum(map(len, texts)) > 0.9 * sum(len(b["text"]) for b in books)  # tidied, not gutted
    assert op.process(once).kept.column("text").to_pylist() == texts
