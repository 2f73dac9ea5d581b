"""Pretrained models that ship inside the package: ``unetkit predict --model nuclei images/ --out out/``.

Each model is a folder ``unetkit/pretrained/<name>/`` holding ``weights.pt`` (a gzipped unetkit checkpoint
with 8-bit weights: int8 per output channel, biases and batch norm in fp16; its run config and tuned
post-processing; no optimizer state) and ``card.yaml``
(version, sha256 of the weights, training data and command, hours and CPU, validation scores per
image type, known limits). Nothing is ever downloaded: a name resolves to the packaged file, whose
sha256 is checked against its card before it is loaded.

``resolve_model(name_or_path)`` is the one call the loaders make: an existing path wins over a
model name (a run folder called ``nuclei`` stays yours), a registered name gives its weights file,
anything else comes back unchanged for the loader's own "not found" message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unetkit.errors import InputError

ROOT = Path(__file__).resolve().parent
WEIGHTS = "weights.pt"
CARD = "card.yaml"


@dataclass(frozen=True)
class ModelCard:
    """What ``card.yaml`` says about a packaged model (``fields`` holds the whole card)."""

    name: str
    version: int
    task: str
    summary: str
    sha256: str
    weights: Path
    fields: dict[str, Any] = field(default_factory=dict)


def _read_card(folder: Path) -> ModelCard:
    import yaml

    path = folder / CARD
    try:
        values = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise InputError(f"{path}: unreadable model card ({error}); reinstall unetkit") from error
    missing = [key for key in ("version", "task", "summary", "sha256") if key not in (values or {})]
    if missing:
        raise InputError(f"{path}: model card lacks {', '.join(missing)}; reinstall unetkit")
    return ModelCard(folder.name, int(values["version"]), str(values["task"]), str(values["summary"]),
                     str(values["sha256"]), folder / WEIGHTS, values)


def list_models() -> list[ModelCard]:
    """Cards of the packaged models (folders with a card and weights), sorted by name."""
    return [_read_card(folder) for folder in sorted(ROOT.iterdir())
            if (folder / CARD).is_file() and (folder / WEIGHTS).is_file()]


def model_card(name: str) -> ModelCard:
    """The card of packaged model ``name``; InputError naming the available ones otherwise."""
    folder = ROOT / name
    if not name or "/" in name or "\\" in name or not (folder / CARD).is_file():
        names = ", ".join(card.name for card in list_models()) or "none"
        raise InputError(f"no packaged model '{name}'; available: {names} (see `unetkit models`)")
    return _read_card(folder)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_weights(name: str) -> Path:
    """The weights file of packaged model ``name`` after checking its sha256 against the card."""
    card = model_card(name)
    if not card.weights.is_file():
        raise InputError(f"packaged model '{name}' has no {WEIGHTS}; reinstall unetkit")
    actual = sha256_of(card.weights)
    if actual != card.sha256:
        raise InputError(f"{card.weights}: sha256 {actual[:12]}... differs from its card ({card.sha256[:12]}...); "
                         "the file is damaged or was changed: reinstall unetkit")
    return card.weights


def is_packaged(name_or_path: str | Path) -> bool:
    """Whether ``name_or_path`` names a packaged model rather than an existing file or folder."""
    text = str(name_or_path)
    return not Path(text).exists() and "/" not in text and (ROOT / text / CARD).is_file()


def resolve_model(name_or_path: str | Path) -> Path:
    """A checkpoint path for ``--model``: an existing path as given, a packaged model's verified
    weights for its name (e.g. ``nuclei``), otherwise the path unchanged (the loader reports it)."""
    if is_packaged(name_or_path):
        return verified_weights(str(name_or_path))
    return Path(name_or_path)
