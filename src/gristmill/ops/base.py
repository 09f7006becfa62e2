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
* :class:`Filter` writes score columns and drops rows by rules, a reason per dropped row
  (``scores``, ``rules``, ``reasons``).
* :class:`GlobalOp` needs all data first: ``summarize`` each shard, ``fit`` on the
  summaries in shard order, then ``apply`` to each shard.
* :class:`Generator` produces new rows (``generate``); a failed parse becomes a
  rejected row with the raw text and the reason, never an exception.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from gristmill.ops.text.scoring import Rule
from gristmill.records import REASON, Reason, from_rows, set_column, take_mask

if TYPE_CHECKING:  # the audit_section hook's type: the audit imports operators, never the other way
    from gristmill.audit.metric import AuditSection

KINDS = ("mapper", "annotator", "filter", "global", "generator")


class Params(BaseModel):
    """Base of every operator's parameter model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Context:
    """What a run tells an operator about where it runs; the defaults are "outside a run"."""

    base_dir: Path | None = None  # relative paths in parameters resolve against it (the recipe's folder)
    scratch: Path | None = None  # a directory of the step's own (global steps), kept until its cache is pruned
    cache_dir: Path | None = None  # the run directory: caches that outlive a step (LLM responses)
    workers: int | None = None  # processes sharing the machine; None: not known (see models.runtime)


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
    # Where it runs (the recipe's folder, the step's scratch and cache directories, the worker
    # count); the recipe loader and the runner set it with bind(), setup() receives it.
    context: Context = Context()
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
    def bind(self, **changes: Any) -> None:
        """Set fields of :attr:`context` (``base_dir``, ``scratch``, ``cache_dir``, ``workers``)."""
        self.context = replace(self.context, **changes)

    @property
    def base_dir(self) -> Path | None:
        """The folder relative paths in parameters resolve against (the recipe's folder)."""
        return self.context.base_dir

    @property
    def scratch(self) -> Path | None:
        """The step's own directory for state too large for memory; None outside a run."""
        return self.context.scratch

    @property
    def cache_dir(self) -> Path | None:
        """Where caches that outlive the step live (the LLM response cache); None outside a run."""
        return self.context.cache_dir

    def resolve_path(self, path: str | Path) -> Path:
        """``path`` from a parameter, made absolute against the recipe's folder (or the working directory)."""
        p = Path(path)
        return p if p.is_absolute() else (self.base_dir or Path.cwd()) / p

    def input_files(self) -> list[Path]:
        """Files named in the parameters whose content the output depends on; their size and
        modification time join the step's fingerprint, so editing one reruns the step."""
        return []

    def setup(self, ctx: Context) -> None:
        """Load heavy state (models, indexes). Called once per worker before processing, with
        :attr:`context` (e.g. ``ctx.workers`` to size a model's threads)."""

    def ensure_setup(self) -> None:
        """Call :meth:`setup` unless it ran in this process."""
        if not self._is_setup:
            self.setup(self.context)
            self._is_setup = True

    def process(self, batch: pa.Table) -> StepResult:  # pragma: no cover - abstract
        """Each kind's base class owns this loop (and calls :meth:`check_columns` first)."""
        raise NotImplementedError

    def check_columns(self, batch: pa.Table) -> None:
        """Raise ``KeyError`` naming the first column of :meth:`reads` missing from a non-empty batch.

        Recipe validation checks the same before a run; this is the check for batches
        handed to an operator in code. An empty batch may lack columns (nothing reads them)."""
        if batch.num_rows == 0:
            return
        for column in self.reads():
            if column not in batch.column_names:
                raise KeyError(f"{self.name}: column {column!r} not in batch (has {', '.join(batch.column_names)})")

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
    def audit_section(cls) -> AuditSection | None:
        """What it adds to the run's audit: metrics gates can name, a summary, card text
        (:mod:`gristmill.audit.metric`); None: nothing."""
        return None

    @classmethod
    def overrides(cls, hook: str) -> bool:
        """Whether this class (or a base between it and :class:`Operator`) implements ``hook`` itself;
        looked up in the classes' own namespaces, so classmethod hooks answer too."""
        owner = next((k for k in cls.__mro__ if hook in vars(k)), Operator)
        return owner is not Operator

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


def split_by_mask(batch: pa.Table, mask: Sequence[bool], reasons: Sequence[Reason | str | None],
                  extra: dict[str, Sequence[Any]] | None = None) -> StepResult:
    """Split ``batch`` into kept rows and rejected rows carrying ``_reason`` (and ``extra`` columns).

    A :class:`~gristmill.records.Reason` is written as its text; a dropped row without one gets ``dropped``."""
    mask = [bool(m) for m in mask]
    if len(mask) != batch.num_rows or len(reasons) != batch.num_rows:
        raise ValueError(f"mask/reasons length {len(mask)}/{len(reasons)} != {batch.num_rows} rows")
    if all(mask):
        return StepResult(batch, None)
    dropped = [not m for m in mask]
    rejected = take_mask(batch, dropped)
    rejected = set_column(rejected, REASON, pa.array(
        [str(reasons[i] or "dropped") for i, d in enumerate(dropped) if d], pa.string()))
    for col, values in (extra or {}).items():
        rejected = set_column(rejected, col, [values[i] for i, d in enumerate(dropped) if d])
    return StepResult(take_mask(batch, mask), rejected)


class Mapper(Operator):
    """Changes columns row by row; keeps every row."""

    kind = "mapper"

    def map(self, batch: pa.Table) -> pa.Table:  # pragma: no cover - abstract
        raise NotImplementedError

    def process(self, batch: pa.Table) -> StepResult:
        self.check_columns(batch)
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
        self.check_columns(batch)
        for col, values in self.annotate(batch).items():
            batch = set_column(batch, col, values)
        return StepResult(batch)


class GlobalOp(Operator):
    """Needs all data first: ``summarize`` per shard, ``fit`` once, then ``apply`` per shard.

    ``summarize`` runs in workers and must return something small and picklable;
    ``fit`` receives the summaries in shard order and stores its state on ``self`` (it
    is pickled into the run's cache, so a resumed run does not fit again).

    ``self.scratch`` (``context.scratch``) is a directory of the step's own, bound by the runner before
    ``summarize``: state too large for memory (signatures, index files, embeddings)
    goes there, one file per shard written atomically, and ``summarize`` returns its path.
    It stays until the step's cache entry is pruned. ``None`` outside a run.
    """

    kind = "global"

    def summarize(self, batch: pa.Table) -> Any:
        return None

    def fit(self, summaries: list[Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, batch: pa.Table) -> StepResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def process(self, batch: pa.Table) -> StepResult:
        self.check_columns(batch)
        return self.apply(batch)


class Generator(Operator):
    """Produces new rows from input rows (with an LLM or rules).

    ``generate`` returns the new rows and the failures; a failure is a dict with at
    least ``_reason`` (a :class:`~gristmill.records.Reason` or its text; the raw text when
    there was one) and lands in rejected rows.
    """

    kind = "generator"

    def generate(self, batch: pa.Table) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # pragma: no cover
        raise NotImplementedError

    def output_schema(self, batch: pa.Table) -> pa.Schema | None:
        """The schema of the rows made from ``batch`` when it is known in advance (kept even when
        no row is made); None: inferred from the rows."""
        return None

    def process(self, batch: pa.Table) -> StepResult:
        self.check_columns(batch)
        rows, failures = self.generate(batch)
        rejected = None
        if failures:
            for f in failures:
                f[REASON] = str(f.get(REASON) or "generation failed")
            rejected = from_rows(failures)
        return StepResult(from_rows(rows, schema=self.output_schema(batch)), rejected)


# ---- filters -------------------------------------------------------------------------
class FilterParams(Params):
    """Parameters every filter has."""

    drop: bool = Field(True, description="Drop rows that fail a rule; false only writes the score columns.")


class Filter(Operator):
    """Keeps or drops rows, score-then-decide; the one loop every filter runs.

    :meth:`process` writes the columns :meth:`scores` computes on every row (kept or
    dropped), asks :meth:`reasons` for each row's :class:`~gristmill.records.Reason` (by
    default the first of :meth:`rules` the row fails, checked in order), and splits the batch:
    a row with a reason is rejected with it in ``_reason``. With ``drop: false`` it only
    writes the columns, so a later run can try other thresholds on the same scores; the
    rules are recorded in the run's stats, so the report can show each score's
    distribution and what another threshold would keep. An empty batch gets the columns
    of :meth:`empty_columns` and nothing else. Subclasses write :meth:`scores` and
    :meth:`rules`, or :meth:`reasons` when a row's fate is not a threshold on one score.
    """

    kind = "filter"
    Params: ClassVar[type[Params]] = FilterParams

    def scores(self, batch: pa.Table) -> dict[str, Sequence[Any] | pa.Array]:
        """Columns to write on every row, aligned with the batch's rows; none by default."""
        return {}

    def score_columns(self) -> list[str]:
        """The columns :meth:`scores` writes (the report plots these); by default :meth:`writes`."""
        return self.writes()

    def empty_columns(self) -> dict[str, pa.DataType]:
        """The columns an empty batch gets, with their types (float64 score columns by default)."""
        return {c: pa.float64() for c in self.score_columns()}

    def reasons(self, batch: pa.Table) -> list[Reason | None]:
        """Per row of ``batch`` (which already holds the score columns): why it is dropped, or None."""
        rules = self.rules()
        columns = [(r, batch.column(r.column).to_pylist()) for r in rules]
        out: list[Reason | None] = []
        for i in range(batch.num_rows):
            why = None
            for rule, values in columns:
                why = rule.check(values[i])
                if why is not None:
                    break
            out.append(why)
        return out

    def kept_values(self, batch: pa.Table) -> dict[str, pa.Array]:
        """Columns replaced in the rows that are kept only (aligned with the batch's rows); none by default.

        Called after :meth:`scores`; a dropped row keeps its input value (``quality.c4``'s
        ``filter_lines`` rewrites the text of the rows it keeps)."""
        return {}

    def process(self, batch: pa.Table) -> StepResult:
        if batch.num_rows == 0:
            for col, typ in self.empty_columns().items():
                if col not in batch.column_names:
                    batch = set_column(batch, col, pa.array([], typ))
            return StepResult(batch)
        self.check_columns(batch)
        for col, values in self.scores(batch).items():
            batch = set_column(batch, col, values)
        replaced = self.kept_values(batch)
        if not self.params.drop:  # type: ignore[attr-defined]
            result = StepResult(batch)
            mask = None
        else:
            reasons = self.reasons(batch)
            mask = [r is None for r in reasons]
            result = split_by_mask(batch, mask, reasons)
        for col, values in replaced.items():
            result.kept = set_column(result.kept, col, values if mask is None else values.filter(pa.array(mask)))
        return result
