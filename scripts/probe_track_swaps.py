"""How much a separator loses to its output tracks swapping speakers mid-mixture, on the validation mixtures.

    python scripts/probe_track_swaps.py [--checkpoint checkpoints/default.pt] [--windows 0.5 1 2] [--limit N]
                                        [--json results/track_swaps_validation_heldout.json]

Separates each validation mixture (held-out speakers; scripts/probe_refinement.py) in one pass and scores it
twice: as is (one permutation for the whole mixture) and with the best assignment of tracks to speakers chosen
anew in every window of W seconds, each track first scaled by its least-squares gain on every reference. The
gain of the second over the first bounds what longer-range speaker tracking could add; windows choose freely, so
part of it is only the freedom to pick, which shrinks as W grows.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

from avss.utils.results import write_json

ROOT = Path(__file__).resolve().parents[1]


def window_oracle_tracks(est: np.ndarray, refs: np.ndarray, window: int) -> np.ndarray:
    """[S, L] estimates re-assigned to the references [S, L] window by window (`window` samples): in each window
    the permutation with the least squared error after each track's least-squares gain on each reference."""
    n_src = refs.shape[0]
    energy = np.maximum(np.sum(est.astype(np.float64) ** 2, axis=-1), 1e-12)
    gain = (est.astype(np.float64) @ refs.astype(np.float64).T) / energy[:, None]  # gain[i, j]: est i onto ref j
    out = np.zeros(refs.shape, dtype=np.float64)
    for start in range(0, refs.shape[-1], window):
        part = slice(start, start + window)
        best = min(itertools.permutations(range(n_src)), key=lambda perm: sum(
            np.sum((gain[i, j] * est[i, part] - refs[j, part]) ** 2) for j, i in enumerate(perm)))
        for j, i in enumerate(best):
            out[j, part] = gain[i, j] * est[i, part]
    return out.astype(est.dtype)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "checkpoints" / "default.pt")
    parser.add_argument("--experiment", default="sudormrf_small_dm", help="whose validation set to use")
    parser.add_argument("--windows", type=float, nargs="+", default=[0.5, 1.0, 2.0], help="seconds")
    parser.add_argument("--limit", type=int, help="score only the first N mixtures")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import torch

    from avss.inference import separate_array
    from avss.inference.refine import NO_REFINEMENT
    from avss.metrics.separation import best_permutation, si_snr_improvement
    from avss.models.base import Separator

    sys.path.insert(0, str(ROOT / "scripts"))
    from probe_refinement import validation_set

    torch.set_num_threads(args.threads)
    model = Separator.from_pretrained(args.checkpoint)
    items = validation_set(args.experiment, noise=False)
    count = len(items) if args.limit is None else min(args.limit, len(items))
    whole, per_window = [], {w: [] for w in args.windows}
    for index in range(count):
        mix, refs = items[index]["mix"].numpy(), items[index]["sources"].numpy()
        est = separate_array(model, mix, model.sample_rate, chunk_seconds=None, **NO_REFINEMENT)
        perm, _ = best_permutation(est, refs)
        whole.append(float(si_snr_improvement(est[list(perm)], refs, mix).mean()))
        for seconds in args.windows:
            stitched = window_oracle_tracks(est, refs, max(1, round(seconds * model.sample_rate)))
            per_window[seconds].append(float(si_snr_improvement(stitched, refs, mix).mean()))
    whole = np.array(whole)
    results = {"checkpoint": str(args.checkpoint), "experiment": args.experiment, "mixtures": count,
               "one_permutation_si_snri": round(float(whole.mean()), 3), "windows": []}
    print(f"one permutation per mixture: SI-SNRi {whole.mean():.3f} dB over {count} mixtures")
    for seconds, scores in per_window.items():
        gain = np.array(scores) - whole
        row = {"window_seconds": seconds, "si_snri": round(float(np.mean(scores)), 3),
               "gain": round(float(gain.mean()), 3), "mixtures_gaining_over_1_db": int(np.sum(gain > 1.0))}
        results["windows"].append(row)
        print(f"best assignment per {seconds:g}-s window: SI-SNRi {row['si_snri']:.3f} dB (gain {row['gain']:+.3f}; "
              f"{row['mixtures_gaining_over_1_db']} mixtures gain > 1 dB)")
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
