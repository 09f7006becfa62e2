"""Markdown input: one row per file or per section, front matter parsed into columns, bad front
matter quarantined."""

from __future__ import annotations

import json
from pathlib import Path

from gristmill.io import BadRecord, ReaderOptions, open_reader
from gristmill.io.markdown import split_sections

DOC = """---
title: Field notes
date: 2024-02-29
license: https://creativecommons.org/licenses/by/4.0/
tags: [birds, spring]
---
Intro before any heading.

# Birds

The first swallows came back today.

```python
# not a heading: inside a fence
print("hi")
```

## Nests

Three nests under the roof.
"""


def read(path: Path, **options) -> tuple[list[dict], list[BadRecord], dict]:
    reader = open_reader(path, ReaderOptions(**options))
    items = list(reader)
    return ([i for i in items if isinstance(i, dict)], [i for i in items if isinstance(i, BadRecord)],
            dict(reader.skipped))


def test_one_row_per_file_with_its_front_matter(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text(DOC, encoding="utf-8")
    assert open_reader(tmp_path / "notes.md").format == "markdown"
    rows, bad, _ = read(tmp_path / "notes.md")
    assert not bad and len(rows) == 1
    row = rows[0]
    assert row["id"] == "notes.md" and row["text"].startswith("Intro before any heading.")
    assert "title: Field notes" not in row["text"] and row["text"].endswith("Three nests under the roof.")
    assert (row["title"], row["published"], row["license"]) == ("Field notes", "2024-02-29", "CC-BY-4.0")
    assert json.loads(row["front_matter"]) == {"title": "Field notes", "date": "2024-02-29",
                                               "license": "https://creativecommons.org/licenses/by/4.0/",
                                               "tags": ["birds", "spring"]}
    assert row["content_type"] == "text/markdown" and len(row["content_sha256"]) == 64


def test_split_by_headings_outside_code_fences(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text(DOC, encoding="utf-8")
    rows, _, _ = read(tmp_path / "notes.md", markdown_split="headings")
    assert [(r["id"], r["section"]) for r in rows] == [("notes.md#0", None), ("notes.md#1", "Birds"),
                                                       ("notes.md#2", "Nests")]
    assert "# not a heading" in rows[1]["text"] and rows[2]["text"] == "## Nests\n\nThree nests under the roof."
    assert all(r["license"] == "CC-BY-4.0" for r in rows)


def test_toml_front_matter_and_a_title_from_the_first_heading(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text('+++\ndate = 2020-01-02\n+++\n# Heading Title\n\nBody.\n', encoding="utf-8")
    (tmp_path / "b.markdown").write_text("Plain text, CC0, no front matter.\n", encoding="utf-8")
    rows, bad, _ = read(tmp_path)
    assert not bad
    assert [(r["id"], r["title"], r["published"]) for r in rows] == [("a.md", "Heading Title", "2020-01-02"),
                                                                     ("b.markdown", None, None)]
    assert rows[1]["front_matter"] is None and rows[1]["license"] == "CC0"


def test_bad_front_matter_is_quarantined(tmp_path: Path) -> None:
    cases = {
        "broken.md": ("---\ntitle: [unclosed\n---\nBody\n", "invalid front matter"),
        "list.md": ("---\n- a\n- b\n---\nBody\n", "front matter is not a mapping (got list)"),
        "open.md": ("---\ntitle: x\nBody without the closing line\n", "front matter not closed"),
        "alias.md": ("---\na: &x [1, 2]\nb: *x\n---\nBody\n", "front matter uses YAML aliases (refused)"),
        "latin.md": ("caf\xe9".encode("latin-1"), "invalid UTF-8 at byte 3"),
    }
    for name, (content, _) in cases.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    for name, (_, reason) in cases.items():
        rows, bad, _ = read(tmp_path / name)
        assert not rows and len(bad) == 1 and bad[0].reason.startswith(reason), (name, bad)
    (tmp_path / "only.md").write_text("---\ntitle: nothing else\n---\n\n", encoding="utf-8")
    rows, bad, skipped = read(tmp_path / "only.md")
    assert not rows and not bad and skipped == {"empty Markdown": 1}


def test_split_sections_keeps_text_before_the_first_heading() -> None:
    assert split_sections("a\n# B\nb\n### c\nmore") == [(None, "a"), ("B", "# B\nb\n### c\nmore")]
    assert split_sections("") == []
