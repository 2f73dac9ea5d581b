"""TernausNet11 (Iglovikov and Shvets 2018): a U-Net whose encoder is the convolutional part of VGG11.

The encoder is ``torchvision.models.vgg11().features`` layer for layer, with the same indices, so an
ImageNet state dict saved by torchvision (keys ``features.N.weight`` / ``features.N.bias``) loads
without renaming. VGG11 ("configuration A") has 8 convolutions and 5 max-pools::

    index   layer                    output (for a 256 x 256 input)
     0, 1   conv 3->64, ReLU          64 x 256 x 256   -> skip 1
     2      max-pool                  64 x 128 x 128
     3, 4   conv 64->128, ReLU       128 x 128 x 128   -> skip 2
     5      max-pool                 128 x  64 x  64
     6..9   conv 128->256, conv 256->256 (ReLU each)   -> skip 3 (256 x 64 x 64)
    10      max-pool                 256 x  32 x  32
    11..14  conv 256->512, conv 512->512               -> skip 4 (512 x 32 x 32)
    15      max-pool                 512 x  16 x  16
    16..19  conv 512->512, conv 512->512               -> skip 5 (512 x 16 x 16)
    20      max-pool                 512 x   8 x   8

The decoder (paper, Fig. 1) goes back up with blocks of a 3x3 conv + ReLU and a 3x3 transposed conv
(stride 2) + ReLU that doubles the size and sets the channels; each result is concatenated with the
skip of that size: centre 512 -> 256 (1/16), [256 + 512] -> 512 -> 256 (1/8), [256 + 512] -> 512 -> 128
(1/4), [128 + 256] -> 256 -> 64 (1/2), [64 + 128] -> 128 -> 32 (1/1), then [32 + 64] -> 3x3 conv -> 32
and a 1x1 conv to the logits. Inputs must be divisible by 32 (five poolings). Convolutions are padded,
so the output has the input's size. There is no normalisation layer (plain VGG11, not VGG11-BN).

The network takes 3-channel images in [0, 1] (unetkit's percentile normalisation) and applies the
ImageNet mean/std itself, so pretrained filters see the statistics they were trained on; gray images
(1 channel) are replicated to 3 channels inside ``forward``.

Example::

    net = TernausNet11(in_channels=1, out_channels=2)
    net(torch.zeros(1, 1, 64, 96)).shape        # (1, 2, 64, 96)
    load_encoder_weights(net, "vgg11.pth")      # torchvision ImageNet weights, saved on another machine
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from unetkit.errors import InputError
from unetkit.models.blocks import he_init

# torchvision's VGG11 ("A"): output channels of each conv, "M" = 2x2 max-pool.
VGG11_LAYOUT = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DIVISOR = 32  # 2 ** 5 poolings: input sides must be multiples of this


def vgg11_features() -> nn.Sequential:
    """VGG11's convolutional part with torchvision's layer indices (conv layers at 0, 3, 6, 8, 11, 13, 16, 18)."""
    layers: list[nn.Module] = []
    channels = 3
    for item in VGG11_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = int(item)
    return nn.Sequential(*layers)


def encoder_shapes() -> dict[str, tuple[int, ...]]:
    """Expected ``features.N.weight/bias`` shapes of a VGG11 state dict, e.g. features.0.weight (64, 3, 3, 3)."""
    return {f"features.{key}": tuple(value.shape) for key, value in vgg11_features().state_dict().items()}


def receptive_field() -> int:
    """Receptive field in px: the widest input span one output pixel depends on (same on both axes).

    Computed exactly by walking dependency intervals back through every layer (a 3x3 conv widens by one
    pixel per side, a 2x2 pool doubles, a stride-2 3x3 transposed conv maps output o to the inputs i with
    2i - 1 <= o <= 2i + 1, a concatenation unites its two branches), maximised over the 32 alignments of
    the output pixel to the pooling grid.
    """
    convs = [len(group) for group in _levels()]  # convs per encoder level: 1, 1, 2, 2, 2

    def encoder_back(level: int, lo: int, hi: int) -> tuple[int, int]:
        lo, hi = lo - convs[level], hi + convs[level]
        return (lo, hi) if level == 0 else encoder_back(level - 1, 2 * lo, 2 * hi + 1)

    def up_back(level: int, lo: int, hi: int) -> tuple[int, int]:
        """Interval on the up-sampled map entering level ``level``'s concatenation."""
        lo, hi = -((1 - lo) // 2), (hi + 1) // 2  # transposed conv: ceil((lo - 1) / 2) .. floor((hi + 1) / 2)
        lo, hi = lo - 1, hi + 1  # the 3x3 conv before it, one level deeper
        deeper = level + 1
        if deeper == len(convs):  # the centre block reads the last pooled encoder map
            return encoder_back(deeper - 1, 2 * lo, 2 * hi + 1)
        return _union(encoder_back(deeper, lo, hi), up_back(deeper, lo, hi))

    widest = 0
    for position in range(DIVISOR):
        lo, hi = position - 1, position + 1  # the last 3x3 conv (the head is 1x1)
        lo, hi = _union(encoder_back(0, lo, hi), up_back(0, lo, hi))
        widest = max(widest, hi - lo + 1)
    return widest


def _levels() -> list[list[int]]:
    """Output channels of the convs of each encoder level of VGG11: [[64], [128], [256, 256], ...]."""
    levels: list[list[int]] = [[]]
    for item in VGG11_LAYOUT[:-1]:
        if item == "M":
            levels.append([])
        else:
            levels[-1].append(int(item))
    return levels


def _union(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return min(a[0], b[0]), max(a[1], b[1])


class ConvReLU(nn.Sequential):
    """3x3 padded convolution + ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True))


class DecoderBlock(nn.Sequential):
    """3x3 conv + ReLU, then a stride-2 3x3 transposed conv + ReLU: (B, in, H, W) -> (B, out, 2H, 2W)."""

    def __init__(self, in_channels: int, middle_channels: int, out_channels: int):
        super().__init__(
            ConvReLU(in_channels, middle_channels),
            # padding 1 + output_padding 1 make the output exactly twice the input size
            nn.ConvTranspose2d(middle_channels, out_channels, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(inplace=True),
        )


class TernausNet11(nn.Module):
    """U-Net with a VGG11 encoder (TernausNet, Iglovikov and Shvets 2018); returns logits.

    Args:
        in_channels: 1 (gray, replicated to RGB) or 3 (RGB); the encoder always sees 3 channels.
        out_channels: logits per pixel (binary 2, three-class 3, K classes, regression channels).
        decoder_channels: width of the last decoder level (paper: 32; the levels above use 2x .. 16x).
        init: ``default`` (PyTorch) or ``he`` (Kaiming normal, as VGG is initialised for training from scratch).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 2, decoder_channels: int = 32,
                 init: str = "default"):
        super().__init__()
        if in_channels not in (1, 3):
            raise InputError(
                f"ternaus11 takes gray (1) or RGB (3) images, got in_channels={in_channels}; its VGG11 encoder "
                "expects RGB, so convert other images to RGB or use model.name=unet"
            )
        if init not in ("default", "he"):
            raise InputError(f"init must be one of default, he; got '{init}'")
        f = decoder_channels  # paper: 32
        self.in_channels = in_channels
        self.encoder = vgg11_features()
        self.center = DecoderBlock(512, 16 * f, 8 * f)  # 1/32 -> 1/16
        self.decoders = nn.ModuleList([
            DecoderBlock(512 + 8 * f, 16 * f, 8 * f),  # skip 5 (512, 1/16) -> 1/8
            DecoderBlock(512 + 8 * f, 16 * f, 4 * f),  # skip 4 (512, 1/8) -> 1/4
            DecoderBlock(256 + 4 * f, 8 * f, 2 * f),  # skip 3 (256, 1/4) -> 1/2
            DecoderBlock(128 + 2 * f, 4 * f, f),  # skip 2 (128, 1/2) -> 1/1
        ])
        self.last = ConvReLU(64 + f, f)  # skip 1 (64, 1/1)
        self.head = nn.Conv2d(f, out_channels, kernel_size=1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if init == "he":
            self.apply(he_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) in [0, 1], H and W multiples of 32 -> logits (B, out_channels, H, W)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ternaus11 expects (B, {self.in_channels}, H, W) input, got {tuple(x.shape)}")
        bad = [s for s in x.shape[2:] if s % DIVISOR]
        if bad:
            raise ValueError(
                f"ternaus11 input sides must be multiples of {DIVISOR} (five 2x2 poolings); got "
                f"{tuple(x.shape[2:])}, e.g. use {tuple(max(DIVISOR, s // DIVISOR * DIVISOR) for s in x.shape[2:])}"
            )
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # gray -> RGB without copying
        x = (x - self.mean) / self.std  # ImageNet statistics, as the pretrained filters expect
        skips = []
        for layer in self.encoder:
            if isinstance(layer, nn.MaxPool2d):
                skips.append(x)  # the last map of each level, before it is pooled
            x = layer(x)
        x = self.center(x)  # (B, 8f, H/16, W/16)
        for decoder in self.decoders:
            x = decoder(torch.cat([x, skips.pop()], dim=1))
        x = self.last(torch.cat([x, skips.pop()], dim=1))  # (B, f, H, W)
        return self.head(x)


# --------------------------------------------------------------------------------------------------
# pretrained encoder weights


def _read_state_dict(path: Path) -> Mapping[str, torch.Tensor]:
    """Tensors of a saved state dict (plain, or wrapped under 'state_dict' / 'model'), 'module.' removed."""
    if not path.is_file():
        raise FileNotFoundError(
            f"encoder weights file not found: {path}; save torchvision's VGG11 ImageNet weights on a connected "
            "machine with torch.save(torchvision.models.vgg11(weights='IMAGENET1K_V1').state_dict(), "
            "'vgg11.pth') and copy the file here"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for foreign or pickled-module files
        raise InputError(
            f"{path}: cannot read it as a PyTorch state dict ({type(error).__name__}: {error}); save the "
            "weights with torch.save(model.state_dict(), path), not the whole model"
        ) from error
    for key in ("state_dict", "model"):
        if isinstance(payload, dict) and isinstance(payload.get(key), dict):
            payload = payload[key]
    if not isinstance(payload, dict) or not all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise InputError(f"{path}: holds a {type(payload).__name__}, not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in payload.items()}


def check_encoder_state(state: Mapping[str, torch.Tensor], source: str = "state dict") -> dict[str, torch.Tensor]:
    """The ``features.*`` tensors of a torchvision VGG11 state dict with their prefix removed
    (``features.3.weight`` -> ``3.weight``), after checking every key and shape.

    Other keys (``classifier.*``) are ignored. Raises InputError naming missing, unexpected or mis-shaped
    keys, and says so when the dict is VGG11-BN or a deeper VGG.
    """
    expected = encoder_shapes()
    features = {k: v for k, v in state.items() if k.startswith("features.")}
    if not features:
        shown = ", ".join(list(state)[:4]) or "none"
        raise InputError(
            f"{source}: no 'features.N.weight' keys (keys start with: {shown}); expected torchvision's VGG11 "
            "state dict, e.g. torchvision.models.vgg11(weights='IMAGENET1K_V1').state_dict()"
        )
    if any(k.endswith(("running_mean", "running_var")) for k in features):
        raise InputError(
            f"{source}: has batch-norm statistics (features.N.running_mean), so it is VGG11-BN (vgg11_bn) or "
            "another BN network; ternaus11 uses plain VGG11: save torchvision.models.vgg11(...).state_dict()"
        )
    missing = sorted(set(expected) - set(features), key=_layer_order)
    unexpected = sorted(set(features) - set(expected), key=_layer_order)
    wrong = [f"{k}: expected {expected[k]}, got {tuple(features[k].shape)}"
             for k in sorted(set(expected) & set(features), key=_layer_order)
             if tuple(features[k].shape) != expected[k]]
    if missing or unexpected or wrong:
        problems = []
        if missing:
            problems.append(f"missing keys {', '.join(missing)}")
        if unexpected:
            problems.append(f"unexpected keys {', '.join(unexpected[:6])}" + (" ..." if len(unexpected) > 6 else ""))
        if wrong:
            problems.append("wrong shapes " + "; ".join(wrong[:4]) + (" ..." if len(wrong) > 4 else ""))
        hint = " (more layers than VGG11: VGG13/16/19 do not fit)" if unexpected else ""
        raise InputError(
            f"{source}: not a VGG11 encoder{hint}: {'; '.join(problems)}. ternaus11 expects torchvision's VGG11 "
            "features: conv layers at indices 0, 3, 6, 8, 11, 13, 16, 18"
        )
    return {k.removeprefix("features."): v.float() for k, v in features.items()}


def _layer_order(key: str) -> tuple[int, str]:
    parts = key.split(".")
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1, key)


def load_encoder_weights(model: nn.Module, path: str | Path) -> int:
    """Copy a torchvision VGG11 state dict file into ``model.encoder``; returns the tensors loaded (16).

    Nothing is downloaded: the file is made on a connected machine (see the module docstring).
    """
    path = Path(path)
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, nn.Sequential):
        raise InputError(
            f"model {type(model).__name__} has no VGG encoder to load {path} into; use model.name=ternaus11"
        )
    tensors = check_encoder_state(_read_state_dict(path), str(path))
    encoder.load_state_dict(tensors, strict=True)
    return len(tensors)


def set_encoder_frozen(model: nn.Module, frozen: bool) -> bool:
    """Stop (or restart) training of ``model.encoder``; returns False when the model has no encoder.

    Frozen parameters get no gradient, so the optimizer skips them (no update, no weight decay).
    """
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        return False
    for parameter in encoder.parameters():
        parameter.requires_grad_(not frozen)
    return True
