"""Score `separate_video.py` on a split-screen video with known voices (from `make_grid_split_screen.py`).

    python scripts/eval_split_screen.py --video outputs/grid_split/bbaf2n_brbk7n.mp4 \
        --pred outputs/grid_split/bbaf2n_brbk7n --json results/default_grid_split_screen.json [--name bbaf2n_brbk7n]

speaker1.wav is scored against the left clip's voice (`VIDEO.left.wav`) and speaker2.wav against the right one's,
as SI-SNR improvement over the video's (decoded) mixture. Also reported: the SI-SNRi the swapped order would give,
whether the face assignment picked the better order, the faces found, the synchrony correlations and timings
from tracks.json. The entry is stored under `--name` in the JSON (other entries are kept) with a mean over all.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from avss.io.audio import load_audio
from avss.metrics.separation import si_snr
from avss.utils.results import write_json
from avss.video.io import read_audio_track


def _offset(mix: np.ndarray, reference: np.ndarray, search: int = 2048) -> int:
    """Samples by which `mix` lags `reference` (cross-correlation within +-search)."""
    n = min(mix.size, reference.size)
    best, best_lag = -np.inf, 0
    for lag in range(-search, search + 1, 1):
        a = mix[max(lag, 0):n + min(lag, 0)]
        b = reference[max(-lag, 0):n - max(lag, 0)] if lag >= 0 else reference[-lag:n]
        m = min(a.size, b.size)
        value = float(np.dot(a[:m], b[:m]))
        if value > best:
            best, best_lag = value, lag
    return best_lag


def score(video: Path, pred: Path) -> dict:
    left, rate = load_audio(video.with_name(video.name + ".left.wav"))
    right, _ = load_audio(video.with_name(video.name + ".right.wav"), sample_rate=rate)
    mix, _ = read_audio_track(video, sample_rate=rate, mono=True)
    outputs = [load_audio(pred / f"speaker{k}.wav", sample_rate=rate)[0] for k in (1, 2)]
    lag = _offset(mix[: rate], (left + right)[: rate], search=rate // 100)  # AAC may shift by a few samples
    refs = np.stack([left, right])
    start = max(lag, 0)
    n = min(mix.size - start, refs.shape[1] - max(-lag, 0), *(o.size - start for o in outputs))
    refs = refs[:, max(-lag, 0):max(-lag, 0) + n]
    mix = mix[start:start + n]
    est = np.stack([o[start:start + n] for o in outputs])
    base = si_snr(np.stack([mix, mix]), refs)
    as_written = si_snr(est, refs) - base
    swapped = si_snr(est[::-1], refs) - base
    tracks = json.loads((pred / "tracks.json").read_text())
    return {
        "SI-SNRi": {"speaker1_vs_left": round(float(as_written[0]), 2),
                    "speaker2_vs_right": round(float(as_written[1]), 2), "mean": round(float(as_written.mean()), 2)},
        "SI-SNRi_if_swapped": round(float(swapped.mean()), 2),
        "assignment_correct": bool(as_written.mean() >= swapped.mean()),
        "mixture_SI-SNR": [round(float(v), 2) for v in base],
        "alignment_samples": int(lag), "rate": int(rate), "seconds": round(n / rate, 3),
        "faces_found": tracks.get("faces_found"), "face_tracking": tracks.get("face_tracking"),
        "face_boxes": [(e.get("face") or {}).get("box") for e in tracks.get("speakers", [])],
        "assignment": tracks.get("assignment"), "sync": tracks.get("sync"), "timings_s": tracks.get("seconds"),
        "model": tracks.get("model"),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", required=True, type=Path,
                        help="split-screen mp4 with VIDEO.left.wav and VIDEO.right.wav beside it")
    parser.add_argument("--pred", required=True, type=Path, help="separate_video.py's save_dir for that video")
    parser.add_argument("--json", type=Path, help="results file to add this entry to")
    parser.add_argument("--name", help="entry name (default: the video's stem)")
    parser.add_argument("--note", help="free text stored with the results (e.g. the checkpoint)")
    args = parser.parse_args(argv)
    entry = score(args.video, args.pred)
    name = args.name or args.video.stem
    print(f"{name}: SI-SNRi speaker1 (left) {entry['SI-SNRi']['speaker1_vs_left']:.2f} dB, speaker2 (right) "
          f"{entry['SI-SNRi']['speaker2_vs_right']:.2f} dB; swapped order would give "
          f"{entry['SI-SNRi_if_swapped']:.2f}; "
          f"assignment {'correct' if entry['assignment_correct'] else 'WRONG'}")
    if args.json:
        results = json.loads(args.json.read_text()) if args.json.is_file() else {}
        if args.note:
            results["note"] = args.note
        results.setdefault("videos", {})[name] = entry
        videos = results["videos"].values()
        results["summary"] = {
            "n": len(results["videos"]),
            "mean_SI-SNRi": round(float(np.mean([v["SI-SNRi"]["mean"] for v in videos])), 2),
            "mean_SI-SNRi_if_swapped": round(float(np.mean([v["SI-SNRi_if_swapped"] for v in videos])), 2),
            "assignments_correct": int(sum(v["assignment_correct"] for v in videos)),
        }
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
