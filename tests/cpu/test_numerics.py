"""Accuracy is judged against float64 and relative to PyTorch's own float32 error."""

import torch

from unetkit.cpu.numerics import FP32_EPS, as_accurate, relative_error


def test_relative_error_by_hand():
    assert relative_error(torch.tensor([3.0, 4.0]), torch.tensor([0.0, 0.0])) == 5.0  # zero reference: absolute
    assert relative_error(torch.tensor([3.0, 4.5]), torch.tensor([3.0, 4.0])) == 0.5 / 5.0


def test_a_result_losing_digits_fails_and_a_reordered_sum_passes():
    torch.manual_seed(0)
    a, b = torch.randn(64, 4096), torch.randn(4096, 64)
    exact = a.double() @ b.double()
    pytorch = a @ b
    reordered = (a[:, :2048] @ b[:2048]) + (a[:, 2048:] @ b[2048:])  # another summation order
    half_precision = (a.bfloat16() @ b.bfloat16()).float()  # 8 bits of mantissa: digits really lost
    assert as_accurate(reordered, pytorch, exact)
    assert not as_accurate(half_precision, pytorch, exact)


def test_an_exact_pytorch_result_still_allows_float32_rounding():
    reference = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert as_accurate(reference.float() * (1 + FP32_EPS), reference.float(), reference)
    assert not as_accurate(reference.float() * (1 + 100 * FP32_EPS), reference.float(), reference)
