"""The processor at hand: its model and SIMD flags (``info``), float32 error measures against a float64
reference (``numerics``) and the per-machine choice of fast CPU kernels by measurement (``autotune``).

Shared by ``unetkit.training`` and ``unetkit.inference`` (which must not import training), so it sits
below both and imports neither.
"""
