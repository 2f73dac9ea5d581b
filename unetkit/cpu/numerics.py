"""How far a float32 result is from the exact one, and whether a fast kernel is as accurate as PyTorch's.

Comparing two float32 kernels with a fixed tolerance fits the tolerance to one CPU: oneDNN and MKL pick
different kernels (and summation orders) on AVX2, AVX-512 and ARM, so their float32 results move by a
few units of rounding from machine to machine. The well-posed question is how far each is from a
float64 reference, and whether the fast path's error stays within a small factor of PyTorch's own.
"""

from __future__ import annotations

import torch

FP32_EPS = torch.finfo(torch.float32).eps  # 1.19e-7: one unit of float32 rounding, relative


def relative_error(got: torch.Tensor, reference: torch.Tensor) -> float:
    """||got - reference|| / ||reference|| in float64 (0 when both are zero)."""
    diff = (got.detach().double() - reference.detach().double()).norm().item()
    scale = reference.detach().double().norm().item()
    return diff / scale if scale > 0 else diff


def as_accurate(fast: torch.Tensor, plain: torch.Tensor, reference: torch.Tensor, factor: float = 8.0) -> bool:
    """Whether ``fast``'s error against the float64 ``reference`` is within ``factor`` times ``plain``'s
    (PyTorch's own float32 result), never asking for better than ``factor`` units of float32 rounding:
    summing in another order is allowed, losing digits is not."""
    return relative_error(fast, reference) <= factor * max(relative_error(plain, reference), FP32_EPS)
