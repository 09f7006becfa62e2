"""The names of the columns the ``bias.*`` operators write, in one place (their modules and the audit's
measure functions, :mod:`gristmill.ops.bias.audit_metrics`, import them from here)."""

from __future__ import annotations

__all__ = ["GROUPS", "GROUP_MENTIONS", "MENTIONS", "FEMALE", "MALE", "FEMALE_SEGMENTS", "MALE_SEGMENTS",
           "OCCUPATIONS_FEMALE", "OCCUPATIONS_MALE", "COUNTERFACTUAL_OF", "SWAPS", "REBALANCE_OF", "REBALANCE_ACTION"]

# bias.audit, per row
GROUPS = "bias.groups"  # the distinct "axis:group" the row mentions, sorted
GROUP_MENTIONS = "bias.group_mentions"  # aligned with GROUPS: term occurrences of each group in the row
MENTIONS = "bias.mentions"  # group term occurrences
FEMALE = "bias.female_terms"
MALE = "bias.male_terms"
FEMALE_SEGMENTS = "bias.female_segments"  # segments of the row holding a female term
MALE_SEGMENTS = "bias.male_segments"
OCCUPATIONS_FEMALE = "bias.occupations_female"  # an occupation once per segment it shares with a female term
OCCUPATIONS_MALE = "bias.occupations_male"

# bias.counterfactual, on its copies
COUNTERFACTUAL_OF = "bias.counterfactual_of"  # the original's id (null on the originals)
SWAPS = "bias.counterfactual_swaps"  # words changed

# bias.rebalance
REBALANCE_OF = "bias.rebalance_of"  # on an up-sampled copy: the id of the row it repeats
REBALANCE_ACTION = "bias.rebalance_action"  # dry_run only: what the step would do to the row
