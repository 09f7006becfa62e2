"""The Hugging Face Hub layout: ``data/<split>-00000-of-0000N.parquet`` and a ``README.md`` dataset card.

``output.format: hub`` writes a directory that is a Hub dataset repository as it stands:
``datasets.load_dataset("parquet", data_dir=...)`` (or ``load_dataset(path)``) loads every
split, and the Hub reads the card's YAML metadata (through ``huggingface_hub``'s
``DatasetCard`` / ``DatasetCardData``, which also write it). :func:`push_to_hub` uploads it.

The YAML metadata (:func:`card_metadata`), the same in a run's ``DATASET_CARD.md`` and its
hub ``README.md`` (which a run replaces by the whole dataset card):

``language``             the ``lang.code`` values of at least 1% of the rows (``lang.identify``)
``license``              the ``license`` values as Hub license ids (``Apache-2.0`` -> ``apache-2.0``,
                         ``CC BY-SA 4.0`` -> ``cc-by-sa-4.0``); ``other`` (with ``license_name``) for
                         one the Hub does not know, ``unknown`` when no row has a license
``annotations_creators`` ``machine-generated`` after a ``generate.*`` or ``judge.*`` step, else ``no-annotation``
``language_creators``    ``machine-generated`` after a ``generate.*`` step, else ``found``
``multilinguality``      ``monolingual`` / ``multilingual`` when languages are known
``size_categories``      the Hub's bucket of the row count (``n<1K``, ``1K<n<10K``, ...)
``source_datasets``      ``original`` (rows from no known source), and the URLs of the known public
                         sources the rows came from (``gristmill.audit.card.KNOWN_SOURCES``)
``task_categories``      ``token-classification`` for token/tag rows, else ``text-generation``
``pretty_name``          the run's name
``tags``                 ``gristmill``, and ``synthetic`` when a ``generate.*`` step made rows
``configs``              the ``default`` config's ``data_files``, one entry per split
``gristmill``            the recipe fingerprint and operator versions (:mod:`gristmill.io.metadata`)

The recipe's ``card:`` section overrides any of the first ten and ``task_ids``
(:class:`CardMetadata`, validated with the recipe). A split named ``data`` (what a run without a
split column writes) is the Hub's ``train`` split.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from pydantic import BaseModel, ConfigDict, field_validator

from gristmill.io.parts import ParquetWriter, Writer

__all__ = ["CARD_KEYS", "CardMetadata", "HubWriter", "README", "card_metadata", "card_text", "card_yaml",
           "hub_license", "push_to_hub", "read_facts", "size_category", "split_files", "write_hub"]

README = "README.md"
FILE = re.compile(r"^(?P<split>[A-Za-z0-9_.-]+?)-(?P<i>\d{5})-of-(?P<n>\d{5})\.parquet$")
MIN_LANGUAGE_SHARE = 0.01

HUB_LICENSES = frozenset("""
apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0 bigcode-openrail-m
afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0 cc-by-2.5
cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0
cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0 cdla-permissive-1.0
cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl
lgpl-2.1 lgpl-3.0 isc lppl-1.3c ms-pl mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib
pddl lgpl-lr llama2 llama3 llama3.1 llama3.2 llama3.3 gemma unknown other
""".split())
_LICENSE_ALIASES = {"apache-2": "apache-2.0", "apache": "apache-2.0", "apache-license-2.0": "apache-2.0",
                    "cc0": "cc0-1.0", "gpl-3.0-only": "gpl-3.0", "gpl-2.0-only": "gpl-2.0",
                    "gpl-3.0-or-later": "gpl-3.0", "lgpl-3.0-only": "lgpl-3.0", "agpl-3.0-only": "agpl-3.0",
                    "odc-by-1.0": "odc-by", "odbl-1.0": "odbl", "pddl-1.0": "pddl", "cdla-permissive": "cdla-permissive-1.0"}
SIZE_BUCKETS = ("n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B", "1B<n<10B",
                "10B<n<100B", "100B<n<1T", "n>1T")
# DatasetCardData's own fields in its order, then the extra keys in ours: the YAML reads the same
# whether huggingface_hub writes it or (without it) PyYAML does.
CARD_KEYS = ("annotations_creators", "language_creators", "language", "license", "multilinguality", "size_categories",
             "source_datasets", "task_categories", "task_ids", "pretty_name", "license_name", "tags", "configs",
             "gristmill")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def hub_license(value: str) -> str | None:
    """The Hub license id of a license string (``Apache-2.0``, ``CC BY 4.0``, ``CC-BY-SA-4.0``), or None."""
    key = re.sub(r"[\s_]+", "-", str(value).strip().lower())
    key = re.sub(r"-+", "-", key.replace("licence", "license")).strip("-")
    key = _LICENSE_ALIASES.get(key, key)
    return key if key in HUB_LICENSES else None


def size_category(rows: int) -> str:
    """The Hub's size bucket of ``rows`` (``n<1K``, ``1K<n<10K``, ..., ``n>1T``)."""
    if rows < 1000:
        return SIZE_BUCKETS[0]
    return SIZE_BUCKETS[min(int(math.log10(rows)) - 2, len(SIZE_BUCKETS) - 1)]


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9.+-]+", "-", value.lower()).strip("-") or "other"


class CardMetadata(BaseModel):
    """The dataset card's YAML metadata a recipe sets itself (its ``card:`` section); each replaces
    what the run infers. A single string is read as a list of one."""

    model_config = ConfigDict(extra="forbid")
    pretty_name: str | None = None
    language: list[str] | None = None
    license: list[str] | None = None
    task_categories: list[str] | None = None
    task_ids: list[str] | None = None
    tags: list[str] | None = None
    source_datasets: list[str] | None = None
    annotations_creators: list[str] | None = None
    language_creators: list[str] | None = None
    multilinguality: list[str] | None = None
    size_categories: list[str] | None = None

    @field_validator("language", "license", "task_categories", "task_ids", "tags", "source_datasets",
                     "annotations_creators", "language_creators", "multilinguality", "size_categories",
                     mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("language")
    @classmethod
    def _languages(cls, value: list[str] | None) -> list[str] | None:
        for v in value or []:
            if not _LANG.match(v):
                raise ValueError(f"{v!r} is not an ISO 639 language code (en, fr, zh, ceb, pt-BR)")
        return value

    @field_validator("license")
    @classmethod
    def _licenses(cls, value: list[str] | None) -> list[str] | None:
        out = []
        for v in value or []:
            hub = hub_license(v)
            if hub is None:
                raise ValueError(f"{v!r} is not a Hugging Face license id (e.g. apache-2.0, mit, cc-by-4.0, "
                                 "cc-by-sa-4.0, other)")
            out.append(hub)
        return out if value is not None else None

    @field_validator("task_categories", "task_ids", "annotations_creators", "language_creators", "multilinguality")
    @classmethod
    def _slugs(cls, value: list[str] | None) -> list[str] | None:
        for v in value or []:
            if not _SLUG.match(v):
                raise ValueError(f"{v!r} is not a Hub identifier (lowercase letters, digits and '-', e.g. "
                                 "text-generation)")
        return value

    @field_validator("size_categories")
    @classmethod
    def _sizes(cls, value: list[str] | None) -> list[str] | None:
        for v in value or []:
            if v not in SIZE_BUCKETS:
                raise ValueError(f"{v!r} is not a Hub size category ({', '.join(SIZE_BUCKETS)})")
        return value

    def overrides(self) -> dict[str, Any]:
        """The keys the recipe set."""
        return self.model_dump(exclude_none=True, exclude_unset=True)


def card_metadata(*, rows: int, splits: Mapping[str, str] | None = None, licenses: Sequence[str] = (),
                  languages: Mapping[str, int] | None = None, ops: Sequence[str] = (), columns: Sequence[str] = (),
                  sources: Sequence[str] = (), pretty_name: str | None = None,
                  provenance: Mapping[str, Any] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The YAML metadata of a dataset (keys in :data:`CARD_KEYS` order, empty ones left out).

    ``splits`` maps each split to its ``data_files`` pattern; ``licenses`` are the rows' license
    values; ``languages`` counts rows per ``lang.code``; ``ops`` are the steps' operator names (or
    ``name@version``); ``columns`` the output's columns; ``sources`` known public sources (URLs).
    """
    names = [str(o).partition("@")[0] for o in ops]
    generated = any(n.startswith("generate.") for n in names)
    annotated = generated or any(n.startswith("judge.") for n in names)
    meta: dict[str, Any] = {}
    langs = [code for code, n in sorted((languages or {}).items(), key=lambda kv: (-kv[1], kv[0]))
             if code and code != "unknown" and rows and n / rows >= MIN_LANGUAGE_SHARE]
    if langs:
        meta["language"] = langs
    hub = sorted({h for v in licenses if v and (h := hub_license(v))})
    unknown = sorted({str(v) for v in licenses if v and hub_license(v) is None})
    if unknown:
        hub = sorted({*hub, "other"})
    meta["license"] = hub or ["unknown"]
    meta["annotations_creators"] = ["machine-generated" if annotated else "no-annotation"]
    meta["language_creators"] = ["machine-generated" if generated else "found"]
    if langs:
        meta["multilinguality"] = ["multilingual" if len(langs) > 1 else "monolingual"]
    meta["size_categories"] = [size_category(rows)]
    meta["source_datasets"] = list(dict.fromkeys(sources)) or ["original"]
    meta["task_categories"] = ["token-classification" if {"tokens", "tags"} <= set(columns) else "text-generation"]
    if pretty_name:
        meta["pretty_name"] = pretty_name
    if len(unknown) == 1:
        meta["license_name"] = _slug(unknown[0])
    meta["tags"] = ["gristmill", *(["synthetic"] if generated else [])]
    for key, value in (overrides or {}).items():
        if value is not None:
            meta[key] = value
    if meta.get("license") and "other" not in meta["license"]:
        meta.pop("license_name", None)
    if splits:
        meta["configs"] = [{"config_name": "default",
                            "data_files": [{"split": s, "path": p} for s, p in splits.items()]}]
    if provenance:
        meta["gristmill"] = {"recipe": provenance.get("recipe"), "ops": list(provenance.get("ops") or [])}
    return {k: meta[k] for k in CARD_KEYS if k in meta}


def card_yaml(meta: Mapping[str, Any]) -> str:
    """The YAML block of ``meta`` (without the ``---`` lines), written by ``huggingface_hub``'s
    ``DatasetCardData`` when it is installed, else by PyYAML in the same order and style."""
    try:
        from huggingface_hub import DatasetCardData
    except ImportError:
        return yaml.safe_dump(dict(meta), sort_keys=False, allow_unicode=True).strip()
    return DatasetCardData(**meta).to_yaml()


def card_text(meta: Mapping[str, Any], body: str) -> str:
    """A dataset card: the YAML metadata between ``---`` lines, then the Markdown ``body``."""
    return f"---\n{card_yaml(meta)}\n---\n\n{body.lstrip()}"


# ---- reading a hub directory back ------------------------------------------------------------

def split_files(root: Path) -> dict[str, list[Path]]:
    """The Parquet files of each split under ``root/data``, by split, in file order."""
    out: dict[str, list[Path]] = {}
    for p in sorted((root / "data").glob("*.parquet")) if (root / "data").is_dir() else []:
        m = FILE.match(p.name)
        if m:
            out.setdefault(m.group("split"), []).append(p)
    return out


def read_facts(files: Sequence[Path]) -> dict[str, Any]:
    """Rows, columns, license values and ``lang.code`` counts of Parquet ``files`` (reads only those columns)."""
    rows, columns, licenses, languages = 0, [], Counter(), Counter()
    for f in files:
        pf = pq.ParquetFile(f)
        rows += pf.metadata.num_rows
        names = pf.schema_arrow.names
        columns += [c for c in names if c not in columns]
        for col, counter in (("license", licenses), ("lang.code", languages)):
            if col in names:
                values = pf.read(columns=[col]).column(0)
                if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
                    counter.update(v for v in values.to_pylist() if v is not None)
    return {"rows": rows, "columns": columns, "licenses": sorted(licenses), "languages": dict(languages)}


def _readme_body(name: str, splits: Mapping[str, list[Path]], facts: Mapping[str, Any]) -> str:
    lines = [f"# {name}", "", "Written by gristmill in the Hugging Face Hub layout: `datasets.load_dataset(\"parquet\", "
             "data_dir=...)` or `datasets.load_dataset(PATH)` loads it.", "", "| split | rows | files |",
             "|---|---|---|"]
    for split, files in splits.items():
        n = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        lines.append(f"| {split} | {n:,} | {len(files)} |")
    lines += ["", "Columns: " + ", ".join(f"`{c}`" for c in facts["columns"]) + "."]
    return "\n".join(lines) + "\n"


def write_readme(root: Path, *, card: Mapping[str, Any] | None = None, provenance: Mapping[str, Any] | None = None,
                 body: str | None = None) -> Path:
    """(Re)write ``root/README.md`` from the splits under ``root/data`` (atomically)."""
    splits = split_files(root)
    facts = read_facts([f for files in splits.values() for f in files])
    name = (card or {}).get("pretty_name") or root.name
    meta = card_metadata(rows=facts["rows"], splits={s: f"data/{s}-*" for s in splits}, licenses=facts["licenses"],
                         languages=facts["languages"], ops=(provenance or {}).get("ops") or (),
                         columns=facts["columns"], pretty_name=name, provenance=provenance, overrides=card)
    target = root / README
    tmp = root / f".{README}.tmp-{os.getpid()}"
    tmp.write_text(card_text(meta, body if body is not None else _readme_body(name, splits, facts)), encoding="utf-8")
    os.replace(tmp, target)
    return target


# ---- the writer ----------------------------------------------------------------------------------

class HubWriter(Writer):
    """One split of a Hub layout: ``path`` is ``<root>/<split>``; rows go to
    ``<root>/data/<split>-0000i-of-0000N.parquet`` (``rows_per_file`` rows each, else one file) and
    ``close()`` rewrites ``<root>/README.md`` for every split there. The files carry the run's
    provenance in their Parquet metadata (``gristmill.provenance``)."""

    def __init__(self, path: Path, *, rows_per_file: int | None = None, compression: str | None = None,
                 card: Mapping[str, Any] | None = None, provenance: Mapping[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.root = self.path.parent
        self.split = "train" if self.path.name == "data" else self.path.name
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.split) or self.split.startswith("."):
            raise ValueError(f"hub output: split name {self.split!r} must be letters, digits, '_', '.' or '-'")
        self.rows_per_file, self.card, self.provenance = rows_per_file, card, provenance
        meta = {b"gristmill.provenance": json.dumps(dict(provenance)).encode()} if provenance else None
        self.all = ParquetWriter(self.root / "data" / f".{self.split}.all.parquet", compression, schema_metadata=meta)

    def write(self, table: pa.Table) -> None:
        self.all.write(table)

    def _place(self, whole: Path) -> list[Path]:
        data = whole.parent
        for old in data.glob(f"{self.split}-*-of-*.parquet"):
            if FILE.match(old.name) and FILE.match(old.name).group("split") == self.split:
                old.unlink()
        pf = pq.ParquetFile(whole)
        rows = pf.metadata.num_rows
        n = max(1, math.ceil(rows / self.rows_per_file)) if self.rows_per_file else 1
        if n > 99_999:
            raise ValueError(f"hub output: {n} files for split {self.split!r}; raise rows_per_file")
        names = [data / f"{self.split}-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
        if n == 1:
            os.replace(whole, names[0])
            return names
        per = self.rows_per_file or rows
        writer, index, in_file = None, -1, per
        for batch in pf.iter_batches(batch_size=min(per, 65536)):
            start = 0
            while start < batch.num_rows:
                if in_file >= per:
                    if writer is not None:
                        writer.close()
                    index, in_file = index + 1, 0
                    writer = pq.ParquetWriter(names[index], pf.schema_arrow, compression="zstd")
                take = min(per - in_file, batch.num_rows - start)
                writer.write_batch(batch.slice(start, take))
                start, in_file = start + take, in_file + take
        if writer is not None:
            writer.close()
        whole.unlink()
        return names

    def close(self) -> list[Path]:
        (whole,) = self.all.close()
        files = self._place(whole)
        readme = write_readme(self.root, card=self.card, provenance=self.provenance)
        return [readme, *files]

    def abort(self) -> None:
        self.all.abort()


def write_hub(root: str | Path, splits: Mapping[str, pa.Table] | pa.Table, *, card: Mapping[str, Any] | None = None,
              provenance: Mapping[str, Any] | None = None, rows_per_file: int | None = None) -> list[Path]:
    """Write ``splits`` (split name -> table; a single table is ``train``) in the Hub layout under ``root``."""
    root = Path(root)
    if isinstance(splits, pa.Table):
        splits = {"train": splits}
    card = CardMetadata(**card).overrides() if card else None
    for split, table in splits.items():
        with HubWriter(root / split, rows_per_file=rows_per_file, card=card, provenance=provenance) as w:
            w.write(table)
    return [root / README, *(f for fs in split_files(root).values() for f in fs)]


def push_to_hub(root: str | Path, repo_id: str, *, token: str | None = None, private: bool | None = None,
                revision: str | None = None, commit_message: str = "Upload dataset written by gristmill") -> str:
    """Upload a hub-layout directory (``README.md`` and ``data/*.parquet``) to the dataset repository
    ``repo_id`` (created when missing) and return the commit URL. Needs ``huggingface_hub`` and a token
    (``token``, ``HF_TOKEN`` or ``huggingface-cli login``); not run by the test suite."""
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise ImportError("push_to_hub needs the 'hf' extra: pip install 'gristmill[hf]'") from None
    root = Path(root)
    if not (root / README).is_file() or not split_files(root):
        raise ValueError(f"{root}: not a hub-layout directory (README.md and data/<split>-*.parquet)")
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(root), repo_id=repo_id, repo_type="dataset", revision=revision,
                             allow_patterns=[README, "data/*.parquet"], commit_message=commit_message)
    return str(getattr(info, "commit_url", info))
