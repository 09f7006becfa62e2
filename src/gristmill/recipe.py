"""Recipes: YAML → a fully validated :class:`Recipe`, or a :class:`RecipeError` listing every problem.

Validation happens completely before any work: the YAML syntax, the top-level keys, every
step's operator name (unknown names get the closest known ones), every step's parameters
against the operator's own pydantic model, the input path and format, and the columns
each step reads (a step may only read columns the input or an earlier step provides).
Each error names its location, e.g. ``steps[2].params.min_words: must be >= 0``.
"""

from __future__ import annotations

import copy
import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gristmill import extras, registry
from gristmill.audit.gates import validate_gates
from gristmill.io.hub import CardMetadata
from gristmill.ops.base import Operator

DEFAULT_SHARD_ROWS = 2000
# A recipe is a few hundred YAML nodes; a document that expands (through aliases) past this is
# refused before it is built, so nested anchors cannot grow into gigabytes ("billion laughs").
MAX_YAML_NODES = 200_000
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a run directory (one path component of letters, digits, ``._-``,
    not starting with a dot), or None when it can."""
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name) or len(name) > 200:
        return (f"{name!r} is not a valid name: use letters, digits, '.', '_' and '-', starting with a letter "
                "or digit (it names a directory under the runs directory)")
    return None


class RecipeError(Exception):
    """A recipe that cannot run; ``errors`` holds one located message per problem."""

    def __init__(self, errors: list[str], source: str = "recipe") -> None:
        self.errors = errors
        self.source = source
        super().__init__(f"{source}: {len(errors)} error(s)\n" + "\n".join(f"  {e}" for e in errors))


class StepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: str
    params: dict[str, Any] = Field(default_factory=dict)


class ExecutorSpec(BaseModel):
    """Which registered executor (:data:`gristmill.executors.base.EXECUTORS`) runs the shards, on how many workers."""

    model_config = ConfigDict(extra="forbid")
    type: str = "local"
    workers: int = Field(2, ge=1, le=256)

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        from gristmill.executors.base import EXECUTORS

        if value not in EXECUTORS:
            close = difflib.get_close_matches(value, list(EXECUTORS), n=1)
            raise ValueError(f"unknown executor {value!r}" + (f"; did you mean {close[0]}?" if close else "")
                             + f" (known: {', '.join(sorted(EXECUTORS))})")
        return value


class CardSpec(CardMetadata):
    """What a run cannot know about its data, for ``DATASET_CARD.md``: its intended use and limitations,
    and the card's YAML metadata where the inferred value is not the right one (language, license,
    task_categories, tags, ...: :class:`gristmill.io.hub.CardMetadata`)."""

    model_config = ConfigDict(extra="forbid")
    intended_use: str | None = None
    out_of_scope_use: str | None = None
    limitations: list[str] = Field(default_factory=list)


class RecipeSpec(BaseModel):
    """Top-level shape of a recipe; ``input`` and ``output`` options are checked by io, ``gates`` by
    :mod:`gristmill.audit.gates`."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    description: str | None = None
    input: dict[str, Any]
    steps: list[StepSpec] = Field(default_factory=list)
    output: dict[str, Any] = Field(default_factory=lambda: {"format": "jsonl"})
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    strict: bool = False
    gates: list[Any] = Field(default_factory=list)
    card: CardSpec = Field(default_factory=CardSpec)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and (problem := name_problem(value)):
            raise ValueError(problem)
        return value


class Step:
    """One validated step: its index, operator instance and a stable label for files."""

    def __init__(self, index: int, op: Operator) -> None:
        self.index = index
        self.op = op

    @property
    def label(self) -> str:
        return f"{self.index:02d}-{self.op.name}"


class Recipe:
    """A validated recipe, ready for an executor."""

    def __init__(self, spec: RecipeSpec, steps: list[Step], input_paths: list[Path],
                 input_options: Any, shard_rows: int, output: dict[str, Any], base_dir: Path,
                 source: str) -> None:
        self.spec = spec
        self.steps = steps
        self.input_paths = input_paths
        self.input_options = input_options
        self.shard_rows = shard_rows
        self.output = output
        self.base_dir = base_dir
        self.source = source

    @property
    def name(self) -> str:
        return self.spec.name or Path(self.source).stem

    def resolved(self) -> dict[str, Any]:
        """The recipe with defaults filled in and paths made absolute, as saved in a run."""
        inp = {"path": [str(p) for p in self.input_paths], "shard_rows": self.shard_rows}
        inp.update(self.input_options.model_dump(mode="json"))
        return {
            "name": self.name,
            "description": self.spec.description,
            "input": inp,
            "steps": [{"op": s.op.name, "version": s.op.version,
                       "params": s.op.params.model_dump(mode="json")} for s in self.steps],
            "output": self.output,
            "executor": self.spec.executor.model_dump(mode="json"),
            "strict": self.spec.strict,
            "gates": [str(g) for g in self.spec.gates],
            "card": {k: v for k, v in self.spec.card.model_dump(mode="json").items()
                     if v is not None or k not in CardMetadata.model_fields},  # YAML metadata: only what is set
        }


# ---- error formatting -----------------------------------------------------------

def _loc(parts: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def pydantic_messages(err: ValidationError, prefix: str, known: list[str] | None = None) -> list[str]:
    """Turn a pydantic error into ``location: message`` lines with short, plain messages."""
    lines = []
    for e in err.errors():
        loc = _loc([prefix, *e["loc"]]) if prefix else _loc(e["loc"])
        ctx = e.get("ctx") or {}
        kind = e["type"]
        if kind == "greater_than_equal":
            msg = f"must be >= {ctx['ge']}"
        elif kind == "greater_than":
            msg = f"must be > {ctx['gt']}"
        elif kind == "less_than_equal":
            msg = f"must be <= {ctx['le']}"
        elif kind == "less_than":
            msg = f"must be < {ctx['lt']}"
        elif kind == "extra_forbidden":
            name = str(e["loc"][-1]) if e["loc"] else ""
            close = difflib.get_close_matches(name, known or [], n=3, cutoff=0.5)
            msg = "unknown key" + (f"; did you mean {', '.join(close)}?" if close else
                                   (f"; known keys: {', '.join(known)}" if known else ""))
        elif kind == "missing":
            msg = "required"
        else:
            msg = e["msg"].removeprefix("Value error, ")
            if "input" in e and kind not in ("value_error", "assertion_error"):
                msg += f" (got {e['input']!r})"[:200]
        lines.append(f"{loc}: {msg}")
    return lines


# ---- overrides ------------------------------------------------------------------

def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.2.c=value`` to ``data`` in place; the value is parsed as YAML."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise RecipeError([f"--set {assignment!r}: expected KEY=VALUE, e.g. steps.2.params.min_words=10"])
    try:
        value = safe_load_bounded(raw) if raw.strip() else ""
    except (yaml.YAMLError, YamlTooLarge) as exc:
        raise RecipeError([f"--set {key.strip()}: the value is not valid YAML: {exc}"]) from None
    parts = key.strip().split(".")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise RecipeError([f"--set {key}: {where} is not an index of a list of {len(node)}"])
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise RecipeError([f"--set {key}: {'.'.join(parts[:i])} is a value, not a mapping or list"])


# ---- loading --------------------------------------------------------------------

class YamlTooLarge(ValueError):
    """A YAML document whose aliases expand past :data:`MAX_YAML_NODES`, or refer to themselves."""


def _expanded_nodes(root: yaml.Node, limit: int) -> int:
    """Nodes in the document once every alias is expanded; raises :class:`YamlTooLarge` past ``limit``.

    Sizes are memoised per node, so the count costs one walk of the document as written
    however far its aliases would expand.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            mark = node.start_mark
            raise YamlTooLarge(f"line {mark.line + 1}, column {mark.column + 1}: an alias refers to the "
                               "node that contains it (a recursive structure)")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        active.discard(key)
        if total > limit:
            mark = node.start_mark
            raise YamlTooLarge(f"line {mark.line + 1}, column {mark.column + 1}: expands to more than {limit:,} "
                               "YAML nodes through its aliases (nested anchors); write the values out or use "
                               "fewer levels of aliases")
        sizes[key] = total
        return total

    return size(root)


def safe_load_bounded(text: str, limit: int = MAX_YAML_NODES) -> Any:
    """``yaml.safe_load`` that refuses documents expanding past ``limit`` nodes before building them."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_nodes(node, limit)
        return loader.construct_document(node)
    except RecursionError:
        raise YamlTooLarge("nested more deeply than a recipe can be (hundreds of levels)") from None
    finally:
        loader.dispose()


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise RecipeError([f"cannot read recipe: {exc.strerror or exc}"], str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RecipeError([f"line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                           "save the recipe as UTF-8"], str(path)) from None
    try:
        data = safe_load_bounded(text)
    except YamlTooLarge as exc:
        raise RecipeError([f"{exc}"], str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise RecipeError([f"{where}invalid YAML: {getattr(exc, 'problem', exc)}"], str(path)) from None
    if not isinstance(data, dict):
        raise RecipeError(["a recipe is a YAML mapping with input, steps and output"], str(path))
    return data


def load_recipe(source: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = (),
                base_dir: Path | None = None) -> Recipe:
    """Load and validate a recipe from a YAML path or a dict; raise :class:`RecipeError`."""
    if isinstance(source, dict):
        data, name = copy.deepcopy(source), "recipe"
        base = base_dir or Path.cwd()
    else:
        data, name = load_yaml(source), str(source)
        base = base_dir or Path(source).resolve().parent
    for assignment in overrides:
        apply_override(data, assignment)
    return validate(data, base, name)


def _top_level(data: dict[str, Any]) -> tuple[RecipeSpec | None, list[str]]:
    """The top-level spec and its errors. A section with errors is replaced by its default (or
    left out) and the rest is validated again, so an error in one section (``executor.workers``)
    does not hide the errors of the others; ``None`` when ``input`` itself is unusable."""
    errors: list[str] = []
    data = dict(data)
    for _ in range(len(RecipeSpec.model_fields) + 1):
        try:
            return RecipeSpec(**data), errors
        except ValidationError as exc:
            errors += pydantic_messages(exc, "", [*RecipeSpec.model_fields, *CardSpec.model_fields])
            bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
            if not bad or "input" in bad:
                break
            for key in bad:
                data.pop(key, None)
    return None, errors


def validate(data: dict[str, Any], base: Path, name: str = "recipe") -> Recipe:
    """Validate a recipe dict completely; collect every error before raising."""
    from gristmill.io import InputError, ReaderOptions, WriterOptions, open_reader
    from gristmill.io.documents import MissingModules
    from gristmill.io.writers import FORMAT_REQUIRES

    errors: list[str] = []
    spec, errors = _top_level(data)
    if spec is None:
        raise RecipeError(errors, name)

    # steps: operator names and parameters
    steps: list[Step] = []
    for i, s in enumerate(spec.steps):
        try:
            cls = registry.get(s.op)
        except registry.UnknownOperator as exc:
            errors.append(f"steps[{i}].op: {exc}")
            continue
        try:
            op = cls(**s.params)
            op.bind(base_dir=base)
            steps.append(Step(i, op))
        except ValidationError as exc:
            errors += pydantic_messages(exc, f"steps[{i}].params", list(cls.Params.model_fields))
            continue
        missing = extras.problem(s.op, op.required_modules())  # an extra not installed: the pip line
        if missing:
            errors.append(f"steps[{i}].op: {missing}")

    # input
    inp = dict(spec.input)
    raw_paths = inp.pop("path", None)
    shard_rows = inp.pop("shard_rows", DEFAULT_SHARD_ROWS)
    if not isinstance(shard_rows, int) or shard_rows < 1:
        errors.append("input.shard_rows: must be an integer >= 1")
        shard_rows = DEFAULT_SHARD_ROWS
    if raw_paths is None:
        errors.append("input.path: required")
        raw_paths = []
    paths = [raw_paths] if isinstance(raw_paths, str) else list(raw_paths)
    input_paths = [(base / p).resolve() if not Path(p).is_absolute() else Path(p) for p in paths]
    options = None
    try:
        options = ReaderOptions(**inp)
    except ValidationError as exc:
        errors += pydantic_messages(exc, "input", ["path", "shard_rows", *ReaderOptions.model_fields])

    columns: set[str] = set()
    if options is not None:
        for i, p in enumerate(input_paths):
            where = "input.path" if isinstance(raw_paths, str) else f"input.path[{i}]"
            try:
                columns |= set(open_reader(p, options).columns())
            except MissingModules as exc:  # a web or document format without its library: the pip line
                errors.append(f"input.format: {extras.message(f'input format {exc.format!r}', exc.modules)}")
            except InputError as exc:
                errors.append(f"{where}: {exc}")

    # columns each step reads must exist by then
    if options is not None and not any(e.startswith(("input.path", "input.format")) for e in errors):
        available = set(columns)
        for step in steps:
            missing = [c for c in step.op.reads() if c not in available]
            if missing:
                errors.append(
                    f"steps[{step.index}] ({step.op.name}): reads column(s) {', '.join(map(repr, missing))} "
                    f"that neither the input nor an earlier step provides (available: {', '.join(sorted(available))})")
            available |= set(step.op.writes())

    # gates: each parses, names a known metric the recipe's steps can produce, and fits its value
    errors += validate_gates(spec.gates, [s.op for s in spec.steps], registry.names())[1]

    # output
    out = dict(spec.output)
    out.setdefault("format", "jsonl")
    split_column = out.pop("split_column", "split")
    out_path = out.pop("path", None)
    try:
        WriterOptions(**out)
    except ValidationError as exc:
        errors += pydantic_messages(exc, "output", ["path", "split_column", *WriterOptions.model_fields])
    else:
        missing = extras.problem(f"output format {out['format']!r}", FORMAT_REQUIRES.get(out["format"], ()))
        if missing:
            errors.append(f"output.format: {missing}")
    output = {**out, "split_column": split_column,
              "path": str((base / out_path).resolve()) if out_path else None}

    if errors:
        raise RecipeError(errors, name)
    return Recipe(spec, steps, input_paths, options, shard_rows, output, base, name)
