"""``filter.*`` operators: one module per operator (``filter.length`` -> ``length.py``)."""
