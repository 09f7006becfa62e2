"""``pii.*`` operators: ``pii.detect`` (``detect.py``) and ``pii.redact`` (``redact.py``).

The other modules are the detectors and helpers both use: ``patterns`` (regex and
checksum detectors), ``address``, ``ner`` (spaCy and rules), ``normalise`` (views of the
text with invisible and look-alike characters undone), ``fake`` (tags, hashes,
pseudonyms), ``spans`` (the span type and overlap resolution)."""
