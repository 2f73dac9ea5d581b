"""Exports of a checkpoint for other runtimes and tools: ONNX and TorchScript files (``formats``) and
BioImage Model Zoo packages (``bioimageio``), each verified against PyTorch. The reading side of ONNX and
TorchScript files is ``unetkit.inference.exported``; ``unetkit.export_model`` is the public entry."""

from unetkit.export.bioimageio import BioimageioResult, export_bioimageio
from unetkit.export.formats import FORMATS, ExportResult, export_model

__all__ = ["FORMATS", "BioimageioResult", "ExportResult", "export_bioimageio", "export_model"]
