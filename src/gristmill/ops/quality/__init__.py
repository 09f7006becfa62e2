"""``quality.*`` operators: one module per operator (``quality.gopher`` -> ``gopher.py``)."""
