"""``image.label_issues``: flag images whose label is likely wrong, by confident learning on cross-validated probabilities."""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import xxhash
from pydantic import Field

from gristmill.images.confident import cross_val_probabilities, find_issues
from gristmill.images.decode import DEFAULT_MAX_PIXELS, IMAGE, LABEL, ImageProblem, decode, normalise_mode
from gristmill.ops.base import GlobalOp, Params, StepResult, split_by_mask
from gristmill.records import ID, Reason, column_list, set_column

__all__ = ["ImageLabelIssues"]

NS = "label_issues."
FLAG, SCORE, PREDICTED, CONFIDENCE = NS + "flag", NS + "score", NS + "predicted", NS + "confidence"
EXAMPLES = 40  # flagged rows listed in the run summary (the report shows them)


def _class_key(label: str) -> tuple[int, Any]:
    """Sort numeric labels by value, then the others by text."""
    return (0, int(label)) if label.lstrip("-").isdigit() else (1, label)


class ImageLabelIssues(GlobalOp):
    """Flag (or drop) rows whose label is likely wrong: confident learning on out-of-fold classifier probabilities.

    ``summarize`` turns every image into features: the gray picture resized to ``size`` x ``size``
    (bilinear), levels / 255. ``fit`` trains a softmax regression on ``folds`` - 1 stratified folds and
    predicts the remaining one, for each fold, so every row gets class probabilities from a model that
    never saw it (:mod:`gristmill.images.confident`), then applies the confident-joint rule of Northcutt
    et al. (2021): per-class thresholds (the mean probability of a class over the rows labelled with
    it), the confident joint of given and confident labels, and, with ``method: prune_by_noise_rate``
    (cleanlab's default), the rows with the largest margin for each off-diagonal count; a row whose most
    probable class is its own label is never flagged.

    Every row gets ``label_issues.score`` (p(given label), out of fold: low is suspicious),
    ``label_issues.predicted`` (the most probable class), ``label_issues.confidence`` (its probability)
    and ``label_issues.flag``. With ``drop: true`` flagged rows are dropped as
    ``label_issue: given 3, predicted 8 (p(given) 0.02, p(8) 0.91)``; by default they are only flagged
    (relabelling is a person's call). Rows without a label or a decodable image get nulls and are kept.
    The run summary holds the cross-validated accuracy, the thresholds, the confident joint and the
    flagged rows with the lowest scores, which the report shows as pictures. The classifier sees pixels
    only, so it suits small, centred pictures (digits, MNIST); on photographs its probabilities say little.
    """

    name = "image.label_issues"
    version = "1"
    example_params: ClassVar[dict[str, Any]] = {"column": "text", "label_column": "text"}

    class Params(Params):
        column: str = Field(IMAGE, description="Binary column holding the encoded image bytes.")
        label_column: str = Field(LABEL, description="Column holding each row's given label.")
        folds: int = Field(5, ge=2, le=50, description="Cross-validation folds (stratified by label).")
        size: int = Field(16, ge=2, le=64, description="Images are resized to size x size gray pixels as features.")
        method: Literal["prune_by_noise_rate", "confident_learning"] = Field(
            "prune_by_noise_rate", description="Which rows of the confident joint's off-diagonal are flagged.")
        l2: float = Field(1e-3, ge=0, description="L2 penalty of the softmax regression.")
        iterations: int = Field(300, ge=10, le=10_000, description="Gradient steps per fold.")
        seed: int = Field(0, description="Seed of the fold assignment.")
        drop: bool = Field(False, description="Drop flagged rows (default: only write the columns).")
        max_pixels: int | None = Field(DEFAULT_MAX_PIXELS, ge=1, description="Images above this many pixels are not "
                                       "scored (never decoded).")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.found: dict[Any, tuple[float, str, float, bool]] | None = None  # id -> score, predicted, conf, flag
        self.summary: dict[str, Any] = {}

    def reads(self) -> list[str]:
        return list(dict.fromkeys([ID, self.params.column, self.params.label_column]))

    def writes(self) -> list[str]:
        return [SCORE, PREDICTED, CONFIDENCE, FLAG]

    def features(self, value: Any) -> np.ndarray | None:
        """The feature vector of one image, or None when it does not decode."""
        try:
            im, _ = decode(value, self.params.max_pixels)
        except ImageProblem:
            return None
        from PIL import Image

        s = self.params.size
        small = normalise_mode(im, "L").resize((s, s), Image.Resampling.BILINEAR)
        return np.asarray(small, dtype=np.float32).reshape(-1) / 255.0

    def summarize(self, batch: pa.Table) -> dict[str, Any]:
        """Ids, labels and features of the rows that have both; features go to the scratch directory in a run."""
        p = self.params
        ids, labels, rows = [], [], []
        for rid, value, label in zip(column_list(batch, ID), column_list(batch, p.column),
                                     column_list(batch, p.label_column)):
            if label is None:
                continue
            f = self.features(value)
            if f is None:
                continue
            ids.append(rid)
            labels.append(str(label))
            rows.append(f)
        x = np.stack(rows) if rows else np.zeros((0, p.size * p.size), np.float32)
        out: dict[str, Any] = {"ids": ids, "labels": labels}
        if self.scratch is not None and len(ids):
            key = xxhash.xxh3_64_hexdigest("\n".join(map(str, ids)).encode("utf-8", "surrogatepass"))
            path = self.scratch / f"features-{key}-{len(ids)}.npy"
            np.save(path, x)
            out["path"] = str(path)
        else:
            out["x"] = x
        return out

    def fit(self, summaries: list[Any]) -> None:
        t0 = time.perf_counter()
        p = self.params
        parts = [s for s in summaries if s is not None and s["ids"]]
        ids = [rid for s in parts for rid in s["ids"]]
        labels = [lab for s in parts for lab in s["labels"]]
        self.found = {}
        if not ids:
            self.summary = {"rows": 0}
            return
        x = np.concatenate([np.load(s["path"]) if "path" in s else s["x"] for s in parts]).astype(np.float64)
        classes = sorted(set(labels), key=_class_key)
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index[lab] for lab in labels], np.int64)
        probs = cross_val_probabilities(x, y, len(classes), p.folds, p.seed, p.l2, p.iterations)
        issues = find_issues(probs, y, p.method)
        conf = probs.max(axis=1)
        for i, rid in enumerate(ids):
            self.found[rid] = (float(issues.self_confidence[i]), classes[int(issues.predicted[i])], float(conf[i]),
                               bool(issues.flagged[i]))
        worst = [i for i in np.argsort(issues.self_confidence, kind="stable") if issues.flagged[i]][:EXAMPLES]
        self.summary = {
            "rows": len(ids), "classes": classes, "flagged": int(issues.flagged.sum()), "method": p.method,
            "cv_accuracy": float((issues.predicted == y).mean()), "folds": p.folds, "features": f"{p.size}x{p.size} gray",
            "thresholds": {c: round(float(t), 4) for c, t in zip(classes, issues.thresholds)},
            "confident_joint": issues.joint.tolist(),
            "worst": [{"id": ids[i], "given": labels[i], "predicted": classes[int(issues.predicted[i])],
                       "score": round(float(issues.self_confidence[i]), 4), "confidence": round(float(conf[i]), 4)}
                      for i in worst],
            "fit_seconds": round(time.perf_counter() - t0, 3)}

    def run_summary(self) -> dict[str, Any] | None:
        """Accuracy, thresholds, the confident joint and the most suspicious flagged rows."""
        return self.summary if self.found is not None else None

    def apply(self, batch: pa.Table) -> StepResult:
        if self.found is None:
            raise RuntimeError(f"{self.name}: fit() must run before apply()")
        ids = column_list(batch, ID)
        found = [self.found.get(rid) for rid in ids]
        batch = set_column(batch, SCORE, pa.array([None if f is None else f[0] for f in found], pa.float64()))
        batch = set_column(batch, PREDICTED, pa.array([None if f is None else f[1] for f in found], pa.string()))
        batch = set_column(batch, CONFIDENCE, pa.array([None if f is None else f[2] for f in found], pa.float64()))
        batch = set_column(batch, FLAG, pa.array([None if f is None else f[3] for f in found], pa.bool_()))
        labels = column_list(batch, self.params.label_column)
        reasons: list[Reason | None] = [
            Reason("label_issue", f"given {lab}, predicted {f[1]} (p(given) {f[0]:.3f}, p({f[1]}) {f[2]:.3f})")
            if self.params.drop and f is not None and f[3] else None for f, lab in zip(found, labels)]
        return split_by_mask(batch, [r is None for r in reasons], reasons)
