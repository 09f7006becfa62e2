"""Cost of the evaluation measures on this machine (run with ``.venv/bin/python benchmarks/bench_eval.py``).

* self-BLEU (sacrebleu sentence BLEU of each sampled text against the rest) at several sample sizes,
  on GSM8K questions: it grows with the square of the sample;
* n-gram divergence (unigram + bigram) of the Self-Instruct seeds against GSM8K;
* per-example generation metrics (sentence BLEU, chrF, ROUGE-1/2/L, EM, F1) per 1,000 pairs;
* perplexity throughput of SmolLM2-135M in float32 and bfloat16 (one torch thread), 512-token windows.

Prints one JSON object; figures depend on the load of the (shared, 2-core) machine.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _read(name: str, field: str) -> list[str]:
    with open(DATA / name, encoding="utf-8") as f:
        return [json.loads(line)[field] for line in f if line.strip()]


def main() -> None:
    from gristmill.evaluate.diversity import sample_texts, self_bleu
    from gristmill.evaluate.divergence import evaluate_divergence
    from gristmill.evaluate.generation_metrics import evaluate_generation
    from gristmill.models.runtime import set_torch_threads

    set_torch_threads(1)
    gsm = _read("gsm8k_test.jsonl", "question")
    seeds = _read("self_instruct_seed_tasks.jsonl", "instruction")
    out: dict[str, object] = {"self_bleu_seconds": {}}
    for k in (100, 200, 400):
        t = time.perf_counter()
        self_bleu(sample_texts(gsm, k))
        out["self_bleu_seconds"][k] = round(time.perf_counter() - t, 2)  # type: ignore[index]
    t = time.perf_counter()
    evaluate_divergence(seeds, gsm, orders=(1, 2))
    out["divergence_seconds"] = round(time.perf_counter() - t, 2)
    preds, refs = gsm[:1000], gsm[1:1001]
    t = time.perf_counter()
    evaluate_generation(preds, refs)
    out["generation_metrics_seconds_per_1000"] = round(time.perf_counter() - t, 2)
    if "--no-model" not in sys.argv:
        from gristmill.evaluate.perplexity import evaluate_perplexity, load_model, text_segments

        sys.path.insert(0, str(ROOT))
        from tests.models._text import paragraphs

        docs_text = paragraphs(0, 12)
        for dtype in ("float32", "bfloat16"):
            scorer = load_model(None, dtype)
            docs = [text_segments(scorer, p) for p in docs_text]
            res = evaluate_perplexity(scorer, docs, max_length=512, stride=256)
            out[f"perplexity_{dtype}"] = {"perplexity": round(res.perplexity, 3), "tokens": res.tokens,
                                          "tokens_per_s": round(res.tokens_per_s, 1)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
