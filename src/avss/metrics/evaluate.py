"""Evaluate a folder of separated files against a dataset folder.

Layout: `gt_dir/audio/{mix,s1,s2}/<name>.<ext>` (or `gt_dir/{mix,s1,s2}/...`) and `pred_dir/{s1,s2}/<name>.wav`.
A mixture whose references or predictions are incomplete is skipped; an unreadable file fails (one line,
the evaluation goes on).
"""
from __future__ import annotations

import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from avss.io.audio import AUDIO_EXTENSIONS, load_audio
from avss.io.errors import InputError
from avss.metrics.align import align_signals
from avss.metrics.compute import compute_metrics
from avss.metrics.report import summarize
from avss.metrics.separation import MetricWarning

_SOURCE_DIR = re.compile(r"^s(\d+)$")


@dataclass
class Problem:
    """One file that failed (unreadable), was skipped (incomplete) or got a warning (NaN metric, trimming)."""

    kind: str  # "failed" | "skipped" | "warning"
    name: str  # example name (file stem)
    path: str
    reason: str

    def line(self) -> str:
        if self.kind == "failed":
            return f"{self.path}: {self.reason}"
        return f"{self.path}: {self.kind}, {self.reason}"

    def as_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "reason": self.reason}


def find_gt_root(gt_dir) -> Path:
    """The folder holding mix/ and s1/, s2/: `gt_dir/audio` or `gt_dir` itself."""
    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise InputError(gt_dir, "directory not found", "gt_dir must hold audio/mix, audio/s1, audio/s2")
    for root in (gt_dir / "audio", gt_dir):
        if (root / "mix").is_dir():
            return root
    raise InputError(gt_dir, "no mix/ folder", "expected gt_dir/audio/mix/ (or gt_dir/mix/) with s1/, s2/ beside it")


def source_names(root: Path) -> list[str]:
    """Reference folder names s1, s2, ... present in `root`, in numeric order."""
    found = [p.name for p in root.iterdir() if p.is_dir() and _SOURCE_DIR.match(p.name)]
    return sorted(found, key=lambda name: int(_SOURCE_DIR.match(name).group(1)))


def index_audio(folder: Path) -> dict[str, Path]:
    """{stem: path} of the audio files in `folder` (empty if it does not exist); .wav wins over other formats."""
    if not folder.is_dir():
        return {}
    rank = {ext: i for i, ext in enumerate(AUDIO_EXTENSIONS)}
    index: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        ext = path.suffix.lower()
        if path.name.startswith(".") or ext not in rank or not path.is_file():
            continue
        current = index.get(path.stem)
        if current is None or rank[ext] < rank[current.suffix.lower()]:
            index[path.stem] = path
    return index


def evaluate_dir(gt_dir, pred_dir, *, permute: bool = True, pesq: bool = True, stoi: bool = True,
                 progress: bool = False, log: Callable[[str], None] | None = None
                 ) -> tuple[list[dict], dict, list[Problem]]:
    """Score every mixture of `gt_dir` that has all references and all predictions in `pred_dir`.

    Returns (rows, summary, problems): one row per evaluated file ({"name", METRIC_KEYS..., "perm", "rate",
    "notes"}), the summary of `avss.metrics.report.summarize`, and the failed/skipped/warning problems.
    `log` receives each problem's one-line description as it happens; `progress` shows a tqdm bar on stderr.
    Raises InputError when gt_dir or pred_dir is unusable as a whole.
    """
    gt_root = find_gt_root(gt_dir)
    pred_dir = Path(pred_dir)
    sources = source_names(gt_root)
    if not sources:
        raise InputError(gt_root, "no reference folders s1/, s2/", "put the clean sources beside mix/")
    if not pred_dir.is_dir():
        raise InputError(pred_dir, "directory not found", "pred_dir must hold s1/<name>.wav and s2/<name>.wav")
    if not any((pred_dir / s).is_dir() for s in sources):
        raise InputError(pred_dir, f"none of the folders {', '.join(s + '/' for s in sources)} found",
                         "pred_dir must hold s1/<name>.wav and s2/<name>.wav")
    mixes = index_audio(gt_root / "mix")
    if not mixes:
        raise InputError(gt_root / "mix", "contains no audio files", f"expected {', '.join(AUDIO_EXTENSIONS)}")
    refs = {s: index_audio(gt_root / s) for s in sources}
    preds = {s: index_audio(pred_dir / s) for s in sources}

    rows: list[dict] = []
    problems: list[Problem] = []

    def report(kind: str, name: str, path, reason: str) -> None:
        problem = Problem(kind, name, str(path), reason)
        problems.append(problem)
        if log is not None:
            log(problem.line())

    for name in tqdm(sorted(mixes), desc="metrics", unit="file", file=sys.stderr, disable=not progress,
                     dynamic_ncols=True):
        mix_path = mixes[name]
        missing = [f"reference {s}" for s in sources if name not in refs[s]]
        missing += [f"prediction {s}" for s in sources if name not in preds[s]]
        if missing:
            report("skipped", name, mix_path, "missing " + ", ".join(missing))
            continue
        try:
            mix = load_audio(mix_path)
            ref_audio = [load_audio(refs[s][name]) for s in sources]
            est_audio = [load_audio(preds[s][name]) for s in sources]
        except InputError as error:
            report("failed", name, error.path, f"{error.reason} ({error.hint})" if error.hint else error.reason)
            continue
        ref, est, mix_audio, rate, notes = align_signals(ref_audio, est_audio, mix, names=sources)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", MetricWarning)
            metrics = compute_metrics(est, ref, mix_audio, rate, permute=permute, pesq=pesq, stoi=stoi)
        notes += [str(w.message) for w in caught if issubclass(w.category, MetricWarning)]
        for note in notes:
            report("warning", name, mix_path, note)
        rows.append({"name": name, **metrics, "perm": " ".join(str(p) for p in metrics["perm"]),
                     "rate": rate, "notes": "; ".join(notes)})
    return rows, summarize(rows, problems, pesq=pesq, stoi=stoi), problems
