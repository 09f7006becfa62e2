"""``dedup.*`` operators: one module per operator (``dedup.minhash`` -> ``minhash.py``)."""
