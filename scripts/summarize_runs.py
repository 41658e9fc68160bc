"""Summarise training runs side by side from their learning_curve.csv files.

    python scripts/summarize_runs.py outputs/zoo [--markdown results/zoo_short_runs.md]

One row per run folder under the given directory: the model, its params and MACs per second of audio (from the
run's exported best_model.pt), steps, training hours, mixture-audio hours seen, throughput (audio seconds trained
per wall second) and the best validation SI-SNRi.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import torch

from avss.models.base import Separator
from avss.utils.benchmark import make_inputs
from avss.utils.complexity import macs_breakdown, param_breakdown


def summarize(run: Path) -> dict | None:
    curve = run / "learning_curve.csv"
    if not curve.is_file():
        return None
    rows = list(csv.DictReader(curve.open()))
    if not rows:
        return None
    last = rows[-1]
    best = max(rows, key=lambda r: float(r["val_si_snri"]))
    hours, audio_hours = float(last["train_hours"]), float(last["audio_hours_seen"])
    row = {"run": run.name, "model": "", "params_m": None, "gmacs_per_s": None, "steps": int(last["step"]),
           "train_hours": hours, "audio_hours": audio_hours,
           "audio_s_per_wall_s": audio_hours / hours if hours else None,
           "best_val_si_snri": float(best["val_si_snri"]), "best_step": int(best["step"])}
    model_path = run / "best_model.pt"
    if model_path.is_file():
        model = Separator.from_pretrained(model_path)
        row["model"] = type(model).__name__
        row["params_m"] = param_breakdown(model)["separator"] / 1e6
        row["gmacs_per_s"] = macs_breakdown(model, *make_inputs(model, 1.0)).separator / 1e9
    return row


def markdown(rows: list[dict]) -> str:
    head = ("| run | model | params (M) | GMACs / s audio | steps | train h | audio h seen | audio-s per wall-s "
            "| best val SI-SNRi (dB) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        def f(value, fmt):
            return "" if value is None else format(value, fmt)
        lines.append(f"| {r['run']} | {r['model']} | {f(r['params_m'], '.2f')} | {f(r['gmacs_per_s'], '.2f')} "
                     f"| {r['steps']} | {r['train_hours']:.2f} | {r['audio_hours']:.3f} "
                     f"| {f(r['audio_s_per_wall_s'], '.2f')} | {r['best_val_si_snri']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, help="folder whose sub-folders are train.py runs")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    rows = [r for r in (summarize(d) for d in sorted(args.runs.iterdir()) if d.is_dir()) if r is not None]
    if not rows:
        print(f"{args.runs}: no run folder with a learning_curve.csv", file=sys.stderr)
        return 1
    table = markdown(rows)
    print(table)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
