"""WARC and WET input: main text of HTML responses, provenance columns, licence hints, records skipped
and counted, bad records with their offset, and truncated or corrupt files reported as such."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

import pytest

from gristmill.io import BadRecord, ReaderOptions, open_reader
from gristmill.pipeline.ingest import ingest
from tests.io.web_fixtures import DATE, Rec, page, paragraphs, write_warc

CC = '<link rel="license" href="https://creativecommons.org/licenses/by-sa/4.0/">'
GARDEN = page("Growing tomatoes", paragraphs("growing tomatoes"), head=CC)
CAFE = page("Café culture",
            paragraphs("café culture in Paris") + "<p>Un café crème, s'il vous plaît, à côté.</p>",
            lang="fr")
NAIVE = page("Naive art", paragraphs("naïve painting") + "<p>The naïve façade was painted in 1920.</p>")


def read(path: Path, **options) -> tuple[list[dict], list[BadRecord], dict]:
    reader = open_reader(path, ReaderOptions(**options))
    items = list(reader)
    return ([i for i in items if isinstance(i, dict)], [i for i in items if isinstance(i, BadRecord)],
            dict(reader.skipped))


def site(path: Path) -> list[int]:
    """A small crawl: warcinfo, a request and its response, wrong and missing charsets, an image,
    a 404, a metadata record, and binary bytes served as HTML."""
    wrong = CAFE.replace('<meta charset="utf-8">', "").encode("utf-8")  # UTF-8 bytes, header says Latin-1
    missing = NAIVE.replace('<meta charset="utf-8">', "").encode("cp1252")  # no charset anywhere
    return write_warc(path, [
        Rec("warcinfo"),
        Rec("request", url="http://example.com/garden"),
        Rec("response", url="http://example.com/garden", body=GARDEN.encode()),
        Rec("response", url="http://example.com/cafe", body=wrong,
            headers=[("Content-Type", "text/html; charset=iso-8859-1")]),
        Rec("response", url="http://example.com/naive", body=missing, headers=[("Content-Type", "text/html")]),
        Rec("response", url="http://example.com/logo.png", body=b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
            headers=[("Content-Type", "image/png")]),
        Rec("response", url="http://example.com/gone", status="404 Not Found", body=page("Not found", "").encode()),
        Rec("metadata", url="http://example.com/garden", body=b"outlinks: 3"),
        Rec("response", url="http://example.com/blob", body=b"\x00\x01\x02" * 500),
    ])


def test_html_responses_become_main_text_with_provenance(tmp_path: Path) -> None:
    path = tmp_path / "crawl.warc.gz"
    offsets = site(path)
    rows, bad, skipped = read(path)
    assert [r["url"] for r in rows] == ["http://example.com/garden", "http://example.com/cafe",
                                        "http://example.com/naive"]
    garden = rows[0]
    assert garden["id"] == f"crawl.warc.gz@{offsets[2]}"
    assert "The study of growing tomatoes has a long history" in garden["text"]
    for boilerplate in ("About us", "Popular posts", "All rights reserved", "Privacy policy", "newsletter"):
        assert boilerplate not in garden["text"]
    assert garden["title"] == "Growing tomatoes" and garden["html_lang"] == "en"
    assert garden["fetch_time"] == DATE and garden["http_status"] == 200
    assert garden["content_type"] == "text/html"
    assert garden["content_sha256"] == hashlib.sha256(GARDEN.encode()).hexdigest()
    assert garden["license"] == "CC-BY-SA-4.0"
    assert garden["license_hints"] == "rel=license: https://creativecommons.org/licenses/by-sa/4.0/"
    assert garden["source"] == str(path) and garden["warc_record_id"].startswith("<urn:uuid:")
    assert skipped == {"warcinfo record": 1, "request record": 1, "metadata record": 1, "non-HTML response": 1,
                       "HTTP 404": 1}
    assert len(bad) == 1 and bad[0].source == str(path) and bad[0].offset == offsets[-1]
    assert bad[0].reason.startswith("binary content: NUL bytes in a page served as text/html")
    assert bad[0].to_json()["offset"] == offsets[-1]


def test_wrong_and_missing_charsets_are_read_right(tmp_path: Path) -> None:
    path = tmp_path / "crawl.warc.gz"
    site(path)
    rows, _, _ = read(path)
    cafe, naive = rows[1], rows[2]
    assert "Un café crème, s'il vous plaît, à côté." in cafe["text"] and "Ã" not in cafe["text"]
    assert cafe["charset"] == "utf-8" and cafe["title"] == "Café culture" and cafe["html_lang"] == "fr"
    assert "The naïve façade was painted in 1920." in naive["text"]
    assert naive["charset"] == "cp1252"


def test_a_truncated_warc_gz_is_reported_and_the_records_before_kept(tmp_path: Path) -> None:
    path = tmp_path / "crawl.warc.gz"
    pages = [Rec("response", url=f"http://example.com/{i}", body=page(f"Page {i}", paragraphs(f"topic {i}")).encode())
             for i in range(4)]
    offsets = write_warc(path, pages)
    data = path.read_bytes()
    path.write_bytes(data[: offsets[3] + (len(data) - offsets[3]) // 2])  # cut inside the last record
    rows, bad, _ = read(path)
    assert [r["url"] for r in rows] == [f"http://example.com/{i}" for i in range(3)]
    assert len(bad) == 1 and bad[0].offset == offsets[3]
    assert re.match(rf"truncated WARC: the file ends inside the record \(\d+ bytes of its block missing\) at offset "
                    rf"{offsets[3]} \(\d+ bytes on disk\)", bad[0].reason), bad[0].reason
    assert bad[0].reason.endswith(f"everything after byte {offsets[3]} is lost")


@pytest.mark.parametrize("gz", [True, False])
def test_every_cut_of_a_warc_is_reported_or_falls_between_records(tmp_path: Path, gz: bool) -> None:
    path = tmp_path / ("full.warc.gz" if gz else "full.warc")
    offsets = write_warc(path, [Rec("response", url=f"http://example.com/{i}",
                                    body=page(f"P{i}", paragraphs(f"subject {i}", 1)).encode()) for i in range(3)])
    data = path.read_bytes()
    ends = set(offsets[1:]) | {len(data)}
    if not gz:  # a record ends with two blank lines; a cut right before them loses no data
        ends |= {o - k for o in ends for k in (1, 2, 3, 4)}
    cut = tmp_path / path.name.replace("full", "cut")
    for n in range(1, len(data), 23 if gz else 61):
        cut.write_bytes(data[:n])
        rows, bad, _ = read(cut)
        if n in ends:
            continue
        assert len(bad) == 1 and bad[0].reason.startswith("truncated WARC"), (n, bad)
        if gz:  # the records whose gzip member is whole
            assert len(rows) == sum(1 for o in offsets[1:] if o <= n)


def test_a_corrupt_gzip_member_is_reported_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "crawl.warc.gz"
    pages = [Rec("response", url=f"http://example.com/{i}", body=page(f"Page {i}", paragraphs(f"topic {i}")).encode())
             for i in range(3)]
    offsets = write_warc(path, pages)
    data = bytearray(path.read_bytes())
    middle = (offsets[1] + offsets[2]) // 2
    data[middle : middle + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    rows, bad, _ = read(path)
    assert [r["url"] for r in rows] == ["http://example.com/0"]
    assert len(bad) == 1 and bad[0].reason.startswith("corrupt WARC") and bad[0].offset == offsets[1]


def test_an_uncompressed_warc_cut_in_a_record_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "crawl.warc"
    offsets = write_warc(path, [Rec("response", url=f"http://example.com/{i}",
                                    body=page(f"Page {i}", paragraphs(f"t {i}")).encode()) for i in range(2)])
    path.write_bytes(path.read_bytes()[: offsets[1] + 900])
    rows, bad, _ = read(path)
    assert len(rows) == 1 and len(bad) == 1 and bad[0].offset == offsets[1]
    assert "truncated WARC: the file ends inside the record" in bad[0].reason
    assert "bytes of its block missing" in bad[0].reason


def test_wet_conversion_records_are_read_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "crawl.warc.wet.gz"
    text = "A plain text page about rivers.\nLicensed under CC BY 4.0.\n"
    write_warc(path, [Rec("warcinfo"),
                      Rec("conversion", url="http://example.com/rivers", body=text.encode(), content_type="text/plain"),
                      Rec("conversion", url="http://example.com/empty", body=b"  \n", content_type="text/plain")])
    reader = open_reader(path)
    assert reader.format == "wet"
    rows, bad, skipped = read(path)
    assert not bad and len(rows) == 1
    assert rows[0]["text"] == text.strip() and rows[0]["url"] == "http://example.com/rivers"
    assert rows[0]["fetch_time"] == DATE and rows[0]["http_status"] is None
    assert rows[0]["content_type"] == "text/plain" and rows[0]["license"] == "CC-BY-4.0"
    assert rows[0]["content_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert skipped == {"warcinfo record": 1, "empty conversion": 1}


def test_encoded_bodies_are_decoded_and_hashed_as_served(tmp_path: Path) -> None:
    path = tmp_path / "crawl.warc.gz"
    html = page("Rivers", paragraphs("rivers and lakes")).encode()
    write_warc(path, [Rec("response", url="http://example.com/r", body=gzip.compress(html),
                          headers=[("Content-Type", "text/html"), ("Content-Encoding", "gzip")])])
    rows, bad, _ = read(path)
    assert not bad and "rivers and lakes" in rows[0]["text"]
    assert rows[0]["content_sha256"] == hashlib.sha256(html).hexdigest()


def test_a_record_over_max_record_bytes_is_quarantined_with_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "crawl.warc.gz"
    big = page("Big", paragraphs("size") * 40).encode()
    offsets = write_warc(path, [Rec("response", url="http://example.com/big", body=big),
                                Rec("response", url="http://example.com/small",
                                    body=page("S", paragraphs("s")).encode())])
    rows, bad, _ = read(path, max_record_bytes=len(big) - 1)
    assert [r["url"] for r in rows] == ["http://example.com/small"]
    assert bad[0].offset == offsets[0] and bad[0].reason.startswith("record is")


def test_resiliparse_extracts_the_main_text_too(tmp_path: Path) -> None:  # resiliparse is in the web extra
    path = tmp_path / "crawl.warc.gz"
    site(path)
    rows, _, _ = read(path, extractor="resiliparse")
    assert "The study of growing tomatoes has a long history" in rows[0]["text"]
    assert "About us" not in rows[0]["text"] and "Privacy policy" not in rows[0]["text"]
    assert rows[0]["license"] == "CC-BY-SA-4.0"


def test_ingest_counts_skipped_records_and_quarantines_with_offsets(tmp_path: Path) -> None:
    path = tmp_path / "crawl.warc.gz"
    offsets = site(path)
    shards = list(ingest([path], ReaderOptions(license="unknown-terms"), 2, tmp_path / "shards"))
    stats = [json.loads((s.path / "stats.json").read_text()) for s in shards]
    skipped: dict[str, int] = {}
    for s in stats:
        for k, v in s.get("skipped", {}).items():
            skipped[k] = skipped.get(k, 0) + v
    assert skipped == {"warcinfo record": 1, "request record": 1, "metadata record": 1, "non-HTML response": 1,
                       "HTTP 404": 1}
    quarantined = [json.loads(line) for s in shards for line in (s.path / "quarantine.jsonl").read_text().splitlines()]
    assert [(q["offset"], q["line"]) for q in quarantined] == [(offsets[-1], None)]
    import pyarrow.parquet as pq

    licenses = [lic for s in shards for lic in pq.read_table(s.path / "data.parquet").column("license").to_pylist()]
    assert licenses == ["CC-BY-SA-4.0", "unknown-terms", "unknown-terms"]  # the page's own, else input.license
