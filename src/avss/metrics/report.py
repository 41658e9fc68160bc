"""Averages, a printable table, and the JSON + per-file CSV outputs of an evaluation."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Sequence

from avss.metrics.compute import MAIN_METRICS, METRIC_KEYS

CSV_COLUMNS = ("name", *METRIC_KEYS, "perm", "rate", "notes")


def enabled_metrics(pesq: bool = True, stoi: bool = True) -> list[str]:
    """Metric keys that are computed, in display order (headline metrics first, then mixture baselines)."""
    disabled = {"PESQ"} if not pesq else set()
    disabled |= {"STOI"} if not stoi else set()
    ordered = list(MAIN_METRICS) + [k for k in METRIC_KEYS if k not in MAIN_METRICS]
    return [k for k in ordered if k not in disabled]


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def summarize(rows: Sequence[dict], problems: Sequence = (), *, pesq: bool = True, stoi: bool = True) -> dict:
    """Averages over files ignoring NaN (nanmean), file counts, and which metrics were computed.

    {"n", METRIC_KEYS... (NaN when disabled or no valid value), "n_valid": {key: count}, "n_failed",
    "n_skipped", "n_warnings", "metrics": [enabled keys]}
    """
    metrics = enabled_metrics(pesq, stoi)
    summary: dict = {"n": len(rows)}
    n_valid = {}
    for key in METRIC_KEYS:
        values = _finite(row[key] for row in rows) if key in metrics else []
        summary[key] = sum(values) / len(values) if values else float("nan")
        n_valid[key] = len(values)
    summary["n_valid"] = n_valid
    summary["n_failed"] = sum(p.kind == "failed" for p in problems)
    summary["n_skipped"] = sum(p.kind == "skipped" for p in problems)
    summary["n_warnings"] = sum(p.kind == "warning" for p in problems)
    summary["metrics"] = metrics
    return summary


def _fmt(value) -> str:
    return "nan" if value is None or math.isnan(value) else f"{value:.3f}"


def format_table(rows: Sequence[dict], summary: dict, verbose: bool = False) -> str:
    """Averages table (and the per-file table first when `verbose`)."""
    metrics = summary.get("metrics", list(MAIN_METRICS))
    lines = []
    if verbose and rows:
        width = max(4, *(len(r["name"]) for r in rows))
        lines.append(f"{'file':<{width}}  " + "  ".join(f"{k:>10}" for k in metrics) + "  perm")
        for row in rows:
            lines.append(f"{row['name']:<{width}}  " + "  ".join(f"{_fmt(row[k]):>10}" for k in metrics)
                         + f"  {row['perm']}")
        lines.append("")
    lines.append(f"averages over {summary['n']} file(s)"
                 f" ({summary.get('n_skipped', 0)} skipped, {summary.get('n_failed', 0)} failed)")
    lines.append(f"{'metric':<11}{'mean':>9}{'files':>7}")
    for key in metrics:
        lines.append(f"{key:<11}{_fmt(summary[key]):>9}{summary['n_valid'][key]:>7}")
    return "\n".join(lines)


def _json_safe(value):
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def csv_path_for(json_path) -> Path:
    """`<json stem>.csv` next to the JSON file."""
    json_path = Path(json_path)
    path = json_path.with_name(json_path.stem + ".csv")
    return path if path != json_path else json_path.with_name(json_path.name + ".csv")


def write_results(json_path, rows: Sequence[dict], summary: dict, problems: Sequence = (),
                  settings: dict | None = None) -> Path:
    """Write the summary JSON (NaN as null) and the per-file CSV beside it; returns the CSV path.

    JSON: the summary keys, "failed"/"skipped"/"warnings" lists of {"name", "path", "reason"},
    "settings" and "csv" (the CSV file name).
    """
    json_path = Path(json_path)
    csv_path = csv_path_for(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{row[k]:.4f}" if isinstance(row[k], float) else row[k]) for k in CSV_COLUMNS})
    payload = dict(summary)
    payload["failed"] = [p.as_dict() for p in problems if p.kind == "failed"]
    payload["skipped"] = [p.as_dict() for p in problems if p.kind == "skipped"]
    payload["warnings"] = [p.as_dict() for p in problems if p.kind == "warning"]
    payload["settings"] = dict(settings or {})
    payload["csv"] = csv_path.name
    with open(json_path, "w") as handle:
        json.dump(_json_safe(payload), handle, indent=2, allow_nan=False)
        handle.write("\n")
    return csv_path
