"""Optional ``torch.compile`` of a network, by backend name, with a clear error for unknown ones.

Off by default: on the 2-core AVX2 CPU this project is measured on, inductor took 80+ s to compile a
small U-Net and its training step ran slower than eager (BENCHMARKS.md, "torch.compile"). It is kept
as an option for GPUs, where fused kernels can pay.
"""

from __future__ import annotations

import torch

from unetkit.errors import InputError

OFF = ("off", "", "none", "false")


def compiled(module: torch.nn.Module, backend: str, setting: str) -> torch.nn.Module:
    """``module`` compiled with ``backend`` (e.g. ``inductor``), or itself when ``backend`` is off.

    ``setting`` names the config key (``train.compile``) for the error message. The original module
    keeps the parameters, so checkpoints saved from it carry no ``_orig_mod`` prefixes.
    """
    backend = str(backend)  # a YAML config may hold the boolean false
    if backend.lower() in OFF:
        return module
    if backend not in torch._dynamo.list_backends(exclude_tags=()):  # debug backends accepted, not listed
        listed = ", ".join(torch._dynamo.list_backends())
        raise InputError(f"{setting} must be off or a torch.compile backend ({listed}); got '{backend}'")
    return torch.compile(module, backend=backend)
