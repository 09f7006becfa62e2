"""The one operator interface, and one thin base class per kind.

An operator is built from validated parameters (``__init__`` only stores them), loads
heavy state in ``setup()`` once per worker, and turns a batch (``pyarrow.Table``) into a
:class:`StepResult`: the rows it keeps and the rows it drops, each dropped row with a
reason in the ``_reason`` column. Executors only ever call :meth:`Operator.process`
(and, for global operators, :meth:`GlobalOp.summarize` / :meth:`GlobalOp.fit` first), so
the same operator code runs under any executor.

Kinds:

* :class:`Mapper` changes columns (``map``).
* :class:`Annotator` adds score columns and never drops (``annotate``).
* :class:`Filter` returns a keep mask and a reason per dropped row (``keep``).
* :class:`GlobalOp` needs all data first: ``summarize`` each shard, ``fit`` on the
  summaries in shard order, then ``apply`` to each shard.
* :class:`Generator` produces new rows (``generate``); a failed parse becomes a
  rejected row with the raw text and the reason, never an exception.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from gristmill.ops.text.scoring import Rule
from gristmill.records import REASON, from_rows, set_column, take_mask

KINDS = ("mapper", "annotator", "filter", "global", "generator")


class Params(BaseModel):
    """Base of every operator's parameter model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class StepResult:
    """What one operator made of one batch: kept rows and rejected rows (with ``_reason``)."""

    kept: pa.Table
    rejected: pa.Table | None = None


class Operator:
    """Base of all operators. Subclasses set ``name``, ``kind``, ``version`` and ``Params``."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    Params: ClassVar[type[Params]] = Params
    # For the conformance suite (tests/test_conformance.py): a valid configuration to test
    # with when the defaults are not valid or skip the interesting path, and whether
    # processing twice must equal processing once.
    example_params: ClassVar[dict[str, Any]] = {}
    # The folder relative paths in parameters resolve against (the recipe's folder); set by the recipe loader.
    base_dir: Path | None = None
    idempotent: ClassVar[bool] = False
    # Modules it needs beyond the base install (``("torch", "transformers")``); gristmill.extras maps
    # them to the extra that installs them, and recipe validation refuses the step when one is missing.
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any) -> None:
        self.params = self.Params(**params)
        self._is_setup = False

    # ---- description -------------------------------------------------------------
    @classmethod
    def summary(cls) -> str:
        """The first line of the class docstring."""
        doc = inspect.getdoc(cls) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def reads(self) -> list[str]:
        """Columns this operator needs in its input."""
        return []

    def writes(self) -> list[str]:
        """Columns this operator adds or replaces."""
        return []

    # ---- lifecycle ---------------------------------------------------------------
    def resolve_path(self, path: str | Path) -> Path:
        """``path`` from a parameter, made absolute against the recipe's folder (or the working directory)."""
        p = Path(path)
        return p if p.is_absolute() else (self.base_dir or Path.cwd()) / p

    def input_files(self) -> list[Path]:
        """Files named in the parameters whose content the output depends on; their size and
        modification time join the step's fingerprint, so editing one reruns the step."""
        return []

    def setup(self) -> None:
        """Load heavy state (models, indexes). Called once per worker before processing."""

    def ensure_setup(self) -> None:
        if not self._is_setup:
            self.setup()
            self._is_setup = True

    def process(self, batch: pa.Table) -> StepResult:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- hooks: what the runner, the report and the CLI ask of every operator ------------
    # Declared here with their defaults ("nothing to say"); an operator overrides the ones it has.
    def score_columns(self) -> list[str]:
        """Score columns this operator writes (the report plots their distributions)."""
        return []

    def rules(self) -> list[Rule]:
        """The thresholds it drops rows by, in the order they are checked."""
        return []

    def run_summary(self) -> dict[str, Any] | None:
        """A JSON-ready summary of the whole run computed by ``fit`` (``summaries/<step>.json``); None: none."""
        return None

    def take_usage(self) -> dict[str, float] | None:
        """Usage since the last call (LLM requests, tokens, seconds) for the shard's stats; None: none."""
        return None

    def describe_extra(self) -> str | None:
        """More for ``gristmill ops show`` (e.g. a table derived from the defaults); None: nothing."""
        return None

    def required_modules(self) -> list[str]:
        """Modules these parameters need beyond the base install (default: :attr:`requires`); an
        operator whose needs depend on its parameters (its LLM backend) overrides this."""
        return list(self.requires)

    @classmethod
    def overrides(cls, hook: str) -> bool:
        """Whether this class implements ``hook`` (one of the hooks above) itself."""
        return getattr(cls, hook) is not getattr(Operator, hook)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(self._drop_on_pickle())
        state["_is_setup"] = False
        return state

    def _drop_on_pickle(self) -> dict[str, Any]:
        """Attributes to reset when the operator is sent to a worker (heavy state)."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


def split_by_mask(batch: pa.Table, mask: Sequence[bool], reasons: Sequence[str | None],
                  extra: dict[str, Sequence[Any]] | None = None) -> StepResult:
    """Split ``batch`` into kept rows and rejected rows carrying ``_reason`` (and ``extra`` columns)."""
    mask = [bool(m) for m in mask]
    if len(mask) != batch.num_rows or len(reasons) != batch.num_rows:
        raise ValueError(f"mask/reasons length {len(mask)}/{len(reasons)} != {batch.num_rows} rows")
    if all(mask):
        return StepResult(batch, None)
    dropped = [not m for m in mask]
    rejected = take_mask(batch, dropped)
    rejected = set_column(rejected, REASON, pa.array(
        [reasons[i] or "dropped" for i, d in enumerate(dropped) if d], pa.string()))
    for col, values in (extra or {}).items():
        rejected = set_column(rejected, col, [values[i] for i, d in enumerate(dropped) if d])
    return StepResult(take_mask(batch, mask), rejected)


class Mapper(Operator):
    """Changes columns row by row; keeps every row."""

    kind = "mapper"

    def map(self, batch: pa.Table) -> pa.Table:  # pragma: no cover - abstract
        raise NotImplementedError

    def process(self, batch: pa.Table) -> StepResult:
        out = self.map(batch)
        if out.num_rows != batch.num_rows:
            raise RuntimeError(f"{self.name}: a mapper returned {out.num_rows} rows for {batch.num_rows}")
        return StepResult(out)


class Annotator(Operator):
    """Adds columns (scores, spans, labels); never drops a row."""

    kind = "annotator"

    def annotate(self, batch: pa.Table) -> dict[str, Sequence[Any] | pa.Array]:  # pragma: no cover
        raise NotImplementedError

    def process(self, batch: pa.Table) -> StepResult:
        for col, values in self.annotate(batch).items():
            batch = set_column(batch, col, values)
        return StepResult(batch)


class Filter(Operator):
    """Keeps or drops rows; every dropped row gets a reason naming the rule and value."""

    kind = "filter"

    def keep(self, batch: pa.Table) -> tuple[Sequence[bool], Sequence[str | None]]:  # pragma: no cover
        raise NotImplementedError

    def process(self, batch: pa.Table) -> StepResult:
        if batch.num_rows == 0:
            return StepResult(batch)
        mask, reasons = self.keep(batch)
        return split_by_mask(batch, mask, reasons)


class GlobalOp(Operator):
    """Needs all data first: ``summarize`` per shard, ``fit`` once, then ``apply`` per shard.

    ``summarize`` runs in workers and must return something small and picklable;
    ``fit`` receives the summaries in shard order and stores its state on ``self`` (it
    is pickled into the run's cache, so a resumed run does not fit again).

    ``scratch`` is a directory of the step's own, set by the executor before
    ``summarize``: state too large for memory (signatures, index files, embeddings)
    goes there, one file per shard written atomically, and ``summarize`` returns its path.
    It stays until the step's cache entry is pruned. ``None`` outside a run.
    """

    kind = "global"
    scratch: Path | None = None

    def summarize(self, batch: pa.Table) -> Any:
        return None

    def fit(self, summaries: list[Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, batch: pa.Table) -> StepResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def process(self, batch: pa.Table) -> StepResult:
        return self.apply(batch)


class Generator(Operator):
    """Produces new rows from input rows (with an LLM or rules).

    ``generate`` returns the new rows and the failures; a failure is a dict with at
    least ``_reason`` (and the raw text when there was one) and lands in rejected rows.
    """

    kind = "generator"

    def generate(self, batch: pa.Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # pragma: no cover
        raise NotImplementedError

    def process(self, batch: pa.Table) -> StepResult:
        rows, failures = self.generate(batch)
        rejected = None
        if failures:
            for f in failures:
                f.setdefault(REASON, "generation failed")
            rejected = from_rows(failures)
        return StepResult(from_rows(rows), rejected)


# ---- score filters ----------------------------------------------------------------
# Score-then-decide: operators that write score columns once and drop by thresholds. A
# ScoreFilter computes its scores as namespaced columns (``quality.gopher.words``) on every
# row, kept or dropped, then applies Rule thresholds (gristmill.ops.text.scoring). The first
# rule a row fails gives its reason, ``<rule>: <value> < <bound>``. With ``drop: false`` the
# operator only annotates, so a later run can try other thresholds on the same scores. The
# rules are recorded in the run's stats, so the report can show each score's distribution
# and what a different threshold would keep.
class ScoreParams(Params):
    """Parameters every score filter has."""

    drop: bool = Field(True, description="Drop rows that fail a rule; false only writes the score columns.")


class ScoreFilter(Operator):
    """Writes score columns, then drops rows failing a rule (a filter with its scores kept)."""

    kind = "filter"
    Params = ScoreParams

    def scores(self, batch: pa.Table) -> dict[str, Sequence[Any] | pa.Array]:  # pragma: no cover - abstract
        """One sequence per score column, aligned with the batch's rows."""
        raise NotImplementedError

    def rules(self) -> list[Rule]:  # pragma: no cover - abstract
        """The thresholds, in the order they are checked."""
        raise NotImplementedError

    def score_columns(self) -> list[str]:
        """The columns :meth:`scores` writes (the report plots these)."""
        return self.writes()

    def process(self, batch: pa.Table) -> StepResult:
        if batch.num_rows == 0:
            for col in self.score_columns():
                if col not in batch.column_names:
                    batch = set_column(batch, col, pa.array([], pa.float64()))
            return StepResult(batch)
        for col, values in self.scores(batch).items():
            batch = set_column(batch, col, values)
        if not self.params.drop:
            return StepResult(batch)
        rules = self.rules()
        columns = {r.column: batch.column(r.column).to_pylist() for r in rules}
        reasons: list[str | None] = []
        for i in range(batch.num_rows):
            reason = None
            for r in rules:
                reason = r.check(columns[r.column][i])
                if reason:
                    break
            reasons.append(reason)
        return split_by_mask(batch, [r is None for r in reasons], reasons)
