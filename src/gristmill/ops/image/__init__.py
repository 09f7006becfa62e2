"""The ``image`` operator family: validate, deduplicate, score, resize, augment and find label issues in image
records (the layout is :mod:`gristmill.io.images`'s)."""
