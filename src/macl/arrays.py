"""Checks and row normalisation shared by the index and post-processing: one place for the error wording.

Both take embeddings from callers (a CLI, the web page, a user's notebook), so a wrong shape or a NaN must
stop with a message naming the array rather than surface later as a faiss crash or silent garbage.
"""

from __future__ import annotations

import numpy as np

from macl.errors import ArgumentError


def finite_matrix(x: np.ndarray, name: str, dim: int | None = None, fitted: str = "") -> np.ndarray:
    """``x`` as a C-contiguous float32 (n, dim) matrix of finite values, or an error naming ``name``.

    ``fitted`` says what fixed ``dim`` (e.g. "the index holds"), for the message of a wrong dimension.
    """
    array = np.asarray(x, dtype=np.float32)
    if array.ndim != 2:
        raise ArgumentError(f"{name} must be a 2-D (n, dim) array; got shape {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise ArgumentError(f"{name} have dimension {array.shape[1]}, but {fitted or 'the caller expects'} {dim}")
    if not np.isfinite(array).all():
        raise ArgumentError(f"{name} contain NaN or inf")
    return np.ascontiguousarray(array)  # faiss reads C-contiguous rows


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm as float32; an all-zero row stays zero (no division by zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray((x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False))
