"""Shared plumbing of the entry points: one-line errors, paths, device choice, checkpoint loading."""
from __future__ import annotations

import sys
from pathlib import Path

from avss.io.errors import first_line


def err(line: str) -> None:
    """One line on stderr: how every expected problem is reported (no traceback). Goes through tqdm so an
    active progress bar is not broken."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


def resolve_path(path) -> Path:
    """Relative paths are taken from the directory the script was launched from."""
    path = Path(str(path)).expanduser()
    if path.is_absolute():
        return path
    try:
        from hydra.utils import get_original_cwd

        base = Path(get_original_cwd())
    except (ImportError, ValueError):  # not running under Hydra
        base = Path.cwd()
    return base / path


def pick_device(requested, prog: str) -> str | None:
    """'cpu' or 'cuda[:N]'; CUDA requested but missing falls back to the CPU with a message; None if invalid."""
    import torch

    name = str(requested or "cpu").strip()
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        err(f"{prog}: unknown device {name!r} (use cpu or cuda)")
        return None
    if device.type == "cuda" and not torch.cuda.is_available():
        err(f"{prog}: device={name} requested but CUDA is not available here; running on the CPU instead")
        return "cpu"
    return name


def checkpoint_exists(checkpoint: Path) -> bool:
    """True, or False after one line on stderr saying what to pass instead."""
    if checkpoint.is_file():
        return True
    err(f"{checkpoint}: checkpoint not found (pass checkpoint=PATH to a .pt written by save_pretrained "
        "or a .ckpt written by train.py)")
    return False


def load_checkpoint(checkpoint: Path):
    """The checkpoint's model (a `.onnx` export runs in ONNX Runtime), or None after one line on stderr (missing,
    corrupt or foreign file)."""
    from avss.models.base import Separator

    if not checkpoint_exists(checkpoint):
        return None
    try:
        if Path(checkpoint).suffix.lower() == ".onnx":  # an export of avss.export.onnx: runs in ONNX Runtime
            from avss.export.onnx import OnnxSeparator

            return OnnxSeparator.load(checkpoint)
        return Separator.from_pretrained(checkpoint, map_location="cpu")
    except Exception as error:  # corrupt file, foreign checkpoint, mismatched weights: one line, no traceback
        text = first_line(error)
        if text.startswith(f"{checkpoint}: "):
            text = text[len(f"{checkpoint}: "):]
        err(f"{checkpoint}: cannot load the checkpoint ({text})")
        return None


def run_settings(cfg, prog: str) -> tuple[str, dict] | None:
    """(device, options) from an entry point's config, or None after one line on stderr. `options`: the
    `separate_array` keywords chunk_seconds, overlap_seconds and those of the `refinement` group (shifts,
    flip_sign, mixture_consistency, spectral_filter)."""
    from avss.inference.chunked import check_settings

    device = pick_device(cfg.get("device", "cpu"), prog)
    if device is None:
        return None
    options = {"chunk_seconds": cfg.get("chunk_seconds", 8.0), "overlap_seconds": cfg.get("overlap_seconds", 1.0),
               **(cfg.get("refinement") or {})}
    try:
        check_settings(**options)
    except ValueError as error:
        err(f"{prog}: {error}")
        return None
    return device, options
