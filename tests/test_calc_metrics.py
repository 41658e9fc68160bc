"""calc_metrics.py end to end on a tiny generated dataset, and evaluate_dir in-process."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from avss.metrics import evaluate_dir

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000


def speaker(f0: float, seed: int, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8))
    return (0.1 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.003 * rng.standard_normal(t.size)
            ).astype(np.float32)


def make_dataset(root: Path, with_audio_level: bool = True, pred_rate: int = RATE):
    """Files a, b, e complete (predictions swapped), c missing s2, d with a corrupt s1 prediction."""
    gt = root / "gt"
    base = gt / "audio" if with_audio_level else gt
    pred = root / "pred"
    for folder in (base / "mix", base / "s1", base / "s2", pred / "s1", pred / "s2"):
        folder.mkdir(parents=True)
    for i, name in enumerate("abcde"):
        s1, s2 = speaker(110 + 10 * i, i), speaker(230 + 10 * i, 10 + i)
        sf.write(base / "mix" / f"{name}.wav", s1 + s2, RATE)
        sf.write(base / "s1" / f"{name}.flac", s1, RATE)
        if name != "c":
            sf.write(base / "s2" / f"{name}.wav", s2, RATE)
        est1, est2 = s2 + 0.05 * s1, s1 + 0.05 * s2  # swapped order, ~26 dB SI-SNR
        if pred_rate != RATE:
            est1 = speaker(230 + 10 * i, 10 + i, rate=pred_rate) + 0.05 * speaker(110 + 10 * i, i, rate=pred_rate)
            est2 = speaker(110 + 10 * i, i, rate=pred_rate) + 0.05 * speaker(230 + 10 * i, 10 + i, rate=pred_rate)
        sf.write(pred / "s1" / f"{name}.wav", est1, pred_rate)
        sf.write(pred / "s2" / f"{name}.wav", est2, pred_rate)
    (pred / "s1" / "d.wav").write_bytes(b"RIFF\x00\x01not really a wave file" * 8)
    return gt, pred


def test_calc_metrics_cli(tmp_path):
    gt, pred = make_dataset(tmp_path)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, str(ROOT / "calc_metrics.py"), f"gt_dir={gt}", f"pred_dir={pred}",
         "save_json=results/metrics.json", "stoi=false"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    corrupt = str(pred / "s1" / "d.wav")
    error_lines = [line for line in result.stderr.splitlines() if corrupt in line]
    assert len(error_lines) == 1 and error_lines[0].strip().startswith(corrupt + ": "), result.stderr
    assert any("c.wav: skipped" in line and "missing reference s2" in line for line in result.stderr.splitlines())
    assert "SI-SNRi" in result.stdout

    summary = json.loads((tmp_path / "results" / "metrics.json").read_text())
    assert summary["n"] == 3
    assert {"SI-SNRi", "SDRi", "PESQ", "STOI", "SI-SNR", "SDR"} <= summary.keys()
    assert summary["SI-SNRi"] > 20 and summary["SDRi"] > 20 and 3.0 < summary["PESQ"] <= 4.7
    assert summary["STOI"] is None  # disabled
    assert [f["name"] for f in summary["failed"]] == ["d"]
    assert [s["name"] for s in summary["skipped"]] == ["c"]
    with open(tmp_path / "results" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["name"] for r in rows] == ["a", "b", "e"] and all(r["perm"] == "1 0" for r in rows)
    # no Hydra litter in the working directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gt", "pred", "results"]


def test_evaluate_dir_flat_layout_and_rate_mismatch(tmp_path):
    gt, pred = make_dataset(tmp_path, with_audio_level=False, pred_rate=8000)
    lines = []
    rows, summary, problems = evaluate_dir(gt, pred, pesq=False, stoi=False, log=lines.append)
    assert summary["n"] == len(rows) == 3 and summary["n_failed"] == 1 and summary["n_skipped"] == 1
    assert all("resampled from 8000 Hz" in r["notes"] for r in rows)
    assert summary["SI-SNRi"] > 15
    assert np.isnan(summary["PESQ"])
    assert len(lines) == len(problems)


def test_evaluate_dir_keeps_order_without_permute(tmp_path):
    gt, pred = make_dataset(tmp_path)
    (pred / "s1" / "d.wav").unlink()  # d now lacks a prediction: skipped, not failed
    rows, summary, problems = evaluate_dir(gt, pred, permute=False, pesq=False, stoi=False)
    assert summary["n_failed"] == 0 and summary["n_skipped"] == 2
    assert summary["SI-SNRi"] < 0 and all(r["perm"] == "0 1" for r in rows)
