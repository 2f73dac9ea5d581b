"""unetkit against the tools a user would pick instead, on the same work, in one process.

Run in the peers venv (peers are not unetkit dependencies; see requirements-peers.txt):

    python3 -m venv benchmarks/.venv-peers
    benchmarks/.venv-peers/bin/pip install -r benchmarks/requirements-peers.txt -e '.[export]'
    benchmarks/.venv-peers/bin/python benchmarks/peers.py [--quick]

(a) training step (forward, loss, backward, AdamW step) of the paper-sized U-Net (64..1024, same
    padding, 1 in / 2 out; NCHW, NHWC, NHWC with the GEMM weight gradients of
    unetkit/training/cpu_convs.py always on, and autotuned per layer, the CPU default; and NHWC under
    bf16 autocast) against MONAI BasicUNet and UNet; FLOPs counted
    by PyTorch's FlopCounterMode, so throughput is compared per FLOP (GFLOP/s) as well as per step.
    MONAI's UNet (strided residual units) does a quarter of the FLOPs at equal widths, so it also runs
    with doubled widths; the ratio printed is against the fastest peer within 2x of unetkit's FLOPs per step.
(b) tiled prediction of a 2048 x 2048 image, tile 256, overlap 0.25, Gaussian blending: unetkit
    (PyTorch engine: channels_last; with the wide convs as Winograd F(4x4, 3x3) by the fixed >= 256
    channel rule, and autotuned per layer, its CPU default; bf16 autocast; onnxruntime engine) against
    MONAI ``sliding_window_inference`` with the same network weights; outputs compared (max abs diff).
    GFLOP/s count the direct convolution's FLOPs, so Winograd can exceed the ceiling: it does fewer
    multiplications for the same output.
(c) the machine ceiling: fp32 GFLOP/s of a large 3x3 convolution, and (a)/(b) as a fraction of it.

Timings: warm-up, then the median of repeats, methods interleaved so load changes hit all alike. The
header names the CPU model and SIMD flags (read from /proc/cpuinfo): the numbers belong to that CPU.
Autotuning runs during the warm-up against a fresh cache in a temporary folder (its table is printed).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unetkit.cpu import autotune  # noqa: E402
from unetkit.cpu.info import describe  # noqa: E402
from unetkit.inference.predict import TorchPredictor, predict_tiled  # noqa: E402
from unetkit.inference.tile_plan import NetGeometry
from unetkit.inference.winograd import accelerate_convs  # noqa: E402
from unetkit.models.unet import UNet  # noqa: E402
from unetkit.training.cpu_convs import accelerate_training_convs  # noqa: E402


def median_times(functions: dict, repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved round-robin after warm-up."""
    for fn in functions.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def conv_ceiling(repeats: int) -> float:
    """fp32 GFLOP/s of a 256->256 3x3 convolution on 64x64 (batch 4), NHWC and NCHW; the better one."""
    best = 0.0
    with torch.inference_mode():
        for layout in (torch.contiguous_format, torch.channels_last):
            conv = torch.nn.Conv2d(256, 256, 3, padding=1).to(memory_format=layout)
            x = torch.randn(4, 256, 64, 64).contiguous(memory_format=layout)
            flops = 2 * 256 * 256 * 9 * 64 * 64 * 4
            seconds = median_times({"conv": lambda conv=conv, x=x: conv(x)}, repeats)["conv"]
            best = max(best, flops / seconds / 1e9)
    return best


def count_flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def training_models(base: int) -> dict[str, tuple[torch.nn.Module, torch.memory_format]]:
    """Paper-sized U-Nets of each library (widths base..16 base, batch norm, ReLU family), with input layout."""
    from monai.networks.nets import BasicUNet
    from monai.networks.nets import UNet as MonaiUNet

    nchw, nhwc = torch.contiguous_format, torch.channels_last
    widths = [base * 2**i for i in range(5)]

    def unetkit(gemm: bool = False, tuned: bool = False) -> torch.nn.Module:
        model = UNet(1, 2, padding="same", norm="batch", base_channels=base)
        if gemm:
            accelerate_training_convs(model, autotune=tuned)
        return model

    return {
        "unetkit UNet, NCHW": (unetkit(), nchw),
        "unetkit UNet, NHWC oneDNN only": (unetkit().to(memory_format=nhwc), nhwc),
        "unetkit UNet, NHWC + GEMM always": (unetkit(gemm=True).to(memory_format=nhwc), nhwc),
        "unetkit UNet, NHWC + GEMM autotuned (default)": (unetkit(gemm=True, tuned=True).to(memory_format=nhwc),
                                                          nhwc),
        "unetkit UNet, NHWC, bf16 autocast": (unetkit().to(memory_format=nhwc), nhwc),
        "MONAI BasicUNet": (BasicUNet(spatial_dims=2, in_channels=1, out_channels=2,
                                      features=(*widths, widths[0]), act="relu", norm="batch"), nchw),
        "MONAI UNet": (MonaiUNet(spatial_dims=2, in_channels=1, out_channels=2, channels=widths,
                                 strides=(2, 2, 2, 2), num_res_units=2, norm="batch"), nchw),
        # strided residual units do a quarter of the work at equal widths: doubled, the FLOPs match
        "MONAI UNet, widths x2": (MonaiUNet(spatial_dims=2, in_channels=1, out_channels=2,
                                            channels=[2 * w for w in widths], strides=(2, 2, 2, 2),
                                            num_res_units=2, norm="batch"), nchw),
    }


def bench_training(batch: int, size: int, base: int, repeats: int) -> list[dict]:
    torch.manual_seed(0)
    models = training_models(base)
    x = torch.randn(batch, 1, size, size)
    target = torch.randint(0, 2, (batch, size, size))
    loss_fn = torch.nn.CrossEntropyLoss()
    steps, flops = {}, {}
    for name, (model, layout) in models.items():
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        inputs = x.contiguous(memory_format=layout)

        def step(model=model, optimizer=optimizer, inputs=inputs, bf16="bf16" in name):
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = loss_fn(model(inputs).float(), target)
            loss.backward()
            optimizer.step()

        # the model's FLOPs, counted on the plain NCHW path: the GEMM weight gradient's products over
        # padding rows are extra work of the method, not of the model
        flops[name] = flops["unetkit UNet, NCHW"] if name.startswith("unetkit") and flops else count_flops(step)
        steps[name] = step
    seconds = median_times(steps, repeats)
    rows = []
    for name, (model, _) in models.items():
        rows.append({"model": name, "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
                     "step_s": seconds[name], "gflop_per_step": flops[name] / 1e9,
                     "gflop_per_s": flops[name] / seconds[name] / 1e9})
    return rows


def bench_prediction(size: int, tile: int, overlap: float, base: int, batch: int, repeats: int) -> dict:
    from monai.inferers import sliding_window_inference

    from unetkit.config import ModelConfig
    from unetkit.inference.exported import OnnxModule

    torch.manual_seed(0)
    net = UNet(1, 2, padding="same", norm="batch", base_channels=base).eval()
    fast = UNet(1, 2, padding="same", norm="batch", base_channels=base).eval()
    fast.load_state_dict(net.state_dict())
    fast.to(memory_format=torch.channels_last)
    winograd = copy.deepcopy(fast)
    accelerate_convs(winograd)  # the fixed rule: every 3x3 conv with >= 256 inputs
    tuned = copy.deepcopy(fast)
    accelerate_convs(tuned, autotune=True)  # what the CPU torch engine runs by default (inference.autotune)

    class Bf16(torch.nn.Module):
        """The channels_last net under CPU bf16 autocast, logits back in float32."""

        def forward(self, x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return fast(x).float()

    image = np.random.default_rng(0).random((1, size, size), dtype=np.float32)
    geometry = NetGeometry.from_config(ModelConfig(padding="same", base_channels=base))
    folder = Path(tempfile.mkdtemp())
    torch.onnx.export(net, (torch.zeros(batch, 1, tile, tile),), str(folder / "net.onnx"), dynamo=True,
                      input_names=["image"], output_names=["logits"], verbose=False,
                      dynamic_shapes=({0: torch.export.Dim.AUTO},))
    onnx_net = OnnxModule(folder / "net.onnx")

    def monai():
        with torch.inference_mode():
            logits = sliding_window_inference(torch.from_numpy(image)[None], (tile, tile), batch, net,
                                              overlap=overlap, mode="gaussian")
            return torch.softmax(logits, 1)[0].numpy()

    runs = {
        "MONAI sliding_window_inference": monai,
        "unetkit predict_tiled (torch, channels_last)": lambda: predict_tiled(
            image, TorchPredictor(fast), geometry, 2, tile, overlap, batch),
        "unetkit predict_tiled (torch, + Winograd >= 256 ch)": lambda: predict_tiled(
            image, TorchPredictor(winograd), geometry, 2, tile, overlap, batch),
        "unetkit predict_tiled (torch, Winograd autotuned: default)": lambda: predict_tiled(
            image, TorchPredictor(tuned), geometry, 2, tile, overlap, batch),
        "unetkit predict_tiled (torch, channels_last, bf16 autocast)": lambda: predict_tiled(
            image, TorchPredictor(Bf16().eval()), geometry, 2, tile, overlap, batch),
        "unetkit predict_tiled (onnxruntime)": lambda: predict_tiled(
            image, TorchPredictor(onnx_net), geometry, 2, tile, overlap, batch),
    }
    outputs = {name: fn() for name, fn in runs.items()}
    reference = outputs["MONAI sliding_window_inference"]
    tile_flops = count_flops(lambda: net(torch.zeros(1, 1, tile, tile)))
    seconds = median_times(runs, repeats, warmup=0)
    tiles = math.ceil((size - tile) / int(tile * (1 - overlap))) + 1  # per axis, as both tilers plan
    rows = []
    for name in runs:
        rows.append({"method": name, "seconds": seconds[name], "mp_per_s": size * size / 1e6 / seconds[name],
                     "max_abs_diff_vs_monai": float(np.abs(outputs[name] - reference).max())})
    return {"rows": rows, "tile_gflop": tile_flops / 1e9, "tiles": tiles * tiles}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs (~1 min)")
    parser.add_argument("--train-batch", type=int, default=4)
    parser.add_argument("--train-size", type=int, default=256)
    parser.add_argument("--train-base", type=int, default=64)
    parser.add_argument("--predict-size", type=int, default=2048)
    parser.add_argument("--predict-base", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["all", "train", "predict"], default="all")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.train_batch, args.train_size, args.train_base = 2, 64, 16
        args.predict_size, args.predict_base, args.repeats = 512, 8, 2
    if not os.environ.get("UNETKIT_PEERS_KEEP_CACHE"):  # tune afresh, in the warm-up, not from an old cache
        os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="peers-cache-")
    os.environ.setdefault("UNETKIT_AUTOTUNE", "1")
    print(f"CPU: {describe()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    # the ceiling is measured before and after the work and the higher kept: a slow spell of the machine
    # during one measurement must not make the shares of it look better than they are
    ceilings = [conv_ceiling(args.repeats)]
    train, pred = [], {}
    if args.only in ("all", "train"):
        train = bench_training(args.train_batch, args.train_size, args.train_base, args.repeats)
    if args.only in ("all", "predict"):
        pred = bench_prediction(args.predict_size, 256 if not args.quick else 128, 0.25, args.predict_base, 4,
                                args.repeats)
    ceilings.append(conv_ceiling(args.repeats))
    ceiling = max(ceilings)
    print(f"(c) conv ceiling: {ceiling:.1f} GFLOP/s fp32 (256->256 3x3 conv on 4x64x64; before "
          f"{ceilings[0]:.1f}, after {ceilings[1]:.1f}, the higher kept)")
    if train:
        print_training(args, train, ceiling)
    if pred:
        print_prediction(args, pred, ceiling)
    table = autotune.load_table().get(autotune.machine_key(), {})
    if table:
        print(f"\nautotune decisions ({len(table)} layer shape classes; fast path where chosen):")
        for key in sorted(table):
            row = table[key]
            print(f"  {key:44s} {row['speedup']:5.2f}x  {'fast path' if row['fast'] else 'plain PyTorch'}")
    if args.json:
        print(json.dumps({"cpu": describe(), "ceiling_gflops": ceiling, "training": train, "prediction": pred,
                          "autotune": table}))
    return 0


def print_training(args: argparse.Namespace, train: list[dict], ceiling: float) -> None:
    print(f"\n(a) training step, batch {args.train_batch} at {args.train_size}x{args.train_size}, "
          f"widths {args.train_base}..{args.train_base * 16}, AdamW, median of {args.repeats}")
    print(f"{'model':36s} {'params M':>9s} {'step s':>8s} {'GFLOP':>8s} {'GFLOP/s':>8s} {'% ceil':>7s}")
    for row in train:
        print(f"{row['model']:36s} {row['params_M']:9.2f} {row['step_s']:8.2f} {row['gflop_per_step']:8.1f} "
              f"{row['gflop_per_s']:8.1f} {100 * row['gflop_per_s'] / ceiling:6.0f}%")
    ours = next(r for r in train if "(default)" in r["model"])
    comparable = [r for r in train if not r["model"].startswith("unetkit")
                  and 0.5 <= r["gflop_per_step"] / ours["gflop_per_step"] <= 2]  # "of comparable FLOPs"
    if comparable:
        best = max(comparable, key=lambda r: r["gflop_per_s"])
        print(f"unetkit / fastest peer of comparable FLOPs ({best['model']}), GFLOP/s: "
              f"{ours['gflop_per_s'] / best['gflop_per_s']:.2f}x")


def print_prediction(args: argparse.Namespace, pred: dict, ceiling: float) -> None:
    print(f"\n(b) tiled prediction {args.predict_size}^2, tile {256 if not args.quick else 128}, overlap 0.25, "
          f"gaussian, batch 4, widths {args.predict_base}..{args.predict_base * 16} "
          f"({pred['tile_gflop']:.1f} GFLOP per tile), median of {args.repeats}")
    monai = pred["rows"][0]["mp_per_s"]
    print(f"{'method':52s} {'s':>7s} {'MP/s':>7s} {'vs MONAI':>8s} {'max|diff|':>10s}")
    for row in pred["rows"]:
        gflops = pred["tile_gflop"] * pred["tiles"] / row["seconds"]
        print(f"{row['method']:52s} {row['seconds']:7.2f} {row['mp_per_s']:7.3f} {row['mp_per_s'] / monai:7.2f}x "
              f"{row['max_abs_diff_vs_monai']:10.2e}  {gflops:6.1f} GFLOP/s ({100 * gflops / ceiling:.0f}% of ceiling)")


if __name__ == "__main__":
    sys.exit(main())
