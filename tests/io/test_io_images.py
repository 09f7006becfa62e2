"""Image readers (issue 12): folders with labels from sub-folders, lists of paths, tables of image bytes
(Hugging Face structs), MNIST IDX files plain and gzipped, and what each quarantines."""

from __future__ import annotations

import gzip
import io
import json
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from gristmill.io import BadRecord, ReaderOptions, open_reader
from gristmill.io.base import InputError
from gristmill.io.images import image_container, labels_file
from gristmill.records import rule_of


def png(value: int = 0, size: tuple[int, int] = (4, 3), mode: str = "L") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, value if mode == "L" else (value, value, value)).save(buf, "PNG")
    return buf.getvalue()


def read(path: Path, **options: object) -> tuple[list[dict], list[BadRecord]]:
    reader = open_reader(path, ReaderOptions(**options))
    items = list(reader)
    return [i for i in items if isinstance(i, dict)], [i for i in items if isinstance(i, BadRecord)]


def test_a_folder_reads_labels_from_sub_folders_and_quarantines_what_is_no_image(tmp_path: Path) -> None:
    root = tmp_path / "pics"
    (root / "cat").mkdir(parents=True)
    (root / "dog" / "deep").mkdir(parents=True)
    (root / "cat" / "a.png").write_bytes(png(10, (5, 7)))
    (root / "dog" / "deep" / "b.png").write_bytes(png(20, mode="RGB"))
    (root / "top.png").write_bytes(png(30))
    (root / "cat" / "empty.png").write_bytes(b"")
    (root / "cat" / "text.png").write_text("not a picture")
    (root / "README.md").write_text("# about these pictures")  # a page beside the data is not the data
    rows, bad = read(root)
    by_id = {r["id"]: r for r in rows}
    assert sorted(by_id) == ["cat/a.png", "dog/deep/b.png", "top.png"]
    a = by_id["cat/a.png"]
    assert (a["label"], a["image.width"], a["image.height"], a["image.mode"], a["image.format"]) == \
        ("cat", 5, 7, "L", "PNG")
    assert a["image"] == (root / "cat" / "a.png").read_bytes() and a["source"] == str(root / "cat" / "a.png")
    assert by_id["dog/deep/b.png"]["label"] == "dog" and by_id["dog/deep/b.png"]["image.mode"] == "RGB"
    assert "label" not in by_id["top.png"]  # a file at the top has no label
    assert sorted(rule_of(b.reason) for b in bad) == ["not_image", "zero_size"]
    assert {Path(b.source).name for b in bad} == {"empty.png", "text.png"}
    columns = open_reader(root, ReaderOptions()).columns()
    assert columns[:7] == ["id", "image", "image.width", "image.height", "image.mode", "image.format", "label"]


def test_pictures_beside_data_files_are_not_the_data(tmp_path: Path) -> None:
    (tmp_path / "docs.jsonl").write_text(json.dumps({"id": "1", "text": "hello"}) + "\n")
    (tmp_path / "chart.png").write_bytes(png())
    reader = open_reader(tmp_path, ReaderOptions())
    assert reader.format == "jsonl" and [r["id"] for r in reader] == ["1"]


def test_a_truncated_file_is_read_by_its_header(tmp_path: Path) -> None:
    """The reader reads headers only; image.validate decodes (tests/ops/image)."""
    data = png(0, (64, 64))
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    rows, bad = read(tmp_path / "cut.png")
    assert not bad and rows[0]["image.width"] == 64 and rows[0]["id"] == "cut.png"


def test_a_huge_header_is_measured_never_decoded(tmp_path: Path) -> None:
    """A decompression bomb's header reads (40,000 x 40,000) without Pillow's own limit raising."""
    im = Image.new("1", (40_000, 40_000))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    (tmp_path / "bomb.png").write_bytes(buf.getvalue())
    rows, bad = read(tmp_path / "bomb.png")
    assert not bad and (rows[0]["image.width"], rows[0]["image.height"]) == (40_000, 40_000)
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # restored


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_list_of_paths(tmp_path: Path, kind: str) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "x.png").write_bytes(png(5))
    (tmp_path / "img" / "y.png").write_bytes(png(9, (2, 2)))
    entries = [{"path": "img/x.png", "label": "3", "note": "first"}, {"path": "img/y.png", "label": "4", "note": ""},
               {"path": "img/missing.png", "label": "5", "note": "gone"}]
    if kind == "csv":
        lines = ["path,label,note"] + [f"{e['path']},{e['label']},{e['note']}" for e in entries]
        (tmp_path / "list.csv").write_text("\n".join(lines) + "\n")
        path = tmp_path / "list.csv"
    else:
        (tmp_path / "list.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
        path = tmp_path / "list.jsonl"
    rows, bad = read(path, format="image_list")
    assert [(r["id"], r["label"], r["note"], r["image.path"]) for r in rows] == [
        (f"{path.name}:{2 if kind == 'csv' else 1}", "3", "first", "img/x.png"),
        (f"{path.name}:{3 if kind == 'csv' else 2}", "4", "", "img/y.png")]
    assert rows[1]["source"] == str(tmp_path / "img" / "y.png") and rows[1]["image.width"] == 2
    assert len(bad) == 1 and bad[0].reason == "image file not found: img/missing.png"
    assert bad[0].line == (4 if kind == "csv" else 3)
    assert "note" in open_reader(path, ReaderOptions(format="image_list")).columns()


def test_a_list_without_a_path_column_says_which_it_looked_for(tmp_path: Path) -> None:
    (tmp_path / "list.csv").write_text("where,label\na.png,1\n")
    _, bad = read(tmp_path / "list.csv", format="image_list")
    assert "no path column path / image / file" in bad[0].reason
    (tmp_path / "a.png").write_bytes(png())
    rows, bad = read(tmp_path / "list.csv", format="image_list", text_column="where")
    assert not bad and rows[0]["label"] == "1"


def _hf_table(tmp_path: Path) -> pa.Table:
    (tmp_path / "ref.png").write_bytes(png(77, (3, 3)))
    images = [{"bytes": png(1), "path": "a.png"}, {"bytes": None, "path": "ref.png"}, {"bytes": b"junk", "path": None},
              None]
    meta = {"info": {"features": {"image": {"_type": "Image"},
                                  "label": {"names": ["cat", "dog"], "_type": "ClassLabel"}}}}
    table = pa.table({"image": pa.array(images, pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                      "label": [1, 0, 1, 0], "caption": ["a", "b", "c", "d"]})
    return table.replace_schema_metadata({b"huggingface": json.dumps(meta).encode()})


def test_a_parquet_table_with_hugging_face_image_structs(tmp_path: Path) -> None:
    pq.write_table(_hf_table(tmp_path), tmp_path / "train.parquet")
    rows, bad = read(tmp_path / "train.parquet", format="image_table")
    assert [(r["id"], r["label"], r["caption"]) for r in rows] == [("train.parquet:1", "dog", "a"),
                                                                     ("train.parquet:2", "cat", "b")]
    assert rows[0]["image.path"] == "a.png" and rows[1]["image.width"] == 3  # bytes read from the path
    assert [(b.line, rule_of(b.reason)) for b in bad] == [(3, "not_image"), (4, "missing")]


def test_a_save_to_disk_folder_of_arrow_files(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    folder.mkdir()
    table = _hf_table(tmp_path).slice(0, 1)
    with pa.OSFile(str(folder / "data-00000-of-00001.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    (folder / "state.json").write_text("{}")
    rows, bad = read(folder, format="image_table")
    assert not bad and [(r["id"], r["label"]) for r in rows] == [("data-00000-of-00001.arrow:1", "dog")]


def test_a_table_with_binary_images_and_no_image_column(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": ["p", "q"], "img": [png(1), png(2)], "label": ["x", "y"]}), tmp_path / "t.parquet")
    rows, _ = read(tmp_path / "t.parquet", format="image_table")
    assert [(r["id"], r["label"]) for r in rows] == [("p", "x"), ("q", "y")]
    pq.write_table(pa.table({"text": ["no images"]}), tmp_path / "u.parquet")
    _, bad = read(tmp_path / "u.parquet", format="image_table")
    assert bad[0].reason.startswith("no column of image bytes")


# ---- MNIST IDX ----------------------------------------------------------------------------------

def idx_bytes(array: np.ndarray) -> bytes:
    return struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape) + \
        array.astype(np.uint8).tobytes()


def write_mnist(folder: Path, n: int = 5, gz: bool = True, prefix: str = "train") -> np.ndarray:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 6, 5)).astype(np.uint8)
    labels = np.arange(n) % 10
    suffix = ".gz" if gz else ""
    opener = gzip.compress if gz else (lambda b: b)
    (folder / f"{prefix}-images-idx3-ubyte{suffix}").write_bytes(opener(idx_bytes(images)))
    (folder / f"{prefix}-labels-idx1-ubyte{suffix}").write_bytes(opener(idx_bytes(labels)))
    return images


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_files(tmp_path: Path, gz: bool) -> None:
    images = write_mnist(tmp_path, gz=gz)
    write_mnist(tmp_path, n=2, gz=gz, prefix="t10k")
    assert image_container("train-images-idx3-ubyte") == "idx" and image_container("train.csv") is None
    reader = open_reader(tmp_path, ReaderOptions())
    assert reader.format == "idx"
    rows = list(reader)
    assert all(isinstance(r, dict) for r in rows) and len(rows) == 7
    by_id = {r["id"]: r for r in rows}
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    first = by_id[f"{name}:1"]
    assert (first["label"], first["split"], first["image.width"], first["image.height"]) == ("0", "train", 5, 6)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(first["image"]))), images[0])
    assert by_id[f"{name}:5"]["label"] == "4"
    assert {r["split"] for r in rows if r["id"].startswith("t10k")} == {"test"}
    assert "split" in reader.columns()


def test_a_truncated_idx_file_is_reported_never_read_as_fewer_images(tmp_path: Path) -> None:
    write_mnist(tmp_path, n=5, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    data = path.read_bytes()
    path.write_bytes(data[: 16 + 30 * 2 + 7])  # header, two whole images, 7 bytes of the third
    rows, bad = read(path)
    assert len(rows) == 2
    assert len(bad) == 1 and bad[0].line == 3
    assert bad[0].reason == ("truncated IDX file: the header promises 5 images of 6x5; the file ends inside image 3 "
                             "(2 whole images read, 3 lost)")


def test_a_truncated_gzip_idx_file_names_the_stream_and_the_lost_images(tmp_path: Path) -> None:
    write_mnist(tmp_path, n=200, gz=True)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    rows, bad = read(path)
    assert len(bad) == 1 and 50 < len(rows) < 200  # every image before the cut is kept
    assert bad[0].reason.startswith("truncated gzip stream") and f"{len(rows)} read" in bad[0].reason
    assert bad[0].line == len(rows) + 1


def test_a_short_labels_file_is_one_bad_record_and_the_images_stay(tmp_path: Path) -> None:
    write_mnist(tmp_path, n=5, gz=False)
    lab = tmp_path / "train-labels-idx1-ubyte"
    assert labels_file(tmp_path / "train-images-idx3-ubyte") == lab
    lab.write_bytes(lab.read_bytes()[:-2])
    rows, bad = read(tmp_path / "train-images-idx3-ubyte")
    assert len(rows) == 5 and [r.get("label") for r in rows] == ["0", "1", "2", None, None]
    assert bad[0].reason.startswith("truncated IDX labels file (train-labels-idx1-ubyte): the header promises 5 labels")


def test_an_idx_file_cut_between_images(tmp_path: Path) -> None:
    write_mnist(tmp_path, n=3, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-30])
    rows, bad = read(path)
    assert len(rows) == 2 and "ends before image 3 (2 whole images read, 1 lost)" in bad[0].reason


def test_an_idx_file_of_another_type_or_shape_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "x-images-idx3-ubyte"
    p.write_bytes(struct.pack(">BBBB", 0, 0, 0x0D, 3) + struct.pack(">III", 1, 2, 2) + b"\0" * 16)
    _, bad = read(p)
    assert "not supported; images must be unsigned bytes" in bad[0].reason
    p.write_bytes(b"PK\x03\x04 not idx")
    _, bad = read(p)
    assert bad[0].reason.startswith("not an IDX file")


def test_an_unknown_format_still_says_what_is_expected(tmp_path: Path) -> None:
    (tmp_path / "x.bin").write_bytes(b"\0")
    with pytest.raises(InputError, match="png, jpg"):
        open_reader(tmp_path / "x.bin", ReaderOptions())
