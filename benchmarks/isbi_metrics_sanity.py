"""The ISBI 2012 metrics on the truth itself, eroded and dilated by one pixel (a table row each).

Shows what each metric forgives: over the 25 slices of ``../shared/data/isbi2012/train/labels``, the
old ``rand_error`` of ``unetkit.metrics.rand``, both generations of ``unetkit.metrics.isbi`` and the
warping error (``unetkit.metrics.warping``, with its split and merge pixels).

Example (the table in BENCHMARKS.md):
    .venv/bin/python benchmarks/isbi_metrics_sanity.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from unetkit.data.io import read_labels
from unetkit.metrics.isbi import isbi_curves, isbi_scores
from unetkit.metrics.rand import rand_error

LABELS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "isbi2012" / "train" / "labels"


def main() -> int:
    if not LABELS.is_dir():
        print(f"ISBI 2012 labels not found at {LABELS}; see ../shared/data/README.md", file=sys.stderr)
        return 1
    four = ndi.generate_binary_structure(2, 1)
    truths = [read_labels(p) != 0 for p in sorted(LABELS.glob("*.png"))]
    cases = {"truth itself": lambda t: t, "eroded 1 px (4-conn)": lambda t: ndi.binary_erosion(t, four),
             "dilated 1 px (4-conn)": lambda t: ndi.binary_dilation(t, four)}
    print("| proposal | old rand_error | Rand error (original) | pixel error (original) | "
          "V_rand error thinned (split / merge) | V_info error thinned (split / merge) | "
          "warping error (split / merge pixels) |")
    for name, alter in cases.items():
        preds = [alter(t) for t in truths]
        s = isbi_scores([isbi_curves(t, p, is_probability=False) for t, p in zip(truths, preds, strict=True)])
        old = float(np.mean([rand_error(t, p) for t, p in zip(truths, preds, strict=True)]))
        print(f"| {name} | {old:.4f} | {s['rand_error_original']:.4f} | {s['pixel_error_original']:.4f} | "
              f"{s['rand_error_thinned']:.4f} ({s['rand_error_thinned_split']:.4f} / "
              f"{s['rand_error_thinned_merge']:.4f}) | {s['info_error_thinned']:.4f} "
              f"({s['info_error_thinned_split']:.4f} / {s['info_error_thinned_merge']:.4f}) | "
              f"{s['warping_error']:.6f} ({s['warping_error_splits']} / {s['warping_error_merges']}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
