"""``DATASET_CARD.md``: a datasheet for a run's output, written from the run directory and its audit.

Sections follow "Datasheets for Datasets" (Gebru et al. 2021) and Hugging Face dataset
cards, cut to what a run can know about itself: summary; sources and licenses with
attribution (from the output's ``source`` / ``license`` columns, and for files of
``../shared/data`` from :data:`KNOWN_SOURCES`); the processing steps with their counts
(``stats.json``); one section per heading the registered operators' audit sections write
under (:attr:`gristmill.audit.metric.AuditSection.card`: PII handling, toxicity, bias,
contamination and copyright, each saying so when the run did not check it); the gates; known
limitations; intended use (the recipe's ``card:`` section, else a default). Like the report it
is a pure function of the run directory: :func:`write_card` can rebuild it at any time.

The card opens with the YAML metadata the Hugging Face Hub indexes (:func:`card_metadata_of`,
written through ``huggingface_hub``'s ``DatasetCardData``; the keys are listed in
:mod:`gristmill.io.hub`): inferred from the run (splits, license values, ``lang.code``, the
generating steps, the known sources) and overridden by the recipe's ``card:`` section. A run
whose output format is ``hub`` gets the same card as the output's ``README.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from gristmill.audit.audit import load_audit
from gristmill.audit.catalogue import contributions
from gristmill.audit.markdown import compact, params_text, summary_markdown
from gristmill.audit.markdown import md as _md
from gristmill.audit.markdown import num as _n
from gristmill.audit.markdown import table as _table
from gristmill.io.hub import README, CardMetadata, card_metadata, card_text
from gristmill.io.metadata import run_provenance
from gristmill.io.writers import DECODES_JSON_TEXT
from gristmill.pipeline.run_reader import RunReader

__all__ = ["CARD_NAME", "KNOWN_SOURCES", "KnownSource", "known_source", "build_card", "card_metadata_of", "write_card",
           "compact", "params_text", "summary_markdown"]

CARD_NAME = "DATASET_CARD.md"


@dataclass(frozen=True)
class KnownSource:
    """License and attribution of a known data file (``../shared/data/README.md``)."""

    title: str
    license: str
    url: str
    attribution: str
    share_alike: bool = False

    @property
    def needs_attribution(self) -> bool:
        return self.license.startswith("CC BY")


_WNUT = KnownSource(
    "WNUT-17 Emerging and Rare Entities", "CC BY 4.0", "https://github.com/leondz/emerging_entities_17",
    "Derczynski, L., Nichols, E., van Erp, M., Limsopatham, N. (2017). Results of the WNUT2017 Shared Task on "
    "Novel and Emerging Entity Recognition. Proceedings of the 3rd Workshop on Noisy User-generated Text. "
    "Licensed under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).")

KNOWN_SOURCES: dict[str, KnownSource] = {
    "wnut17train.conll": _WNUT,
    "emerging.dev.conll": _WNUT,
    "emerging.test.annotated": _WNUT,
    "crows_pairs_anonymized.csv": KnownSource(
        "CrowS-Pairs", "CC BY-SA 4.0", "https://github.com/nyu-mll/crows-pairs",
        "Nangia, N., Vania, C., Bhalerao, R., Bowman, S. R. (2020). CrowS-Pairs: A Challenge Dataset for Measuring "
        "Social Biases in Masked Language Models. EMNLP 2020. Licensed under CC BY-SA 4.0 "
        "(https://creativecommons.org/licenses/by-sa/4.0/); derived data must be shared under the same license.",
        share_alike=True),
    "pii_synth_dev.json": KnownSource(
        "presidio-research synth_dataset_v2 (750 of 1500 records)", "MIT",
        "https://github.com/microsoft/presidio-research", "Microsoft presidio-research, data/synth_dataset_v2.json "
        "(MIT License). Template-generated from Faker values: the people in it are not real."),
    "self_instruct_seed_tasks.jsonl": KnownSource(
        "Self-Instruct seed tasks", "Apache-2.0", "https://github.com/yizhongw/self-instruct",
        "Wang, Y. et al. (2023). Self-Instruct: Aligning Language Models with Self-Generated Instructions. "
        "ACL 2023 (Apache License 2.0)."),
    "gsm8k_test.jsonl": KnownSource(
        "GSM8K test set", "MIT", "https://github.com/openai/grade-school-math",
        "Cobbe, K. et al. (2021). Training Verifiers to Solve Math Word Problems (MIT License)."),
    "HumanEval.jsonl.gz": KnownSource(
        "HumanEval", "MIT", "https://github.com/openai/human-eval",
        "Chen, M. et al. (2021). Evaluating Large Language Models Trained on Code (MIT License)."),
    "tinyshakespeare.txt": KnownSource(
        "Tiny Shakespeare", "public domain", "https://github.com/karpathy/char-rnn",
        "Works of William Shakespeare, collected by A. Karpathy for char-rnn (public domain text)."),
    "gutenberg_sample.jsonl.gz": KnownSource(
        "Project Gutenberg sample (123 books)", "public domain (US)", "https://github.com/rcdm-uga/Gutenberg_Text",
        "Texts from Project Gutenberg (https://www.gutenberg.org), public domain in the United States; "
        "the Project Gutenberg name is a trademark, so redistributed texts should not carry its headers."),
}


def known_source(source: str | None) -> KnownSource | None:
    """The known source a ``source`` value (a file path) names, by file name."""
    if not source:
        return None
    return KNOWN_SOURCES.get(PurePath(str(source)).name)


def _short_source(source: Any) -> str:
    if source is None:
        return "(none)"
    p = PurePath(str(source))
    return p.name or str(source)


def _sources(audit: dict[str, Any]) -> tuple[str, list[str]]:
    """The sources section and the limitations it implies."""
    limits: list[str] = []
    by_file: dict[tuple[str, Any], dict[str, Any]] = {}
    for s in audit.get("sources") or []:
        key = (_short_source(s.get("source")), s.get("license"))
        entry = by_file.setdefault(key, {"rows": 0, "source": s.get("source")})
        entry["rows"] += int(s.get("rows") or 0)
    if not by_file:
        return "The output has no rows.", limits
    rows, notes, unlicensed = [], [], 0
    for (name, lic), e in sorted(by_file.items(), key=lambda kv: -kv[1]["rows"]):
        known = known_source(e["source"])
        shown = lic
        if lic is None and known is not None:
            shown = f"{known.license} (known source; not set on the records)"
        elif lic is None:
            unlicensed += e["rows"]
        rows.append([name, shown, _n(e["rows"]), f"[{known.title}]({known.url})" if known else None])
        if known and known.needs_attribution and known.attribution not in notes:
            notes.append(known.attribution)
    parts = [_table(["source", "license", "rows", "known as"], rows)]
    if notes:
        parts.append("**Attribution** (required by the licenses above; keep it with any redistribution):\n\n"
                     + "\n".join(f"- {a}" for a in notes))
    known_all = [known_source(e["source"]) for e in by_file.values()]
    if any(k and k.share_alike for k in known_all):
        parts.append("Part of the data is licensed CC BY-SA: data derived from it must be released under the "
                     "same license.")
    if unlicensed:
        limits.append(f"{unlicensed:,} output rows carry no license and come from no known source; their terms "
                      "of use are unknown (set `input.license` in the recipe).")
    return "\n\n".join(parts), limits


def _steps(run: RunReader) -> str:
    steps = run.steps
    inp = run.stats.get("input") or {}
    head = (f"{_n(inp.get('rows'))} rows read ({_n(inp.get('quarantined', 0))} input records quarantined as "
            f"unreadable or of the wrong field type); {_n((run.stats.get('output') or {}).get('rows'))} rows "
            "written.")
    if not steps:
        return head + "\n\nNo processing steps."
    params = {i: s.get("params") or {} for i, s in enumerate(run.recipe_steps)}
    rows = []
    for s in steps:
        dropped = ", ".join(f"{k} {v:,}" for k, v in (s.get("dropped") or {}).items()) or "—"
        rows.append([s.get("step"), s.get("kind"), _n(s.get("rows_in")), _n(s.get("rows_out")), dropped,
                     params_text(params.get(int(s.get("index", -1)), {}))])
    return head + "\n\n" + _table(["step", "kind", "rows in", "rows out", "dropped (by rule)", "parameters"], rows)


def _operator_sections(audit: dict[str, Any], run: RunReader) -> tuple[list[str], list[str]]:
    """The card sections of the registered operators' audit sections, under their headings, and their limitations."""
    summaries = audit.get("summaries") or {}
    texts: dict[str, list[str]] = {}
    empty: dict[str, str] = {}
    limitations: list[str] = []
    for c in contributions():
        section = c.section
        if section.card_title is None or section.card is None:
            continue
        text, limits = section.card(summaries.get(section.name), run)
        texts.setdefault(section.card_title, [])
        if text:
            texts[section.card_title].append(text)
        empty.setdefault(section.card_title, section.card_empty)
        limitations += limits
    sections = [f"## {title}\n\n" + ("\n".join(parts) if parts else empty[title]) for title, parts in texts.items()]
    return sections, limitations


def _gates(audit: dict[str, Any]) -> str:
    gates = audit.get("gates") or []
    if not gates:
        return "The recipe sets no gates."
    rows = []
    for g in gates:
        measured = g.get("measured")
        measured = ", ".join(map(str, measured)) if isinstance(measured, list) else measured
        rows.append([f"`{g['expr']}`", measured if not g.get("error") else g["error"],
                     "pass" if g.get("passed") else "**FAIL**"])
    verdict = "All gates passed." if audit.get("passed") else "**Some gates failed: see audit.json.**"
    return _table(["gate", "measured", "result"], rows) + "\n\n" + verdict


DEFAULT_USE = ("Fine-tuning and evaluating language models in research and development, by people who have "
               "read this card. Not reviewed for deployment in products that affect people's rights, "
               "health, finances or safety.")


def _json_columns(out: dict[str, Any]) -> list[str]:
    """The summary line on columns stored as JSON text (values that fit no one column type), if any."""
    json_columns = out.get("json_columns") or {}
    if not json_columns:
        return []
    names = "; ".join(f"`{_md(k)}` ({_md(v)})" for k, v in json_columns.items())
    if out.get("format") in DECODES_JSON_TEXT:
        how = "this output holds their values as they were in the input"
    else:
        how = (f"each value in this {_md(out.get('format'))} output is its JSON text (`json.loads` gives it back"
               + ("; the Parquet field metadata `gristmill.json` marks such columns" if out.get("format") == "parquet"
                  else "") + ")")
    return [f"- Columns stored as JSON text, their values fitting no one column type: {names}; {how}."]


def _data_files(out: dict[str, Any]) -> dict[str, str]:
    """``configs``' data files by split: the hub layout's ``data/<split>-*`` (relative to its README),
    else each output file inside the run directory (relative to the card); none for ``hf``."""
    fmt = out.get("format")
    splits = list(out.get("splits") or {}) or ["data"]
    if fmt == "hub":
        return {("train" if s == "data" else s): f"data/{'train' if s == 'data' else s}-*" for s in splits}
    if fmt == "hf":
        return {}
    files = {}
    for f in out.get("files") or []:
        p = PurePath(str(f))
        if p.is_absolute() or p.name.startswith(".") or p.suffix not in (".jsonl", ".parquet", ".csv", ".gz", ".zst"):
            continue
        stem = p.name.split(".")[0]
        files["train" if stem == "data" else stem] = p.as_posix()
    return files


def _values(run: RunReader, column: str) -> list[Any]:
    table = run.output_table([column])
    return table.column(column).to_pylist() if column in table.column_names else []


def card_metadata_of(run_dir: Path | RunReader, audit: dict[str, Any] | None = None) -> dict[str, Any]:
    """The YAML metadata of a run's dataset card (:func:`gristmill.io.hub.card_metadata` of what the run knows,
    the recipe's ``card:`` section overriding it)."""
    run = run_dir if isinstance(run_dir, RunReader) else RunReader(run_dir)
    audit = audit if audit is not None else (run.audit or {})
    out = run.stats.get("output") or {}
    provenance = out.get("provenance") or (run_provenance(run.recipe) if run.recipe else None)
    card = run.recipe.get("card") if isinstance(run.recipe.get("card"), dict) else {}
    overrides = {k: v for k, v in card.items() if k in CardMetadata.model_fields and v is not None}
    languages: dict[str, int] = {}
    for code in _values(run, "lang.code"):
        if isinstance(code, str):
            languages[code] = languages.get(code, 0) + 1
    licenses = sorted({str(v) for v in _values(run, "license") if v})
    sources = [known_source(s.get("source")) for s in audit.get("sources") or []]
    known = (["original"] if None in sources else []) + [k.url for k in sources if k is not None]
    columns = run.output_table(lambda name: name in ("tokens", "tags")).column_names
    return card_metadata(rows=int(out.get("rows") or 0), splits=_data_files(out), licenses=licenses,
                         languages=languages, ops=(provenance or {}).get("ops") or [s.get("op") for s in run.recipe_steps],
                         columns=columns, sources=known, pretty_name=str(run.stats.get("run") or run.run_dir.name),
                         provenance=provenance, overrides=overrides)


def build_card(run_dir: Path | RunReader, audit: dict[str, Any] | None = None) -> str:
    """The dataset card of the run in ``run_dir`` as Markdown (``audit`` defaults to ``audit.json``, else
    the audit built now)."""
    run = run_dir if isinstance(run_dir, RunReader) else RunReader(run_dir)
    if audit is None:
        audit = load_audit(run)
    card = run.recipe.get("card") if isinstance(run.recipe.get("card"), dict) else {}
    stats = run.stats
    out = stats.get("output") or {}
    name = stats.get("run", run.run_dir.name)
    desc = run.recipe.get("description")
    sources, l_src = _sources(audit)
    checks, l_checks = _operator_sections(audit, run)
    limitations = [*map(str, card.get("limitations") or []), *l_src, *l_checks]
    quarantined = (stats.get("input") or {}).get("quarantined") or 0
    if quarantined:
        limitations.append(f"{quarantined:,} input records could not be read or had a field of another type than "
                           "its column, and are not in the output (quarantine.jsonl).")
    json_columns = out.get("json_columns") or {}
    if json_columns and out.get("format") not in DECODES_JSON_TEXT:
        limitations.append(f"{len(json_columns)} column(s) are stored as JSON text in this {_md(out.get('format'))} "
                           "output (see Summary): each value is a string to parse with `json.loads`.")
    splits = out.get("splits") or {}
    summary = [
        f"- Rows: {_n(out.get('rows'))}" + (f" ({', '.join(f'{k} {_n(v)}' for k, v in splits.items())})"
                                            if splits else ""),
        f"- Format: {_md(out.get('format'))}; files: {', '.join(f'`{f}`' for f in out.get('files') or []) or '—'}",
        *_json_columns(out),
        f"- Built by gristmill from recipe `{_md(os.path.basename(str(stats.get('recipe', '')))) }` "
        f"on {_md(stats.get('finished'))}; the resolved recipe is `recipe.yaml`, per-step counts `stats.json`, "
        "dropped rows with reasons `rejected/`, the audit `audit.json`, the report `report.html`.",
    ]
    intended = card.get("intended_use") or DEFAULT_USE
    out_of_scope = card.get("out_of_scope_use")
    sections = [
        f"# Dataset card: {name}",
        str(desc).strip() if desc else "",
        "## Summary\n\n" + "\n".join(summary),
        "## Sources and licenses\n\n" + sources,
        "## Processing steps\n\n" + _steps(run),
        *checks,
        "## Audit gates\n\n" + _gates(audit),
        "## Known limitations\n\n" + "\n".join(f"- {x}" for x in dict.fromkeys(limitations)),
        "## Intended use\n\n" + str(intended).strip()
        + (f"\n\nOut of scope: {str(out_of_scope).strip()}" if out_of_scope else ""),
    ]
    return card_text(card_metadata_of(run, audit), "\n\n".join(s for s in sections if s) + "\n")


def write_card(run_dir: Path | RunReader, audit: dict[str, Any] | None = None) -> Path:
    """Write ``run_dir/DATASET_CARD.md`` atomically and return its path; a ``hub`` output's ``README.md``
    gets the same card."""
    run = run_dir if isinstance(run_dir, RunReader) else RunReader(run_dir)
    text = build_card(run, audit)
    out = run.stats.get("output") or {}
    targets = [run.run_dir / CARD_NAME]
    if out.get("format") == "hub":
        targets += [p if p.is_absolute() else run.run_dir / p for p in map(Path, out.get("files") or [])
                    if p.name == README]
    for target in dict.fromkeys(targets):
        if target.name == README and not target.parent.is_dir():
            continue
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    return targets[0]
