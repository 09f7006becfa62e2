"""The audit sections and metrics of every registered operator (:mod:`gristmill.registry`), gathered once.

Each operator's ``audit_section()`` hook returns an :class:`~gristmill.audit.metric.AuditSection`
or None; operators returning the same section share it (a :class:`Contribution` with both
names). The gates' catalogue (:func:`gristmill.audit.gates.catalogue`) is the audit's core
metrics plus these sections' metrics; ``audit.json``'s summaries and the dataset card have one
part per section. Operators are imported on first use (about a second for the built-ins), and
the result is kept while :data:`gristmill.registry.BUILTIN` is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from gristmill import registry
from gristmill.audit.metric import AuditMetric, AuditSection

__all__ = ["Contribution", "CatalogueError", "audit_prefixes", "contributions", "operator_metrics"]


class CatalogueError(RuntimeError):
    """Two registered operators contribute different metrics (or sections) of the same name."""


@dataclass(frozen=True)
class Contribution:
    """An audit section and the registered operators that contribute it, in registration order."""

    section: AuditSection
    ops: tuple[str, ...]

    @property
    def prefixes(self) -> tuple[str, ...]:
        """The namespaces of the section's steps and columns: its operators' families (``pii.``)."""
        return tuple(dict.fromkeys(op.split(".", 1)[0] + "." for op in self.ops))


def contributions() -> tuple[Contribution, ...]:
    """Every registered operator's section, in ``order`` (ties: registration order)."""
    return tuple(sorted(_contributions(tuple(registry.BUILTIN.items())), key=lambda c: c.section.order))


@lru_cache(maxsize=4)
def _contributions(builtin: tuple[tuple[str, str], ...]) -> tuple[Contribution, ...]:
    """The sections in registration order; ``builtin`` (the registry's table) is only the cache key."""
    found: list[tuple[AuditSection, list[str]]] = []
    for name in registry.registered():
        try:
            cls = registry.get(name)
        except ImportError:  # a plug-in whose dependencies are missing can run no step either
            continue
        section = cls.audit_section()
        if section is None:
            continue
        for known, ops in found:
            if known is section:
                ops.append(name)
                break
            if known.name == section.name:
                raise CatalogueError(f"audit section {section.name!r} comes from {ops[0]} and, "
                                     f"a different one, from {name}")
        else:
            found.append((section, [name]))
    result = tuple(Contribution(section, tuple(ops)) for section, ops in found)  # registration order
    _check_metric_names(result)
    return result


def _check_metric_names(found: tuple[Contribution, ...]) -> None:
    owner: dict[str, str] = {}
    for c in found:
        for m in c.section.metrics:
            if m.name in owner:
                raise CatalogueError(f"audit metric {m.name!r} is contributed twice: by {owner[m.name]} and by "
                                     f"{', '.join(c.ops)}")
            owner[m.name] = ", ".join(c.ops)


def operator_metrics() -> dict[str, tuple[AuditMetric, tuple[str, ...]]]:
    """Each contributed metric by name, with the operators contributing it, in registration order."""
    found = _contributions(tuple(registry.BUILTIN.items()))
    return {m.name: (m, c.ops) for c in found for m in c.section.metrics}


def audit_prefixes() -> tuple[str, ...]:
    """The column namespaces the audit reads (``pii.``, ``toxicity.``, ...): every section's families."""
    return tuple(dict.fromkeys(p for c in contributions() for p in c.prefixes))
