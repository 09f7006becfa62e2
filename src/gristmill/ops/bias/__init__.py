"""``bias.*`` operators: ``bias.audit`` (``audit.py``) and ``bias.counterfactual``
(``counterfactual.py``)."""
