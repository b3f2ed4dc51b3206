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
    else:                    # batched products (attention): torch has a batched GEMM
        import torch
        out = torch.matmul(torch.from_numpy(np.ascontiguousarray(a)),
                           torch.from_numpy(np.ascontiguousarray(b))).numpy()
    return np.rint(out).astype(np.int64)
