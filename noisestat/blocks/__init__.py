"""Shared numeric building blocks (the layer below the estimators and methods).

Each module holds one block that several methods use, under a public,
documented name, so that it has exactly one definition:

* :mod:`noisestat.blocks.dct` -- the orthonormal DCT-II matrix and AC bank, the
  8x8 JPEG block DCT and the zigzag order.
* :mod:`noisestat.blocks.jpeg` -- the JPEG file's quantised DCT coefficients and
  quantisation tables (read with ``jpeglib``), and the same quantity recomputed
  from pixels.
* :mod:`noisestat.blocks.wavelets` -- Daubechies filters and the finest diagonal
  (HH) wavelet subband.
* :mod:`noisestat.blocks.tiling` -- the block tiling shared by the block maps
  and the expansion of block values to full resolution.
* :mod:`noisestat.blocks.eigen` -- eigenvalues of many small symmetric matrices
  side by side (the PCA estimators' covariances).
* :mod:`noisestat.blocks.patches` -- patch gathering, unusable-pixel integral
  images and BLAS threading for the PCA estimators.

These modules import only the ground layer (``types``, ``_validate``,
``_numba``) and never a method.
"""
