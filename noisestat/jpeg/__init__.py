"""JPEG and CFA forensic maps: double quantisation, ghosts, DCT histograms, blocking grid, demosaicing.

One module per method, registered with :func:`noisestat.registry.register`,
its Numba kernels (if any) in ``_<method>_kernels.py`` beside it. File
coefficients and quantisation tables come from :mod:`noisestat.blocks.jpeg`;
block DCTs of decoded pixels from :mod:`noisestat.blocks.dct`.

Every map says when it applies: on an input of the wrong kind (not a JPEG,
no compression trace, too small) it returns a ``Heatmap`` with
``applicable=False`` and the reason in ``note``, never an exception.
"""
