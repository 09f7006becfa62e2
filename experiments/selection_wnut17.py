"""Which training sentences to keep? Data-selection strategies on WNUT-17 NER at equal budgets.

Setup (a frozen-feature tagger, NOT fine-tuning): all-MiniLM-L6-v2 runs once over every
sentence of train/dev/test; the first-subword vector of each word (last layer, 384-d) and
the mean-pooled sentence embedding are cached under experiments/out/selection_wnut17/.
The trained model is a small MLP head (384 -> 128 -> 13 BIO tags, softmax per word) over the
frozen word vectors, trained from scratch on each selected subset with the same schedule.
Metric: seqeval entity F1 on the WNUT-17 test set (1,287 sentences).

Strategies at each budget (sentences): random; quality (gold-tag entity density: entity
mentions, ties by length); IFD analogue (tag NLL under a "cherry" head trained on a random
10% / tag NLL under the unigram tag prior, highest first, IFD > 1 dropped); k-center greedy on
sentence embeddings; EXP3 and UCB1 bandits over k-means clusters of sentence embeddings,
rewarded by the dev-loss drop of a head trained online on the pulled batches (the
selected subset is then trained from scratch like every other strategy). Full training set
as a reference line. Several seeds; mean and 95% t-interval.

Run: ``.venv/bin/python experiments/selection_wnut17.py`` (1 torch thread; ~25 min on 2 shared cores, ~4 of them encoding on the first run).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "wnut17"
SPLITS = {"train": "wnut17train.conll", "dev": "emerging.dev.conll", "test": "emerging.test.annotated"}
OUT = ROOT / "experiments" / "out" / "selection_wnut17"
RESULTS = ROOT / "experiments" / "results"
STRATEGIES = ("random", "quality", "ifd", "kcenter", "bandit-exp3", "bandit-ucb", "bandit-exp3-rel", "bandit-ucb-rel")


def read_split(name: str) -> tuple[list[list[str]], list[list[str]], int]:
    from gristmill.io.base import BadRecord, ReaderOptions
    from gristmill.io.readers import open_reader

    toks, tags, bad = [], [], 0
    for rec in open_reader(DATA / SPLITS[name], ReaderOptions(format="conll")):
        if isinstance(rec, BadRecord):
            bad += 1
            print(f"skipped {rec.source}:{rec.line}: {rec.reason}", file=sys.stderr)
            continue
        toks.append(rec["tokens"])
        tags.append(rec["tags"])
    return toks, tags, bad


def encode_split(name: str, tokens: list[list[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(word vectors, offsets, sentence embeddings), cached as .npy."""
    files = [OUT / f"{name}_{k}.npy" for k in ("words", "offsets", "sent")]
    if all(f.is_file() for f in files):
        w, o, s = (np.load(f) for f in files)
        if len(o) == len(tokens) + 1:
            return w, o, s
    import torch
    from transformers import AutoModel, AutoTokenizer

    from gristmill.models.locate import minilm_dir, offline

    offline()
    tok = AutoTokenizer.from_pretrained(minilm_dir())
    model = AutoModel.from_pretrained(minilm_dir()).eval()
    words_out: list[np.ndarray] = [None] * len(tokens)  # type: ignore[list-item]
    sent = np.zeros((len(tokens), model.config.hidden_size), np.float32)
    order = sorted(range(len(tokens)), key=lambda i: -len(tokens[i]))
    t0 = time.time()
    with torch.inference_mode():
        for s in range(0, len(order), 32):
            rows = order[s:s + 32]
            enc = tok([tokens[i] for i in rows], is_split_into_words=True, truncation=True, max_length=256,
                      padding=True, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            for r, i in enumerate(rows):
                vec = np.zeros((len(tokens[i]), hidden.shape[-1]), np.float32)  # words without subwords stay 0
                seen = set()
                for pos, wid in enumerate(enc.word_ids(r)):
                    if wid is not None and wid not in seen:
                        seen.add(wid)
                        vec[wid] = hidden[r, pos].numpy()
                words_out[i] = vec
                sent[i] = pooled[r].numpy()
    print(f"encoded {name}: {len(tokens)} sentences in {time.time() - t0:.0f}s", file=sys.stderr)
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in tokens])]).astype(np.int64)
    words = np.concatenate(words_out).astype(np.float32)
    for f, a in zip(files, (words, offsets, sent)):
        np.save(f, a)
    return words, offsets, sent


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, lo, hi) of the 95% t-interval (gristmill.stats); one seed gives lo = hi = mean (a band of width 0)."""
    from gristmill import stats

    ci = stats.t_interval(values)
    return (ci.estimate, ci.lo, ci.hi) if ci.lo is not None else (ci.estimate, ci.estimate, ci.estimate)


def paired_vs_random(results: dict) -> dict:
    """Per strategy and budget: mean F1 difference to random over the same seeds, with the 95% t-interval
    of the per-seed differences (what gristmill.stats.paired_difference gives)."""
    out: dict = {}
    rnd = results["strategies"].get("random")
    if rnd is None:
        return out
    for s, by_b in results["strategies"].items():
        if s == "random":
            continue
        out[s] = {}
        for b, v in by_b.items():
            n = min(len(v["per_seed"]), len(rnd[b]["per_seed"]))
            m, lo, hi = t_interval([x - y for x, y in zip(v["per_seed"][:n], rnd[b]["per_seed"][:n])])
            out[s][b] = {"mean": round(m, 4), "ci95": [round(lo, 4), round(hi, 4)]}
    return out


def kept_observations(path: Path) -> str:
    """The hand-written "## Observations" section of an existing summary ('' when none)."""
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8")
    if "## Observations" not in text:
        return ""
    body = text.split("## Observations", 1)[1]
    return body.split("\nFigures: ", 1)[0].strip()


def write_markdown(results: dict, path: Path, observations: str = "") -> None:
    """The committed summary: setup, F1 table, differences to random, bandit arms."""
    budgets = [str(b) for b in results["budgets"]]
    lines = ["# Data selection on WNUT-17 NER (frozen-feature tagger)", "",
             f"Model: {results['model']}. Metric: {results['metric']}. {results['seeds']} seeds per cell "
             f"(seed = selection randomness + head initialisation); mean and 95% t-interval. Training pool: "
             f"{results['train_sentences']} sentences; dev (1009) gives the bandit reward; test (1287) gives F1.",
             f"Hardware: {results['hardware']}; whole run {results['seconds'] / 60:.1f} min "
             f"(encoding {results['seconds_encoding']:.0f} s, cached afterwards).", "",
             "Strategies: **random**; **quality** = gold entity mentions per sentence (ties: longer first), an "
             "entity-density heuristic, not a text-quality score; **ifd** = IFD analogue: mean gold-tag NLL under a "
             "'cherry' head trained on a random 10% of train / mean gold-tag NLL under the unigram tag prior of that "
             "10%, highest first, IFD > 1 dropped (Li et al. 2024 adapted to tagging; there is no instruction, the "
             "encoder features play its part); **kcenter** = greedy k-center on MiniLM sentence embeddings; "
             "**bandit-exp3 / bandit-ucb** = EXP3 (gamma 0.1) / UCB1 over k-means clusters (k=10) of sentence "
             "embeddings, 16 sentences per pull, one AdamW step of an online head per pull, reward = dev-loss drop "
             "mapped to [0, 1] by the largest change so far; **-rel** variants: reward = that drop minus the "
             "moving average (EMA 0.2) of recent drops, so the shrinking-drops trend of training does not decide "
             "the reward; the chosen sentences are then trained from scratch like every other strategy.", "",
             "## Test entity F1 (mean [95% CI])", "",
             "| strategy | " + " | ".join(budgets) + " |", "|---|" + "---|" * len(budgets)]
    for s, by_b in results["strategies"].items():
        lines.append(f"| {s} | " + " | ".join(
            f"{by_b[b]['mean']:.3f} [{by_b[b]['ci95'][0]:.3f}, {by_b[b]['ci95'][1]:.3f}]" for b in budgets) + " |")
    f = results["full"]
    lines.append(f"| full ({results['train_sentences']}) | " + " | ".join(
        [f"{f['mean']:.3f} [{f['ci95'][0]:.3f}, {f['ci95'][1]:.3f}]"] * len(budgets)) + " |")
    diff = results.get("vs_random", {})
    if diff:
        lines += ["", "## Difference to random, paired by seed (mean [95% CI]; * = interval excludes 0)", "",
                  "| strategy | " + " | ".join(budgets) + " |", "|---|" + "---|" * len(budgets)]
        for s, by_b in diff.items():
            cells = []
            for b in budgets:
                v = by_b[b]
                star = "*" if v["ci95"][0] > 0 or v["ci95"][1] < 0 else ""
                cells.append(f"{v['mean']:+.3f} [{v['ci95'][0]:+.3f}, {v['ci95'][1]:+.3f}]{star}")
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
    arms = results.get("bandit_arms", {})
    if arms:
        lines += ["", f"## Which clusters the bandits pulled (budget {budgets[-1]}, seed 0)", "",
                  "| cluster | sentences | entities / sentence | " + " | ".join(f"{s} pulls" for s in arms) + " |",
                  "|---|---|---|" + "---|" * len(arms)]
        clusters = results["clusters_seed0"]
        for a, c in enumerate(clusters):
            lines.append(f"| {c['arm']} | {c['size']} | {c['entities_per_sentence']:.2f} | "
                         + " | ".join(str(v["arm_counts"][a]) for v in arms.values()) + " |")
        lines.append("")
        lines.append("Correlation of pulls with cluster entity density: " + ", ".join(
            f"{s} {v['corr_pulls_entity_density']}" for s, v in arms.items()) + ".")
    if observations:
        lines += ["", "## Observations", "", observations.strip()]
    lines += ["", "Figures: learning curves with 95% bands and per-arm pull/reward curves are in the run report "
              "(experiments/out/selection_wnut17/report.html); per-seed numbers in the JSON next to this file."]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budgets", default="200,400,800,1600")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--clusters", type=int, default=10)
    ap.add_argument("--batch", type=int, default=16, help="bandit: sentences per pull")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--markdown-only", action="store_true",
                    help="rewrite the .md from the committed .json (keeping its hand-written Observations)")
    args = ap.parse_args()
    if args.markdown_only:
        res = json.loads((RESULTS / "selection_wnut17.json").read_text(encoding="utf-8"))
        res["vs_random"] = paired_vs_random(res)
        write_markdown(res, RESULTS / "selection_wnut17.md", kept_observations(RESULTS / "selection_wnut17.md"))
        return

    import torch
    from seqeval.metrics import f1_score

    from gristmill.rundir import RunDir
    from gristmill.select.bandit import make_policy, run_bandit
    from gristmill.select.features import cluster_arms, kmeans_labels
    from gristmill.select.strategies import kcenter_greedy, select_random, select_top
    from gristmill.select.tagger import HeadLearner, WordFeatures, predict, train_head, word_losses

    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    budgets = [int(b) for b in args.budgets.split(",")]
    strategies = [s for s in args.strategies.split(",") if s]
    seeds = list(range(args.seeds))
    t_start = time.time()

    data = {k: read_split(k) for k in SPLITS}
    labels = sorted({t for s in data["train"][1] for t in s} | {t for s in data["test"][1] for t in s})
    tag_id = {t: i for i, t in enumerate(labels)}
    feats, sent_emb = {}, {}
    for k, (toks, tags, _) in data.items():
        w, o, s = encode_split(k, toks)
        feats[k] = WordFeatures(w, o, [[tag_id[t] for t in ts] for ts in tags])
        sent_emb[k] = s
    n_train = len(feats["train"])
    train_tags = data["train"][1]
    gold_test = data["test"][1]
    t_encoded = time.time() - t_start

    def test_f1(sentences: list[int], seed: int) -> float:
        head = train_head(feats["train"], sentences, len(labels), seed=seed)
        pred = [[labels[i] for i in p] for p in predict(head, feats["test"])]
        return float(f1_score(gold_test, pred))

    run = RunDir.create(args.out, kind="experiment", config={
        "name": "selection_wnut17", "budgets": budgets, "seeds": seeds, "clusters": args.clusters,
        "bandit_batch": args.batch, "strategies": strategies, "encoder": "all-MiniLM-L6-v2 (frozen)",
        "head": "MLP 384-128-13, AdamW lr 1e-3, max(15 epochs, 250 steps) of 32 sentences",
        "torch_threads": 1})

    # Strategy scores that do not depend on the budget.
    n_ent = np.array([sum(t.startswith("B-") for t in ts) for ts in train_tags], float)
    length = np.array([len(ts) for ts in train_tags], float)
    quality = n_ent + 0.001 * np.minimum(length, 100)

    per_seed: dict[str, dict[int, list[float]]] = {s: {b: [] for b in budgets} for s in strategies}
    bandit_logs: dict[str, dict] = {}
    cluster_info: dict[int, list] = {}
    full = []
    for seed in seeds:
        t_seed = time.time()
        full.append(test_f1(list(range(n_train)), seed))
        rng = np.random.default_rng(1000 + seed)
        cherry = rng.permutation(n_train)[: n_train // 10].tolist()
        ifd = None
        if "ifd" in strategies:
            ref = train_head(feats["train"], cherry, len(labels), seed=seed)
            losses = word_losses(ref, feats["train"])
            prior = np.bincount(feats["train"].y[feats["train"].rows(cherry)].numpy(), minlength=len(labels)) + 1.0
            prior_nll = -np.log(prior / prior.sum())[feats["train"].y.numpy()]
            o = feats["train"].offsets
            ifd = np.array([losses[o[i]:o[i + 1]].mean() / prior_nll[o[i]:o[i + 1]].mean() for i in range(n_train)])
            ifd_usable = [float(v) if v <= 1 else None for v in ifd]
        clusters = kmeans_labels(sent_emb["train"], args.clusters, seed)
        arms, arm_names = cluster_arms(clusters)
        cluster_info[seed] = [{"arm": n, "size": len(a), "entities_per_sentence": round(float(n_ent[a].mean()), 3),
                               "share_with_entity": round(float((n_ent[a] > 0).mean()), 3)}
                              for n, a in zip(arm_names, arms)]
        for budget in budgets:
            for strat in strategies:
                if strat == "random":
                    chosen = select_random(n_train, budget, seed)
                elif strat == "quality":
                    chosen = select_top(quality.tolist(), budget, seed)
                elif strat == "ifd":
                    chosen = select_top(ifd_usable, budget, seed)
                elif strat == "kcenter":
                    chosen = kcenter_greedy(sent_emb["train"], budget, seed)
                else:
                    learner = HeadLearner(feats["train"], feats["dev"], len(labels), seed=seed)
                    policy = make_policy(strat.removesuffix("-rel"), len(arms), seed=seed, gamma=0.1)
                    chosen, pulls = run_bandit(arms, learner, budget, policy, batch_size=args.batch, seed=seed,
                                               arm_names=arm_names,
                                               reward="relative" if strat.endswith("-rel") else "drop")
                    bandit_logs[f"{strat}/b{budget}/s{seed}"] = {
                        "pulls": [p.to_json() for p in pulls],
                        "arm_counts": [int(sum(p.arm == a for p in pulls)) for a in range(len(arms))]}
                assert len(chosen) == len(set(chosen)) <= budget
                per_seed[strat][budget].append(test_f1(chosen, seed))
        print(f"seed {seed}: {time.time() - t_seed:.0f}s; " + ", ".join(
            f"{s}@{budgets[-1]}={per_seed[s][budgets[-1]][-1]:.3f}" for s in strategies)
            + f", full={full[-1]:.3f}", file=sys.stderr)

    # Summaries.
    summary = {s: {} for s in strategies}
    for s in strategies:
        for b in budgets:
            m, lo, hi = t_interval(per_seed[s][b])
            summary[s][str(b)] = {"mean": round(m, 4), "ci95": [round(lo, 4), round(hi, 4)],
                                  "per_seed": [round(v, 4) for v in per_seed[s][b]]}
    fm, flo, fhi = t_interval(full)
    series = {s: (budgets, [summary[s][str(b)]["mean"] for b in budgets]) for s in strategies}
    bands = {s: (budgets, [summary[s][str(b)]["ci95"][0] for b in budgets],
                 [summary[s][str(b)]["ci95"][1] for b in budgets]) for s in strategies}
    series[f"full ({n_train})"] = (budgets, [fm] * len(budgets))
    bands[f"full ({n_train})"] = (budgets, [flo] * len(budgets), [fhi] * len(budgets))
    run.curve("Test entity F1 vs budget (mean, 95% t-interval)", series, "training sentences", "entity F1 (seqeval)",
              bands=bands, note=f"{len(seeds)} seeds; frozen MiniLM features + MLP head")
    rows = [[s] + [f"{summary[s][str(b)]['mean']:.3f} [{summary[s][str(b)]['ci95'][0]:.3f}, "
                   f"{summary[s][str(b)]['ci95'][1]:.3f}]" for b in budgets] for s in strategies]
    rows.append([f"full ({n_train})"] + [f"{fm:.3f} [{flo:.3f}, {fhi:.3f}]"] * len(budgets))
    run.table("Test entity F1 (mean [95% CI])", ["strategy"] + [str(b) for b in budgets], rows)

    # Which arms were pulled and why: pulls per cluster vs its entity density (seed 0, largest budget).
    why = {}
    for strat in [s for s in strategies if s.startswith("bandit")]:
        key = f"{strat}/b{budgets[-1]}/s0"
        if key not in bandit_logs:
            continue
        log = bandit_logs[key]
        info = cluster_info[0]
        counts = log["arm_counts"]
        dens = [c["entities_per_sentence"] for c in info]
        corr = float(np.corrcoef(counts, dens)[0, 1]) if np.std(counts) > 0 else float("nan")
        why[strat] = {"arm_counts": counts, "entities_per_sentence": dens, "sizes": [c["size"] for c in info],
                      "corr_pulls_entity_density": None if math.isnan(corr) else round(corr, 3)}
        run.bars(f"{strat}: pulls per cluster (budget {budgets[-1]}, seed 0)",
                 [f"{c['arm']} ({c['entities_per_sentence']:.2f} ent/sent)" for c in info], counts, "pulls")
        pulls = log["pulls"]
        run.curve(f"{strat}: dev loss of the online head (budget {budgets[-1]}, seed 0)",
                  {"dev loss": ([p["round"] for p in pulls], [p["dev_loss_after"] for p in pulls])}, "round", "loss")
        cum = {}
        for a, n in enumerate(c["arm"] for c in info):
            ys = np.cumsum([p["arm"] == a for p in pulls]).tolist()
            cum[n] = ([p["round"] for p in pulls], ys)
        run.curve(f"{strat}: cumulative pulls by cluster (budget {budgets[-1]}, seed 0)", cum, "round", "pulls")
        rew = {}
        for a, n in enumerate(c["arm"] for c in info):
            pts = [(p["round"], p["reward"]) for p in pulls if p["arm"] == a]
            if pts:
                rew[n] = ([x for x, _ in pts], [y for _, y in pts])
        run.curve(f"{strat}: reward of each pull by cluster (budget {budgets[-1]}, seed 0)", rew, "round",
                  "reward (0-1)", note="0.5 = dev loss unchanged; 1 = the largest drop so far")
    run.table("Clusters (seed 0)", ["cluster", "sentences", "entities / sentence", "share with an entity"],
              [[c["arm"], c["size"], c["entities_per_sentence"], c["share_with_entity"]] for c in cluster_info[0]])
    run.save_json("per_seed.json", {"per_seed": per_seed, "full": full})
    run.save_json("bandit_pulls.json", bandit_logs)
    elapsed = time.time() - t_start
    results = {"metric": "seqeval entity F1 on WNUT-17 test (1287 sentences)",
               "model": "frozen all-MiniLM-L6-v2 first-subword word vectors + MLP head (384-128-13); not fine-tuning",
               "budgets": budgets, "seeds": len(seeds), "train_sentences": n_train,
               "full": {"mean": round(fm, 4), "ci95": [round(flo, 4), round(fhi, 4)],
                        "per_seed": [round(v, 4) for v in full]},
               "strategies": summary, "bandit_arms": why, "clusters_seed0": cluster_info[0],
               "seconds": round(elapsed, 1), "seconds_encoding": round(t_encoded, 1),
               "hardware": "2 shared CPU cores, 1 torch thread"}
    results["vs_random"] = paired_vs_random(results)
    run.result(**results)
    run.finish(title="Data selection on WNUT-17 (frozen-feature tagger)")
    (RESULTS / "selection_wnut17.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    write_markdown(results, RESULTS / "selection_wnut17.md", kept_observations(RESULTS / "selection_wnut17.md"))
    print(f"done in {elapsed:.0f}s -> {args.out}/report.html", file=sys.stderr)


if __name__ == "__main__":
    main()
