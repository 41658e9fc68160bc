"""Cached lip embeddings: run a (frozen) lip frontend once over every mouth file, train from the results.

Layout, next to the mouth folder (course layout: `DIR/mouths/<ID>.npz`):

    DIR/mouths_emb/<tag>/<ID>.npy        float32 [T, D], one row per video frame of DIR/mouths/<ID>.npz
    DIR/mouths_emb/<tag>/frontend.json   what made them: frontend kind, output size, weight fingerprint, source

The tag is `<kind>-d<D>-<fingerprint>`, the fingerprint a hash of the frontend's structure, weights and batch-norm
statistics, so embeddings of one frontend are never taken for another's. A cached file is up to date when it is
newer than its mouth file. Datasets read them with `visual_cache=<tag>` (or a folder path) and yield `mouths` as
float32 [S, T, D], which `Separator.visual_features` passes straight to the separator, bypassing the frontend.
Training from a cache therefore keeps the whole frontend fixed, including any trainable projection.

`extract_directory` is the library entry; `main(cfg)` is the body of `extract_visual_features.py`.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from avss.data.mouths import load_mouths
from avss.io.errors import InputError, first_line

CACHE_SUFFIX = "_emb"  # DIR/mouths -> DIR/mouths_emb
INFO_FILE = "frontend.json"
USAGE = ("usage: python extract_visual_features.py data_dir=DIR (checkpoint=MODEL.pt | "
         "lip_frontend={kind:lrw_resnet18,activation:prelu,checkpoint:PATH}) [device=cpu|cuda] [batch_frames=256]")


# --------------------------------------------------------------------------------------------- naming
def cache_root(mouth_dir) -> Path:
    """`DIR/mouths` -> `DIR/mouths_emb` (one sub-folder per frontend tag)."""
    mouth_dir = Path(mouth_dir)
    return mouth_dir.parent / f"{mouth_dir.name}{CACHE_SUFFIX}"


def resolve_cache_dir(visual_cache, mouth_dir) -> Path:
    """`visual_cache` is a tag (a bare name: `<mouth_dir>_emb/<tag>`) or a folder path (absolute or with a "/")."""
    path = Path(str(visual_cache)).expanduser()
    if path.is_absolute() or len(path.parts) > 1:
        return path
    return cache_root(mouth_dir) / path.name


def cached_path(mouth_path, visual_cache) -> Path:
    """Where the embeddings of the mouth file `mouth_path` (`.../<ID>.npz`) are cached: `<cache dir>/<ID>.npy`."""
    mouth_path = Path(mouth_path)
    return resolve_cache_dir(visual_cache, mouth_path.parent) / f"{mouth_path.stem}.npy"


def is_up_to_date(cache_path: Path, mouth_path: Path) -> bool:
    try:
        return cache_path.stat().st_mtime_ns >= mouth_path.stat().st_mtime_ns
    except OSError:
        return False


def frontend_kind(frontend: torch.nn.Module) -> str:
    return str(getattr(frontend, "kind", type(frontend).__name__.lower()))


def frontend_fingerprint(frontend: torch.nn.Module) -> str:
    """sha256 of the frontend's class, structure (its repr), preprocessing constants and every parameter and
    buffer that influences the output (batch-norm counters excluded)."""
    from avss.nn.visual import LIP_CROP, LIP_MEAN, LIP_STD

    digest = hashlib.sha256()
    digest.update(f"{type(frontend).__module__}.{type(frontend).__qualname__}\n{frontend!r}\n".encode())
    digest.update(f"{LIP_MEAN} {LIP_STD} {LIP_CROP}\n".encode())
    for name, tensor in sorted(frontend.state_dict().items()):
        if name.endswith("num_batches_tracked"):
            continue
        value = tensor.detach().to("cpu", torch.float32).contiguous()
        digest.update(f"{name} {list(value.shape)}\n".encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()


def output_dim(frontend: torch.nn.Module) -> int:
    """Embedding size D of the frontend (from `emb_dim`, else from one tiny forward pass)."""
    dim = getattr(frontend, "emb_dim", None)
    if dim is not None:
        return int(dim)
    with torch.inference_mode():
        return int(frontend(torch.zeros(1, 1, 96, 96, dtype=torch.uint8)).shape[1])


def frontend_tag(frontend: torch.nn.Module, fingerprint: str | None = None) -> str:
    """`<kind>-d<D>-<first 12 hex digits of the fingerprint>`, e.g. `lrw_resnet18-d512-3f09a1c2b7de`."""
    fingerprint = fingerprint or frontend_fingerprint(frontend)
    return f"{frontend_kind(frontend)}-d{output_dim(frontend)}-{fingerprint[:12]}"


# --------------------------------------------------------------------------------------------- computing
@torch.inference_mode()
def embed_frames(frontend: torch.nn.Module, frames: np.ndarray, batch_frames: int = 256,
                 device="cpu") -> np.ndarray:
    """Mouth frames uint8 [T, 96, 96] -> embeddings float32 [T, D], `frontend` in eval mode.

    Long clips run in pieces of `batch_frames` frames, each with `frontend.temporal_context` neighbouring frames
    on both sides, so the result equals one pass over the whole clip.
    """
    if batch_frames < 1:
        raise ValueError(f"batch_frames must be >= 1, got {batch_frames}")
    was_training = frontend.training
    frontend.eval()
    try:
        x = torch.from_numpy(np.ascontiguousarray(frames))[None].to(device)  # [1, T, H, W]
        t = x.shape[1]
        context = getattr(frontend, "temporal_context", None)
        if context is None or t <= batch_frames:
            return frontend(x)[0].transpose(0, 1).float().cpu().numpy()
        pieces = []
        for start in range(0, t, batch_frames):
            stop = min(t, start + batch_frames)
            lo, hi = max(0, start - context), min(t, stop + context)
            out = frontend(x[:, lo:hi])[0, :, start - lo:stop - lo]  # [D, stop - start]
            pieces.append(out.transpose(0, 1).float().cpu())
        return torch.cat(pieces).numpy()
    finally:
        frontend.train(was_training)


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Write through a hidden temporary file, so an interrupted run never leaves a truncated cache file."""
    temp = path.with_name(f".{path.stem}.partial.npy")
    try:
        np.save(temp, np.ascontiguousarray(array, dtype=np.float32))
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


@dataclass
class Report:
    """Outcome of `extract_directory`: mouth files embedded, skipped (up to date) and failed (path, reason)."""

    out_dir: str = ""
    tag: str = ""
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def extract_directory(frontend: torch.nn.Module, mouth_dir, out_dir=None, batch_frames: int = 256, device="cpu",
                      overwrite: bool = False, progress: bool = True, source: str = "", log=None) -> Report:
    """Embed every `mouth_dir/<ID>.npz` into `out_dir/<ID>.npy` (default `<mouth_dir>_emb/<tag>`).

    Files that are up to date are skipped unless `overwrite`; each unreadable mouth file is reported as one line
    through `log` and skipped. Raises InputError when `mouth_dir` is missing or holds no npz files.
    """
    from tqdm import tqdm

    from avss.utils.cli import err

    log = log or err
    mouth_dir = Path(mouth_dir)
    if not mouth_dir.is_dir():
        raise InputError(mouth_dir, "mouth directory not found", "pass data_dir=DIR holding mouths/<ID>.npz")
    paths = sorted(p for p in mouth_dir.glob("*.npz") if p.is_file() and not p.name.startswith("."))
    if not paths:
        raise InputError(mouth_dir, "no mouth files (<ID>.npz) found", "pass data_dir=DIR holding mouths/<ID>.npz")
    frontend = frontend.to(device).eval()
    fingerprint = frontend_fingerprint(frontend)
    tag = frontend_tag(frontend, fingerprint)
    out_dir = Path(out_dir) if out_dir is not None else cache_root(mouth_dir) / tag
    out_dir.mkdir(parents=True, exist_ok=True)
    info = {"tag": tag, "kind": frontend_kind(frontend), "dim": output_dim(frontend), "sha256": fingerprint,
            "source": str(source), "mouth_dir": str(mouth_dir), "layout": "<ID>.npy float32 [T, D], 25 fps"}
    (out_dir / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n")

    report = Report(out_dir=str(out_dir), tag=tag)
    for path in tqdm(paths, desc="embedding", unit="file", file=sys.stderr, disable=not progress,
                     dynamic_ncols=True):
        target = out_dir / f"{path.stem}.npy"
        if not overwrite and is_up_to_date(target, path):
            report.skipped.append(str(path))
            continue
        try:
            embeddings = embed_frames(frontend, load_mouths(path), batch_frames=batch_frames, device=device)
        except InputError as error:
            log(error.one_line())
            report.failed.append((str(path), error.reason))
            continue
        try:
            _save_npy(target, embeddings)
        except OSError as error:
            reason = f"cannot write {target} ({error.strerror or error})"
            log(f"{path}: {reason}")
            report.failed.append((str(path), reason))
            continue
        report.done.append(str(path))
    return report


def load_cached(path) -> np.ndarray:
    """Read one cached embedding file as float32 [T, D]; InputError (one line) if unreadable or misshapen."""
    hint = "re-run extract_visual_features.py with overwrite=true"
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as error:
        raise InputError(path, f"cannot read cached lip embeddings ({first_line(error)})", hint) from None
    if array.ndim != 2 or array.shape[0] == 0 or array.dtype.kind != "f":
        raise InputError(path, f"cached lip embeddings have shape {list(array.shape)} ({array.dtype}); "
                               "expected float [T, D]", hint)
    return array.astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------- script body

def _build_frontend(cfg):
    """(frontend, description of its source) from `checkpoint=` or `lip_frontend=`, or None after one line."""
    from avss.models.base import plain_config
    from avss.nn.lip_resnet import LRW_DIM
    from avss.nn.visual import make_lip_frontend
    from avss.utils.cli import err, load_checkpoint, resolve_path
    from avss.utils.weight_files import skip_weight_files

    checkpoint, config = cfg.get("checkpoint"), plain_config(cfg.get("lip_frontend"))
    if bool(checkpoint) == bool(config):
        err(f"extract_visual_features: give exactly one of checkpoint=MODEL.pt and lip_frontend={{...}} ({USAGE})")
        return None
    if checkpoint:
        path = resolve_path(checkpoint)
        with skip_weight_files():  # the avss checkpoint holds the frontend's weights itself
            model = load_checkpoint(path)
        if model is None:
            return None
        frontend = getattr(model, "lip_frontend", None)
        if frontend is None:
            err(f"{path}: {type(model).__name__} has no lip frontend (use an audio-visual checkpoint)")
            return None
        return frontend, str(path)
    if not isinstance(config, dict):
        err(f"extract_visual_features: lip_frontend must be a mapping like {{kind: lrw_resnet18, checkpoint: PATH}}, "
            f"got {config!r}")
        return None
    config = dict(config)
    if not config.get("checkpoint"):
        err("extract_visual_features: lip_frontend has no checkpoint, so its weights would be random and the "
            "cached embeddings useless (pass lip_frontend.checkpoint=PATH, or checkpoint=MODEL.pt of a trained model)")
        return None
    config["checkpoint"] = str(resolve_path(config["checkpoint"]))
    emb_dim = int(config.pop("emb_dim", LRW_DIM))
    try:
        frontend = make_lip_frontend(config, emb_dim)
    except (OSError, ValueError, TypeError) as error:
        err(f"extract_visual_features: cannot build the lip frontend ({first_line(error)})")
        return None
    return frontend, json.dumps(config, sort_keys=True)


def main(cfg) -> int:
    """`extract_visual_features.py` body: build the frontend, embed every mouth file; return the exit code
    (0 all cached, 1 some mouth files failed, 2 unusable arguments)."""
    from avss.utils.cli import err, pick_device, resolve_path

    if not cfg.get("data_dir") and not cfg.get("mouth_dir"):
        err(f"extract_visual_features: data_dir is required ({USAGE})")
        return 2
    mouth_dir = resolve_path(cfg["mouth_dir"]) if cfg.get("mouth_dir") else resolve_path(cfg["data_dir"]) / "mouths"
    if not mouth_dir.is_dir():
        err(f"{mouth_dir}: mouth directory not found (pass data_dir=DIR holding mouths/<ID>.npz)")
        return 2
    batch_frames = cfg.get("batch_frames", 256)
    if not isinstance(batch_frames, int) or isinstance(batch_frames, bool) or batch_frames < 1:
        err(f"extract_visual_features: batch_frames must be a positive integer, got {batch_frames!r}")
        return 2
    device = pick_device(cfg.get("device", "cpu"), "extract_visual_features")
    if device is None:
        return 2
    built = _build_frontend(cfg)
    if built is None:
        return 2
    frontend, source = built
    trainable = any(p.requires_grad for p in frontend.parameters())
    out_dir = resolve_path(cfg["out_dir"]) if cfg.get("out_dir") else None
    try:
        report = extract_directory(frontend, mouth_dir, out_dir=out_dir, batch_frames=batch_frames, device=device,
                                   overwrite=bool(cfg.get("overwrite", False)),
                                   progress=bool(cfg.get("progress", True)), source=source)
    except InputError as error:
        err(error.one_line())
        return 2
    print(f"cached {len(report.done)} lip embeddings ({len(report.skipped)} already up to date) in "
          f"{report.out_dir}", flush=True)
    where = report.tag if out_dir is None else report.out_dir
    print(f"train from them with data.train.visual_cache={where}", flush=True)
    if trainable:
        print("note: this frontend has trainable weights; training from the cache keeps it fixed at these weights",
              flush=True)
    if report.failed:
        err(f"{len(report.failed)} mouth files failed (see the messages above); nothing was cached for them")
        return 1
    return 0
