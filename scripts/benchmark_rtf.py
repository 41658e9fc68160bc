"""CPU real-time factor of a checkpoint on a long mixture, through the same path as inference.py.

    python scripts/benchmark_rtf.py [--checkpoint checkpoints/default.pt] [--seconds 10] [--threads 2]
                                    [--repeats 5] [--backends torch,onnx] [--plain] [--json results/rtf_default.json]

The mixture is the first bundled example tiled to `--seconds`. For each backend (PyTorch eager under
inference_mode; ONNX Runtime on the exported core, see avss.export.onnx) it times `separate_array` (level
normalisation, chunking with the default 8-s chunks and 1-s overlaps, cross-fades, the default test-time
refinement or with `--plain` one pass per chunk) after one warm-up call, `--repeats` times, and reports mean/min
wall time and RTF = time / audio duration. Run it on an idle machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from avss.utils.results import write_json

ROOT = Path(__file__).resolve().parents[1]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def example_mixture(seconds: float) -> tuple[np.ndarray, int]:
    from avss.data.custom_dir import scan_custom_dir
    from avss.io.audio import load_audio

    entry = scan_custom_dir(ROOT / "examples")[0]
    audio, rate = load_audio(entry.mix)
    n = round(seconds * rate)
    return np.resize(audio, n).astype(np.float32), rate  # np.resize tiles the signal


def time_backend(model, mix, rate, repeats, refinement: dict) -> list[float]:
    from avss.inference import separate_array

    separate_array(model, mix, rate, **refinement)  # warm-up: thread pools, first-call allocations
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        separate_array(model, mix, rate, **refinement)
        times.append(time.perf_counter() - start)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "checkpoints" / "default.pt")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backends", default="torch,onnx")
    parser.add_argument("--plain", action="store_true", help="one model pass per chunk (refinement=none)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from avss.export.onnx import OnnxSeparator, export_onnx
    from avss.inference.refine import DEFAULT_REFINEMENT, NO_REFINEMENT
    from avss.models.base import Separator

    torch.set_num_threads(args.threads)
    model = Separator.from_pretrained(args.checkpoint)
    mix, rate = example_mixture(args.seconds)
    refinement = dict(NO_REFINEMENT if args.plain else DEFAULT_REFINEMENT)
    results = {"checkpoint": str(args.checkpoint), "model": type(model).__name__, "seconds": args.seconds,
               "sample_rate": rate, "threads": args.threads, "repeats": args.repeats, "cpu": cpu_name(),
               "cores": os.cpu_count(), "torch": torch.__version__, "refinement": refinement, "backends": {}}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend == "torch":
            runner = model
        elif backend == "onnx":
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    runner = OnnxSeparator.load(export_onnx(model, Path(tmp) / "model.onnx"), threads=args.threads)
            except NotImplementedError as err:  # e.g. a two-stage model: no single exportable core
                print(f"  onnx: skipped ({err})", flush=True)
                results["backends"][backend] = {"skipped": str(err)}
                continue
        else:
            print(f"unknown backend {backend!r} (torch, onnx)", file=sys.stderr)
            return 2
        times = time_backend(runner, mix, rate, args.repeats, refinement)
        mean = statistics.mean(times)
        results["backends"][backend] = {"mean_s": round(mean, 4), "min_s": round(min(times), 4),
                                        "rtf_mean": round(mean / args.seconds, 4),
                                        "rtf_min": round(min(times) / args.seconds, 4)}
        print(f"{backend:>6}: {args.seconds:g} s of audio in {mean:.3f} s (min {min(times):.3f} s) -> "
              f"RTF {mean / args.seconds:.4f}", flush=True)
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
