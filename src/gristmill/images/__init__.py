"""Image helpers shared by the image readers (:mod:`gristmill.io.images`), the ``image.*`` operators and the
report's pictures: decoding with reasons (:mod:`~gristmill.images.decode`), perceptual hashes and
Hamming-distance clusters (:mod:`~gristmill.images.hashing`), and pixel statistics
(:mod:`~gristmill.images.measure`).

Pillow is a dependency of the base install (matplotlib brings it); :mod:`~gristmill.images.hashing`
needs scipy, which the ``image`` extra's imagehash installs.
"""
