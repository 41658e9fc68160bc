"""Body of the `calc_metrics.py` entry point: config in, exit code out."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from tqdm import tqdm

from avss.io.errors import InputError
from avss.metrics.evaluate import evaluate_dir
from avss.metrics.report import csv_path_for, format_table, write_results

USAGE = "usage: python calc_metrics.py gt_dir=DATASET_DIR pred_dir=OUTPUT_DIR [save_json=FILE] [permute=true]"


def _err(line: str) -> None:
    tqdm.write(line, file=sys.stderr)  # keeps the progress bar intact


def _check_writable(json_path: Path) -> None:
    """Fail before the (long) evaluation if the results cannot be written."""
    try:
        json_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(json_path.parent, f"cannot create the output folder ({error.strerror})",
                         "choose another save_json") from None
    for path in (json_path, csv_path_for(json_path)):
        target = path if path.exists() else path.parent
        if path.is_dir() or not os.access(target, os.W_OK):
            raise InputError(path, "cannot be written", "choose another save_json")


def run(cfg) -> int:
    """Evaluate `cfg.pred_dir` against `cfg.gt_dir`, print the table, write JSON/CSV; return the exit code."""
    gt_dir, pred_dir, save_json = cfg.get("gt_dir"), cfg.get("pred_dir"), cfg.get("save_json")
    if not gt_dir or not pred_dir:
        _err(f"calc_metrics: gt_dir and pred_dir are required ({USAGE})")
        return 2
    settings = {"gt_dir": str(gt_dir), "pred_dir": str(pred_dir), "permute": bool(cfg.get("permute", True)),
                "pesq": bool(cfg.get("pesq", True)), "stoi": bool(cfg.get("stoi", True))}
    try:
        if save_json:
            _check_writable(Path(save_json))
        rows, summary, problems = evaluate_dir(
            gt_dir, pred_dir, permute=settings["permute"], pesq=settings["pesq"], stoi=settings["stoi"],
            progress=bool(cfg.get("progress", True)), log=_err)
    except InputError as error:
        _err(error.one_line())
        return 1
    print(format_table(rows, summary, verbose=bool(cfg.get("verbose", False))), flush=True)
    if save_json:
        try:
            csv_path = write_results(save_json, rows, summary, problems, settings)
        except OSError as error:
            _err(f"{save_json}: cannot write results ({error.strerror or error})")
            return 1
        print(f"wrote {save_json} and {csv_path}", flush=True)
    if summary["n_failed"]:
        _err(f"calc_metrics: {summary['n_failed']} file(s) could not be read (see the lines above)")
        return 1
    if summary["n"] == 0:
        _err("calc_metrics: no mixture had all references and all predictions; nothing was evaluated")
        return 1
    return 0
