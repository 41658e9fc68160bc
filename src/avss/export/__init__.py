"""Exporting separators for other runtimes (ONNX)."""
from avss.export.onnx import OnnxSeparator, export_onnx

__all__ = ["OnnxSeparator", "export_onnx"]
