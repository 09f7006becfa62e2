"""Trainer settings, each declared once, gathered into one config object per training run.

A :class:`Setting` declares one setting: its help text, its bounds or choices and, where the
command-line name is not ``--<field-name>``, its option names. A config class makes each of its
fields with a setting (``batch_size: int = BATCH_SIZE(8)``: the declaration with this trainer's
default), and checks every value against the declarations when it is made (:class:`ConfigError`,
a ``ValueError`` that names the field). The command line builds one option per field from the
same declarations (:func:`gristmill.commands.common.config_command`), so a setting that several
trainers share has one name, type, check and meaning everywhere.

- :class:`TrainConfig`: what every trainer shares: batch size, gradient accumulation, learning
  rate and its schedule (warmup, decay, floor), weight decay, gradient clipping, precision,
  checkpoint cadence, seed and torch threads.
- :class:`SFTConfig` (``train sft``): the model, LoRA or full fine-tuning and the LoRA shape,
  epochs or steps, row length, dev evaluation and dev split, saving the merged model.
- :class:`LMConfig` (``train lm``): the model's shape, steps (windows are sampled; there are no
  epochs), dev evaluation and dev split.
- :class:`FitConfig` (``train ner`` / ``train classify``): epochs, subword length and early
  stopping on the dev score.

Whether a run resumes is not a setting: a run and its resumed continuation have one config.
Importing this module imports neither torch nor typer (the command line builds its help from it).
"""

from __future__ import annotations

import math
from dataclasses import InitVar, asdict, dataclass, field, fields
from typing import Any, ClassVar

__all__ = ["DTYPES", "METHODS", "SCHEDULES", "ConfigError", "FitConfig", "LMConfig", "SFTConfig", "Setting",
           "TrainConfig", "resolve_dtype"]

SCHEDULES = ("cosine", "linear", "constant")
DTYPES = ("auto", "bfloat16", "float32")
METHODS = ("lora", "full")
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


class ConfigError(ValueError):
    """A setting's value is out of its bounds or choices; ``field`` names the setting."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Setting:
    """One setting's declaration: help, option names (default ``--<field-name>``), bounds or choices.

    ``cli=False``: a setting of the library only (no command-line option). Calling a setting with a
    default makes the dataclass field that holds it.
    """

    help: str
    option: tuple[str, ...] = ()
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[str, ...] | None = None
    cli: bool = True

    def __call__(self, default: Any) -> Any:
        return field(default=default, metadata={"setting": self})

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed (``"must be >= 1, not 0"``), or None; None is always allowed."""
        if value is None or isinstance(value, (tuple, list)):
            return None
        if self.choices is not None:
            return None if value in self.choices else f"must be one of {', '.join(self.choices)}, not {value!r}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if isinstance(value, float) and math.isnan(value):
            return "must be a number, not nan"
        for bound, ok, word in ((self.ge, lambda b: value >= b, ">="), (self.gt, lambda b: value > b, ">"),
                                (self.le, lambda b: value <= b, "<="), (self.lt, lambda b: value < b, "<")):
            if bound is not None and not ok(bound):
                return f"must be {word} {bound:g}, not {value:g}"
        return None


def setting_of(cls: type, name: str) -> Setting | None:
    """The :class:`Setting` of field ``name`` of config class ``cls`` (None for a plain field)."""
    for f in fields(cls):
        if f.name == name:
            return f.metadata.get("setting")
    raise KeyError(f"{cls.__name__} has no field {name!r}")


# -- the declarations ---------------------------------------------------------------------------------
# Shared by every trainer (TrainConfig) or by several (the rest); each trainer picks its defaults.

BATCH_SIZE = Setting("Examples per batch.", ge=1)
GRAD_ACCUM = Setting("Micro-batches per optimizer step (gradient accumulation).", ge=1)
LR = Setting("Peak learning rate.", gt=0)
WEIGHT_DECAY = Setting("AdamW weight decay (on matrices only; see gristmill.train.loop).", ge=0)
WARMUP_RATIO = Setting("Share of the optimizer steps with linear warmup.", ge=0, lt=1)
WARMUP = Setting("Warmup steps (overrides --warmup-ratio).", option=("--warmup-steps",), ge=0)
SCHEDULE = Setting("Learning-rate decay after warmup: cosine, linear or constant.", choices=SCHEDULES)
MIN_LR_RATIO = Setting("Where the decay ends, as a share of the peak learning rate.", ge=0, le=1)
MAX_GRAD_NORM = Setting("Clip the gradient norm to this (0: no clipping).", ge=0)
DTYPE = Setting("Precision: bfloat16 (about 2x faster on CPUs that compute in bf16), float32, or auto "
                "(bfloat16 where the CPU supports it).", choices=DTYPES)
CHECKPOINT_EVERY = Setting("Checkpoint every N optimizer steps into <out>/checkpoints (0: none).", ge=0)
KEEP_CHECKPOINTS = Setting("Newest complete checkpoints kept.", ge=1)
SEED = Setting("Seed of every random choice the command makes (splits, order, initialisation, sampling, "
               "bootstrap); the same seed gives the same result.")
THREADS = Setting("torch CPU threads (default: all cores).", ge=1)
EPOCHS = Setting("Passes over the training data (a fraction ends the last pass early).", gt=0)
MAX_STEPS = Setting("Optimizer steps (overrides --epochs).", ge=1)
STEPS = Setting("Optimizer steps.", ge=1)
MAX_LENGTH = Setting("Tokens per sequence the model sees at once.", ge=8)
EVAL_EVERY = Setting("Dev evaluation every N optimizer steps (0: at the end only).", ge=0)
DEV_FRACTION = Setting("Share of the data held out as the dev set (0: none).", ge=0, lt=1)
PATIENCE = Setting("Stop after this many epochs without a better dev score.", ge=1)
MODEL = Setting("Model to start from (default: the command's packaged model).")
VOCAB_SIZE = Setting("BPE vocabulary size (at least 258: 256 bytes and 2 special tokens).", ge=258)
CONTEXT = Setting("Context length in tokens.", ge=8)
N_LAYER = Setting("Transformer blocks.", option=("--layers", "--n-layer"), ge=1)
N_HEAD = Setting("Attention heads (must divide the model width).", option=("--heads", "--n-head"), ge=1)
D_MODEL = Setting("Model width.", option=("--dim", "--d-model"), ge=8)
DROPOUT = Setting("Dropout.", ge=0, lt=1)


def resolve_dtype(dtype: str) -> str:
    """``bfloat16`` or ``float32``; ``auto`` is bf16 when this CPU computes in bf16 natively (imports torch)."""
    if dtype != "auto":
        return dtype
    import torch

    try:
        return "bfloat16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "float32"
    except (AttributeError, RuntimeError):  # pragma: no cover - torch built without mkldnn
        return "float32"


@dataclass(kw_only=True)
class TrainConfig:
    """The settings every trainer shares; checked against their declarations when made."""

    batch_size: int = BATCH_SIZE(8)
    grad_accum: int = GRAD_ACCUM(1)
    lr: float | None = LR(None)                 # None: the trainer's default
    weight_decay: float = WEIGHT_DECAY(0.0)
    warmup_ratio: float = WARMUP_RATIO(0.05)
    warmup: int | None = WARMUP(None)           # warmup steps; None: warmup_ratio of the steps
    schedule: str = SCHEDULE("cosine")
    min_lr_ratio: float = MIN_LR_RATIO(0.0)
    max_grad_norm: float = MAX_GRAD_NORM(1.0)
    dtype: str = DTYPE("float32")
    checkpoint_every: int = CHECKPOINT_EVERY(0)
    keep_checkpoints: int = KEEP_CHECKPOINTS(2)
    seed: int = SEED(0)
    threads: int | None = THREADS(None)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise :class:`ConfigError` for the first value outside its declaration."""
        for f in fields(self):
            s = f.metadata.get("setting")
            problem = s.problem(getattr(self, f.name)) if s is not None else None
            if problem:
                raise ConfigError(f.name, f"{f.name} {problem}")

    def warmup_steps(self, total: int) -> int:
        """Warmup steps of a run of ``total`` optimizer steps: ``warmup``, else ``warmup_ratio`` of them."""
        return self.warmup if self.warmup is not None else int(self.warmup_ratio * total)

    def uses_bf16(self) -> bool:
        """Whether training computes in bfloat16 (``dtype`` resolved by :func:`resolve_dtype`)."""
        return resolve_dtype(self.dtype) == "bfloat16"

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        """The config in ``d`` (keys that are not fields are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(kw_only=True)
class SFTConfig(TrainConfig):
    """Everything a run of :func:`gristmill.train.sft.train_sft` depends on (saved as the run's config).

    ``lr`` None becomes 2e-4 for LoRA and 2e-5 for full fine-tuning. ``learning_rate`` is the
    older name of ``lr``, still accepted.
    """

    model: str | None = MODEL(None)   # HF directory or .gguf file; None: the packaged SmolLM2-135M-Instruct
    method: str = Setting("lora (peft adapters) or full (every weight).", choices=METHODS)("lora")
    lora_r: int = Setting("LoRA rank.", ge=1)(8)
    lora_alpha: int = Setting("LoRA alpha (scale = alpha / r).", ge=1)(16)
    lora_dropout: float = Setting("Dropout on the LoRA input.", ge=0, lt=1)(0.05)
    target_modules: tuple[str, ...] = Setting("Comma-separated module names LoRA adapts.")(DEFAULT_TARGETS)
    epochs: float = EPOCHS(1.0)
    max_steps: int | None = MAX_STEPS(None)
    max_length: int = MAX_LENGTH(512)
    eval_every: int = EVAL_EVERY(0)
    dev_fraction: float = DEV_FRACTION(0.05)
    save_merged: bool = Setting("Save the adapter merged into the base model too (merged/).",
                                option=("--merge/--no-merge",))(True)
    log_every: int = Setting("Log the training loss every N optimizer steps.", ge=1, cli=False)(1)
    dtype: str = DTYPE("auto")
    learning_rate: InitVar[float | None] = None

    def __post_init__(self, learning_rate: float | None = None) -> None:  # type: ignore[override]
        if learning_rate is not None:
            self.lr = learning_rate
        self.target_modules = tuple(self.target_modules)
        super().__post_init__()
        if self.lr is None:
            self.lr = 2e-4 if self.method == "lora" else 2e-5


@dataclass(kw_only=True)
class LMConfig(TrainConfig):
    """Size and training schedule of a from-scratch LM (:mod:`gristmill.train.lm`).

    The defaults (about 1M parameters) train in minutes on 2 CPU cores. ``vocab_size`` is the BPE
    size asked for when the tokenizer is trained here; the model always uses the tokenizer's actual
    size. ``steps`` counts optimizer steps of ``grad_accum`` micro-batches of ``batch_size`` windows
    of ``context`` tokens. ``dtype`` bfloat16 runs the training forward pass under bfloat16 autocast
    (weights, optimizer and every evaluation stay float32). ``eval_batches``: the dev points score
    at most ``eval_batches * batch_size * context`` dev tokens (whole texts, in order). ``bf16``
    and ``grad_clip`` are older names of ``dtype="bfloat16"`` and ``max_grad_norm``, still accepted.
    """

    vocab_size: int = VOCAB_SIZE(2048)
    context: int = CONTEXT(128)
    n_layer: int = N_LAYER(4)
    n_head: int = N_HEAD(4)
    d_model: int = D_MODEL(128)
    dropout: float = DROPOUT(0.1)
    steps: int = STEPS(1500)
    eval_every: int = EVAL_EVERY(250)
    eval_batches: int = Setting("Dev batches scored at each evaluation.", ge=1, cli=False)(20)
    dev_fraction: float = DEV_FRACTION(0.1)
    batch_size: int = BATCH_SIZE(32)
    lr: float | None = LR(3e-3)
    min_lr_ratio: float = MIN_LR_RATIO(0.1)
    warmup: int | None = WARMUP(100)
    weight_decay: float = WEIGHT_DECAY(0.1)
    checkpoint_every: int = CHECKPOINT_EVERY(500)
    bf16: InitVar[bool | None] = None
    grad_clip: InitVar[float | None] = None

    SHAPE: ClassVar[tuple[str, ...]] = ("vocab_size", "context", "n_layer", "n_head", "d_model")

    def __post_init__(self, bf16: bool | None = None,  # type: ignore[override]
                      grad_clip: float | None = None) -> None:
        if bf16 is not None:
            self.dtype = "bfloat16" if bf16 else "float32"
        if grad_clip is not None:
            self.max_grad_norm = grad_clip
        if self.lr is None:
            self.lr = 3e-3
        super().__post_init__()
        if self.d_model % self.n_head:
            raise ConfigError("d_model", f"d_model ({self.d_model}) must be a multiple of n_head ({self.n_head})")


@dataclass(kw_only=True)
class FitConfig(TrainConfig):
    """Settings of :func:`gristmill.train.token_classify.fit` (token and sequence classification).

    ``bf16`` is the older name of ``dtype="bfloat16"``, still accepted.
    """

    epochs: float = EPOCHS(3)
    max_length: int = MAX_LENGTH(128)
    patience: int = PATIENCE(2)
    eval_batch_size: int = Setting("Examples per forward pass when evaluating.", ge=1, cli=False)(64)
    lr: float | None = LR(5e-5)
    batch_size: int = BATCH_SIZE(16)
    warmup_ratio: float = WARMUP_RATIO(0.1)
    weight_decay: float = WEIGHT_DECAY(0.01)
    schedule: str = SCHEDULE("linear")
    bf16: InitVar[bool | None] = None

    def __post_init__(self, bf16: bool | None = None) -> None:  # type: ignore[override]
        if bf16 is not None:
            self.dtype = "bfloat16" if bf16 else "float32"
        if self.lr is None:
            self.lr = 5e-5
        super().__post_init__()
