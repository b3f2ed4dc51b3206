"""Exact integer arithmetic on arrays, fast: what the integer model's products are built on."""
from __future__ import annotations

import numpy as np


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact integer matrix product through float BLAS: float32 when no partial sum can reach
    2**24 (every product here: 4-bit levels times 1-bit weights), float64 otherwise."""
    bound = float(np.abs(a).max(initial=0)) * float(np.abs(b).max(initial=0)) * a.shape[-1]
    dtype = np.float32 if bound < 2 ** 24 else np.float64
    a, b = a.astype(dtype, copy=False), b.astype(dtype, copy=False)
    if b.ndim == 2:          # numpy's stacked matmul skips BLAS (60x slower): flatten instead
        out = (a.reshape(-1, a.shape[-1]) @ b).reshape(a.shape[:-1] + b.shape[-1:])
    else:                    # batched products (attention): one BLAS product per matrix
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a, b = np.broadcast_to(a, batch + a.shape[-2:]), np.broadcast_to(b, batch + b.shape[-2:])
        flat_a = a.reshape(-1, *a.shape[-2:])
        flat_b = b.reshape(-1, *b.shape[-2:])
        out = np.empty((len(flat_a), a.shape[-2], b.shape[-1]), dtype)
        for i in range(len(flat_a)):
            np.matmul(flat_a[i], flat_b[i], out=out[i])
        out = out.reshape(*a.shape[:-2], a.shape[-2], b.shape[-1])
    return np.rint(out).astype(np.int64)
