"""The ``review`` family: ``review.apply`` puts the decisions people made in ``gristmill review`` back into the data,
and its audit section (:mod:`gristmill.ops.review.audit_metrics`) adds the review's figures and gates."""
