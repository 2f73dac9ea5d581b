"""fp32 vs bf16 autocast training steps on a CPU (``train.precision``), at the settings the benchmarks train.

Times full training steps (forward, loss, backward, AdamW) of the nets unetkit builds for training on a
CPU (channels-last, the autotuned GEMM convolutions of ``training/cpu_convs.py``), fp32 and bf16
interleaved step by step so that a busy machine slows both alike, in this process's CPU seconds:

- 2D: the DSB settings (``benchmarks/dsb2018.py``: depth 5, 16 base channels, batch 8 of 192x192 RGB);
- 3D: depth 4, 16 base channels, batch 2 of 48x96x96 (the scale of ``benchmarks/nuclei3d.py``).

Whether bf16 costs accuracy is measured by training, not here (BENCHMARKS.md, "bf16 training on a CPU").

    .venv/bin/python benchmarks/train_precision.py --threads 1 [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from unetkit.config import RunConfig, apply_overrides
from unetkit.cpu.info import describe, native_bf16
from unetkit.models.layout import to_channels_last
from unetkit.models.registry import build_model
from unetkit.training.cpu_convs import accelerate_training_convs

CASES = {
    "2D DSB settings, batch 8 x 3x192x192": ({"model.depth": 5, "model.in_channels": 3, "model.out_channels": 3},
                                             (8, 3, 192, 192)),
    "3D, batch 2 x 1x48x96x96": ({"model.name": "unet3d", "model.depth": 4, "model.in_channels": 1,
                                  "model.out_channels": 2}, (2, 1, 48, 96, 96)),
}


def step_times(overrides: dict, shape: tuple[int, ...], repeats: int) -> dict[str, list[float]]:
    """CPU seconds of ``repeats`` training steps per precision, interleaved after two warm-up steps each."""
    config = apply_overrides(RunConfig(), {"model.base_channels": 16, "model.padding": "same",
                                           "model.norm": "batch", **overrides})
    dims = len(shape) - 2
    model = to_channels_last(build_model(config.model).train(), dims)
    if dims == 2:
        accelerate_training_convs(model, autotune=True)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-4)
    layout = torch.channels_last if dims == 2 else torch.channels_last_3d
    x = torch.randn(shape).contiguous(memory_format=layout)
    target = torch.randint(0, config.model.out_channels, (shape[0], *shape[2:]))

    def step(bf16: bool) -> float:
        started = time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return time.process_time() - started

    for bf16 in (False, True, False, True):
        step(bf16)
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(repeats):
        for bf16 in (False, True):
            times["bf16" if bf16 else "fp32"].append(step(bf16))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU: {describe()}; bf16 in hardware: {native_bf16()}; {args.threads} torch thread(s); "
          f"median of {args.repeats} steps, CPU seconds")
    print("| CPU | net | fp32 s/step | bf16 s/step | bf16 speed-up |")
    print("| --- | --- | --- | --- | --- |")
    for name, (overrides, shape) in CASES.items():
        times = step_times(overrides, shape, args.repeats)
        fp32, bf16 = statistics.median(times["fp32"]), statistics.median(times["bf16"])
        print(f"| {describe().split(' (')[0]} | {name} | {fp32:.3f} | {bf16:.3f} | {fp32 / bf16:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
