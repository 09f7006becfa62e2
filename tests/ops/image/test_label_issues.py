"""image.label_issues: confident learning flags planted label errors among the scikit-learn digits."""

from __future__ import annotations

import numpy as np
import pytest

from gristmill import registry
from gristmill.images.confident import cross_val_probabilities, find_issues, stratified_folds

from .pictures import encode, table_of


@pytest.fixture(scope="module")
def digits() -> tuple[list[bytes], np.ndarray]:
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    pictures = np.rint(data.images[:600] * 255 / 16).astype(np.uint8)
    return [encode(Image.fromarray(p, "L")) for p in pictures], data.target[:600].copy()


def test_planted_label_errors_are_flagged(digits: tuple[list[bytes], np.ndarray]) -> None:
    images, labels = digits
    rng = np.random.default_rng(0)
    planted = rng.choice(len(labels), 15, replace=False)
    noisy = labels.copy()
    noisy[planted] = (labels[planted] + 1 + rng.integers(0, 9, 15)) % 10
    table = table_of(images, [str(v) for v in noisy])
    half = table.num_rows // 2
    op = registry.create("image.label_issues", {"size": 8})
    op.ensure_setup()
    op.fit([op.summarize(table.slice(0, half)), op.summarize(table.slice(half))])
    out = op.process(table).kept.to_pylist()
    flagged = {i for i, r in enumerate(out) if r["label_issues.flag"]}
    found = flagged & set(planted.tolist())
    assert len(found) >= 12, (sorted(flagged), sorted(planted.tolist()))  # recall >= 0.8
    assert len(flagged - set(planted.tolist())) <= 8  # few clean rows flagged
    row = out[int(planted[0])]
    assert row["label_issues.score"] < 0.5 and row["label_issues.predicted"] != row["label"] or \
        int(planted[0]) not in flagged
    summary = op.run_summary()
    assert summary["cv_accuracy"] > 0.9 and summary["classes"] == [str(i) for i in range(10)]
    assert summary["worst"][0]["score"] <= summary["worst"][-1]["score"]
    dropping = registry.create("image.label_issues", {"size": 8, "drop": True})
    dropping.fit([dropping.summarize(table)])
    result = dropping.process(table)
    assert result.rejected.num_rows == len(flagged)
    assert result.rejected.column("_reason")[0].as_py().startswith("label_issue: given ")


def test_confident_joint_on_known_probabilities() -> None:
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.1, 0.9], [0.2, 0.8], [0.95, 0.05]])
    y = np.array([0, 0, 0, 1, 1, 1])  # the last row says 1 but looks like 0
    issues = find_issues(probs, y, "confident_learning")
    assert issues.flagged.tolist() == [False] * 5 + [True]
    assert issues.joint.tolist() == [[2, 0], [1, 2]]  # row 2 (0.7 < t0 = 0.8) is not counted
    assert find_issues(probs, y).flagged.tolist() == [False] * 5 + [True]
    assert issues.self_confidence[-1] == pytest.approx(0.05)


def test_folds_are_stratified_and_probabilities_out_of_fold() -> None:
    y = np.array([0] * 10 + [1] * 5)
    folds = stratified_folds(y, 5, 0)
    assert all(sorted(np.bincount(folds[y == c], minlength=5)) == [1, 1, 1, 1, 1] or c == 0 for c in (0, 1))
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 1, (10, 3)), rng.normal(4, 1, (5, 3))])
    probs = cross_val_probabilities(x, y, 2, folds=5)
    assert probs.shape == (15, 2) and np.allclose(probs.sum(axis=1), 1) and (probs.argmax(axis=1) == y).mean() > 0.9
