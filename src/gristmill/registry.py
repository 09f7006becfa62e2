"""Operator names → operator classes. The one place where built-in operators are registered.

Names are stable dotted strings used in recipes (``clean.normalize``). Classes are
imported lazily, so listing operators does not load every dependency. Third-party
operators register through the ``gristmill.operators`` entry-point group the same way.
"""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points

from gristmill.ops.base import Operator

BUILTIN: dict[str, str] = {
    "clean.normalize": "gristmill.ops.clean:Normalize",
    "clean.strip_html": "gristmill.ops.clean:StripHtml",
    "filter.length": "gristmill.ops.filter.length:LengthFilter",
    "dedup.exact": "gristmill.ops.dedup.exact:ExactDedup",
    "split.train_test": "gristmill.ops.split:TrainTestSplit",
    "lang.identify": "gristmill.ops.lang:LanguageIdentify",
    "filter.language": "gristmill.ops.filter.language:LanguageFilter",
    "quality.gopher": "gristmill.ops.quality.gopher:GopherQuality",
    "quality.gopher_repetition": "gristmill.ops.quality.gopher_repetition:GopherRepetition",
    "quality.c4": "gristmill.ops.quality.c4:C4Quality",
    "quality.fineweb": "gristmill.ops.quality.fineweb:FineWebQuality",
    "quality.perplexity": "gristmill.ops.quality.perplexity:Perplexity",
    "dedup.minhash": "gristmill.ops.dedup.minhash:MinHashDedup",
    "dedup.semantic": "gristmill.ops.dedup.semantic:SemanticDedup",
    "dedup.lines": "gristmill.ops.dedup.lines:LineDedup",
    "decontam.ngram": "gristmill.ops.decontam:NgramDecontam",
    "generate.template": "gristmill.ops.generate.template:TemplateGenerate",
    "generate.self_instruct": "gristmill.ops.generate.self_instruct:SelfInstruct",
    "generate.evol_instruct": "gristmill.ops.generate.evol_instruct:EvolInstruct",
    "generate.qa_from_documents": "gristmill.ops.generate.qa_from_documents:QAFromDocuments",
    "generate.random_walk": "gristmill.ops.generate.random_walk:RandomWalkQA",
    "generate.paraphrase": "gristmill.ops.generate.paraphrase:Paraphrase",
    "generate.dialogue": "gristmill.ops.generate.dialogue:Dialogue",
    "generate.preference_pairs": "gristmill.ops.generate.preference_pairs:PreferencePairs",
    "judge.score": "gristmill.ops.judge:JudgeScore",
    "pii.detect": "gristmill.ops.pii.detect:PiiDetect",
    "pii.redact": "gristmill.ops.pii.redact:PiiRedact",
    "toxicity.score": "gristmill.ops.toxicity:ToxicityScore",
    "review.apply": "gristmill.ops.review.apply:ReviewApply",
    "bias.audit": "gristmill.ops.bias.audit:BiasAudit",
    "bias.counterfactual": "gristmill.ops.bias.counterfactual:GenderCounterfactual",
    "bias.rebalance": "gristmill.ops.bias.rebalance:BiasRebalance",
    "copyright.overlap": "gristmill.ops.copyright:CopyrightOverlap",
    "augment.entity_swap": "gristmill.ops.augment:EntitySwap",
    "augment.noise": "gristmill.ops.augment:NoiseInjection",
    "augment.mix": "gristmill.ops.augment:TextMix",
    "select.search": "gristmill.ops.select.search:Search",
    "image.validate": "gristmill.ops.image.validate:ImageValidate",
    "image.dedup": "gristmill.ops.image.dedup:ImageDedup",
    "image.quality": "gristmill.ops.image.quality:ImageQuality",
    "image.resize": "gristmill.ops.image.resize:ImageResize",
    "image.augment": "gristmill.ops.image.augment:ImageAugment",
    "image.label_issues": "gristmill.ops.image.label_issues:ImageLabelIssues",
}


class UnknownOperator(KeyError):
    """Raised for a name no operator is registered under; carries the closest names."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown operator {name!r}{hint}")

    def __str__(self) -> str:
        return self.args[0]


def _all_targets() -> dict[str, str]:
    targets = dict(BUILTIN)
    for ep in entry_points(group="gristmill.operators"):
        targets.setdefault(ep.name, ep.value)
    return targets


def names() -> list[str]:
    """All registered operator names, sorted."""
    return sorted(_all_targets())


def registered() -> list[str]:
    """All registered operator names in registration order: :data:`BUILTIN` as listed, then entry points."""
    return list(_all_targets())


def suggest(name: str, n: int = 3) -> list[str]:
    """The registered names closest to ``name``."""
    known = names()
    close = difflib.get_close_matches(name, known, n=n, cutoff=0.5)
    if not close:
        family = name.split(".")[0]
        close = [k for k in known if k.startswith(family + ".")][:n]
    return close


def get(name: str) -> type[Operator]:
    """The operator class registered under ``name``; raises :class:`UnknownOperator`."""
    target = _all_targets().get(name)
    if target is None:
        raise UnknownOperator(name, suggest(name))
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if cls.name != name:
        raise RuntimeError(f"{target} declares name {cls.name!r}, registered as {name!r}")
    return cls


def create(name: str, params: dict | None = None) -> Operator:
    """Instantiate operator ``name`` with ``params`` (validated by its Params model)."""
    return get(name)(**(params or {}))
