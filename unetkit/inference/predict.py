"""Overlap-tile prediction (paper, Fig. 2): images of any size, tile by tile, mirrored at the borders.

``predict_tiled`` is a pure function of (image array-like, predictor callable, net geometry, tile
size, ...). It reads one tile region at a time and writes into a preallocated output, so a
memory-mapped or zarr image is never loaded whole.

- valid nets: the image is mirrored by the margin the net loses (92 px for the paper's net), output
  tiles are placed on the pooling grid, and the stitched result equals one whole-image pass.
- same nets: tiles overlap and are blended with a Gaussian window (the centre has most context).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from unetkit.data.regions import read_region
from unetkit.inference import tiling
from unetkit.inference.tile_plan import NetGeometry, plan_tiles

Predictor = Callable[[np.ndarray], np.ndarray]  # (B, C, *tile) float32 -> (B, K, *tile_out) float32


def _batches(items: Iterator, size: int) -> Iterator[list]:
    while batch := list(itertools.islice(items, size)):
        yield batch


def predict_tiled(
    image,
    predictor: Predictor,
    geometry: NetGeometry,
    out_channels: int,
    tile_size: int | Sequence[int] = 256,
    overlap: float = 0.25,
    batch_size: int = 4,
    blend: str = "gaussian",
    output: np.ndarray | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Predict a channels-first image (C, *S) of any size; returns (out_channels, *S) float32.

    ``output`` may be a preallocated (out_channels, *S) array (e.g. a memory map) to write into.
    Valid nets write each output pixel once (overlapping tile edges agree exactly); same nets
    accumulate window-weighted predictions and divide by the summed weights.
    """
    spatial = tuple(image.shape[1:])
    if output is None:
        output = np.zeros((out_channels, *spatial), dtype=np.float32)
    elif tuple(output.shape) != (out_channels, *spatial):
        raise ValueError(f"output has shape {output.shape}, expected {(out_channels, *spatial)}")
    tile_in, tile_out, starts = plan_tiles(spatial, geometry, tile_size, overlap)
    positions = list(itertools.product(*starts))
    window = None
    weight_sum = None
    if geometry.padding == "same":
        window = tiling.gaussian_window(tile_out) if blend == "gaussian" else tiling.constant_window(tile_out)
        weight_sum = np.zeros(spatial, dtype=np.float32)
        output[...] = 0
    bar = tqdm(total=len(positions), desc="tiles", unit="tile", disable=not progress, leave=False)
    for batch in _batches(iter(positions), batch_size):
        tiles = np.stack([
            read_region(image, [s - m for s, m in zip(start, geometry.margin, strict=True)], tile_in)
            for start in batch
        ])
        predicted = predictor(tiles)  # (B, K, *tile_out)
        for start, tile_pred in zip(batch, predicted, strict=True):
            # crop tiles hanging over the image end (small images, last same-net tile)
            extent = [min(o, length - s) for s, o, length in zip(start, tile_out, spatial, strict=True)]
            region = tuple(slice(s, s + e) for s, e in zip(start, extent, strict=True))
            local = tuple(slice(0, e) for e in extent)
            if window is None:
                output[(slice(None), *region)] = tile_pred[(slice(None), *local)]
            else:
                output[(slice(None), *region)] += tile_pred[(slice(None), *local)] * window[local]
                weight_sum[region] += window[local]
        bar.update(len(batch))
    bar.close()
    if weight_sum is not None:
        output /= weight_sum[None]
    return output


class TorchPredictor:
    """Wrap a network as a numpy tile predictor: batching to the device, activation, flip TTA.

    ``activation``: ``softmax`` (class probabilities), ``sigmoid`` or ``none`` (regression). ``amp``:
    bf16 autocast on CUDA; ``cpu_bf16``: bf16 autocast on a CPU (``inference.precision``).
    """

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu", activation: str = "softmax",
                 tta: bool = False, amp: bool = True, cpu_bf16: bool = False):
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.activation = activation
        self.tta = tta
        self.amp = amp if self.device.type == "cuda" else cpu_bf16 and self.device.type == "cpu"

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits = self.model(x)
        logits = logits.float()
        if self.activation == "softmax":
            return torch.softmax(logits, dim=1)
        if self.activation == "sigmoid":
            return torch.sigmoid(logits)
        return logits

    @torch.inference_mode()
    def __call__(self, tiles: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(tiles)).to(self.device)
        if not self.tta:
            return self._forward(x).cpu().numpy()
        spatial_axes = list(range(2, x.ndim))
        total = None
        flips = [list(c) for r in range(len(spatial_axes) + 1) for c in itertools.combinations(spatial_axes, r)]
        for axes in flips:  # every combination of flipped axes; flipping back keeps geometry exact
            y = self._forward(torch.flip(x, axes) if axes else x)
            y = torch.flip(y, axes) if axes else y
            total = y if total is None else total + y
        return (total / len(flips)).cpu().numpy()
