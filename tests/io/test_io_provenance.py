"""Licence hints: what a page states about its licence, normalised, strongest first; and a web format
whose library is missing stops the recipe at validation with the pip line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill import extras
from gristmill.io import documents
from gristmill.io.provenance import find_license_hints, iso_time, normalise_license, text_license_hints
from gristmill.recipe import RecipeError, load_recipe


@pytest.mark.parametrize(("given", "expected"), [
    ("https://creativecommons.org/licenses/by/4.0/", "CC-BY-4.0"),
    ("//creativecommons.org/licenses/by-nc-sa/3.0/de/", "CC-BY-NC-SA-3.0-DE"),
    ("http://creativecommons.org/publicdomain/zero/1.0/", "CC0-1.0"),
    ("https://creativecommons.org/publicdomain/mark/1.0/", "CC-PDM-1.0"),
    ("https://i.creativecommons.org/l/by-nd/4.0/88x31.png", "CC-BY-ND-4.0"),
    ("CC BY-SA 4.0", "CC-BY-SA-4.0"),
    ("CC0", "CC0"),
    ("Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International", "CC-BY-NC-SA-4.0"),
    ("https://opensource.org/licenses/MIT", "MIT"),
    ("https://www.gnu.org/licenses/fdl-1.3.html", "GFDL-1.3"),
    ("https://www.apache.org/licenses/LICENSE-2.0", "Apache-2.0"),
    ("/terms-of-use.html", "/terms-of-use.html"),
])
def test_licences_are_normalised(given: str, expected: str) -> None:
    assert normalise_license(given) == expected


def test_the_strongest_hint_is_the_licence_and_each_licence_is_listed_once() -> None:
    html = ('<html><head><meta name="license" content="CC BY 4.0"></head><body>'
            '<img src="https://i.creativecommons.org/l/by-sa/4.0/88x31.png">'
            '<a rel="license noopener" href="https://creativecommons.org/licenses/by-sa/4.0/">CC BY-SA 4.0</a>'
            '<p>Some photos are CC BY-NC 4.0.</p></body></html>')
    hints = find_license_hints(html)
    assert hints.license() == "CC-BY-SA-4.0"  # rel=license beats the meta tag and the text
    assert hints.text() == ("rel=license: https://creativecommons.org/licenses/by-sa/4.0/; "
                            "meta license: CC BY 4.0; cc mark: CC BY-NC 4.0")


def test_a_page_without_licence_statements_has_no_hints() -> None:
    hints = find_license_hints("<html><body><a href='/license-plate'>plates</a> licensed drivers</body></html>")
    assert not hints and hints.license() is None and hints.text() is None
    assert text_license_hints("CCTV and CCBYX are not marks").license() is None


def test_times_are_iso_utc() -> None:
    assert iso_time(0) == "1970-01-01T00:00:00Z"
    assert iso_time("2024-05-06T07:08:09Z") == "2024-05-06T07:08:09Z" and iso_time(None) is None


def test_a_missing_web_library_fails_validation_with_the_pip_line(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "site.warc").write_bytes(b"")
    monkeypatch.setitem(extras.EXTRAS, "gristmill_no_such_module", "web")
    real = documents.required_modules
    monkeypatch.setattr(documents, "required_modules",
                        lambda fmt, options: [*real(fmt, options), "gristmill_no_such_module"])
    with pytest.raises(RecipeError) as exc:
        load_recipe({"input": {"path": "site.warc"}, "steps": [{"op": "lang.identify"}]}, base_dir=tmp_path)
    assert exc.value.errors == ["input.format: input format 'warc' needs the 'web' extra: "
                                "pip install 'gristmill[web]'"]


def test_the_lean_install_refuses_web_formats_at_validation_and_reads_markdown(tmp_path: Path) -> None:
    from tests.test_extras import lean_cli

    (tmp_path / "crawl.warc.gz").write_bytes(b"")
    (tmp_path / "notes.md").write_text("---\ntitle: t\n---\nSome notes.\n", encoding="utf-8")
    (tmp_path / "web.yaml").write_text("input: {path: crawl.warc.gz}\nsteps:\n  - op: clean.normalize\n",
                                       encoding="utf-8")
    (tmp_path / "md.yaml").write_text("input: {path: notes.md}\nsteps:\n  - op: clean.normalize\n", encoding="utf-8")
    done = lean_cli(["validate", "web.yaml"], tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "input.format: input format 'warc' needs the 'web' extra: pip install 'gristmill[web]'" in done.stderr
    assert "Traceback" not in done.stderr
    done = lean_cli(["validate", "md.yaml"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
