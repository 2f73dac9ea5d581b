"""Peak memory of `unetkit predict` on one whole 2D image, per pixel: the constants of
``unetkit.safety.memory.predict_bytes``, which refuses (from the header) images too large to predict whole.

    .venv/bin/python benchmarks/predict_memory.py                  # 1000^2 and 3000^2 px, three models
    .venv/bin/python benchmarks/predict_memory.py --sizes 2000     # one size
    .venv/bin/python benchmarks/predict_memory.py --models nuclei  # one model

Each prediction runs in a fresh process; its peak resident memory less that of the same command on a 64 px
image (Python, torch and the network) over the image's pixels is the per-pixel cost. Images: synthetic nuclei
tiled to the size (gray for the gray models, RGB for `nuclei`). Models: a one-channel binary run trained here for
one epoch, and the packaged `nuclei` (RGB, three classes, instances, its 2x rule) and `em-membranes`.
"""

from __future__ import annotations

import argparse
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

UNETKIT = [sys.executable, "-m", "unetkit"]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def write_image(path: Path, side: int, rgb: bool) -> None:
    """Synthetic nuclei (a 256 px tile repeated) of side x side px, written as a PNG."""
    from PIL import Image

    from unetkit.data.synthetic import make_nuclei_image

    tile, _ = make_nuclei_image(np.random.default_rng(0), (256, 256), bit_depth=8)
    reps = -(-side // 256)
    image = np.tile(np.asarray(tile), (reps, reps))[:side, :side].astype(np.uint8)
    if rgb:
        image = np.stack([image] * 3, axis=-1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def peak_mib(command: list[str]) -> float:
    """Peak resident memory (MiB) of ``command`` run in a fresh process (exits non-zero: raised)."""
    code = (f"import resource, subprocess, sys; subprocess.run({command!r}, check=True, stdout=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024


def train_binary(run: Path, work: Path) -> None:
    from unetkit.data.synthetic import write_synthetic_dataset

    write_synthetic_dataset(work / "data", 4, seed=1, shape=(96, 96))
    subprocess.run([*UNETKIT, "train", "--data", str(work / "data"), "--val", str(work / "data"), "--out", str(run),
                    "--epochs", "1", "--quiet", "--set", "data.samples_per_epoch=8", "--set", "data.patch_size=64"],
                   check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--models", nargs="+", choices=["binary", "nuclei", "em-membranes"],
                        default=["binary", "nuclei", "em-membranes"], help="which of the three to measure")
    args = parser.parse_args()
    from unetkit.checkpoint import load_model
    from unetkit.safety.memory import predict_bytes

    print(f"CPU: {cpu_model()}; {resource.getpagesize()} B pages")
    print("| model | C | K | image | peak MiB | above a 64 px image | bytes per pixel | estimate |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "binary" in args.models:
            train_binary(work / "binary", work)
        for key, name, model, rgb in (("binary", "binary (trained here)", str(work / "binary"), False),
                                      ("nuclei", "nuclei", "nuclei", True),
                                      ("em-membranes", "em-membranes", "em-membranes", False)):
            if key not in args.models:
                continue
            _, config = load_model(model, "cpu")
            channels, classes = config.model.in_channels, config.model.out_channels
            write_image(work / name / "small" / "s.png", 64, rgb)
            base = peak_mib([*UNETKIT, "predict", str(work / name / "small"), "--model", model, "--out",
                             str(work / name / "out_small"), "--quiet"])
            for side in args.sizes:
                folder = work / name / str(side)
                write_image(folder / "x.png", side, rgb)
                peak = peak_mib([*UNETKIT, "predict", str(folder), "--model", model, "--out",
                                 str(work / name / f"out{side}"), "--quiet"])
                per_pixel = (peak - base) * 2**20 / side**2
                estimate = predict_bytes(side**2, channels, classes, instances=config.task == "instances") / side**2
                print(f"| {name} | {channels} | {classes} | {side} x {side} | {peak:.0f} | {peak - base:.0f} | "
                      f"{per_pixel:.0f} | {estimate:.0f} |", flush=True)


if __name__ == "__main__":
    main()
