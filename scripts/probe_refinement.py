"""Which test-time refinement settings pay off, measured on the validation mixtures (never on a test set).

    python scripts/probe_refinement.py [--checkpoint checkpoints/default.pt] [--experiment sudormrf_small_dm]
                                       [--noise] [--coloured] [--limit N] [--threads 1] [--filter-scan]
                                       [--only "one pass" "...(default)"]
                                       [--json results/refinement_validation.json]

Builds the experiment's validation set (held-out speakers, fixed seed; `--noise` adds the shared background
noise to every mixture, the references stay clean; `--coloured` gives every talker a random equaliser,
avss.data.coloration, the references too: same talkers, crops and levels), separates each mixture in one pass
with `separate_array` under several settings (avss.inference.refine; `--only` picks some of them) and reports
the mean SI-SNRi (best permutation), the model passes per chunk and the real-time factor of each setting
(meaningful only on an otherwise idle machine).
`--filter-scan` also scores the spectral filter's window, power and weight on the 4-pass consistent tracks.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

from avss.inference.refine import DEFAULT_REFINEMENT, NO_REFINEMENT
from avss.utils.results import write_json

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {  # name -> separate_array keywords
    "one pass": NO_REFINEMENT,
    "one pass + consistency": {"shifts": 1, "flip_sign": False, "mixture_consistency": True, "spectral_filter": 0.0},
    "one pass + consistency + filter": {"shifts": 1, "flip_sign": False, "mixture_consistency": True,
                                        "spectral_filter": 0.7},
    "2 shifts x 2 signs": {"shifts": 2, "flip_sign": True, "mixture_consistency": False, "spectral_filter": 0.0},
    "2 shifts x 2 signs + consistency": {"shifts": 2, "flip_sign": True, "mixture_consistency": True,
                                         "spectral_filter": 0.0},
    "2 shifts x 2 signs + consistency + filter (default)": DEFAULT_REFINEMENT,
    "4 shifts x 2 signs + consistency + filter": {"shifts": 4, "flip_sign": True, "mixture_consistency": True,
                                                  "spectral_filter": 0.7},
}
SCAN_FROM = "2 shifts x 2 signs + consistency"  # --filter-scan filters these tracks
SCAN = {"window_ms": (16, 32, 64, 128, 256, 512), "power": (1.0, 2.0, 3.0, 4.0, 6.0), "weight": (0.5, 0.7, 1.0)}


def validation_set(experiment: str, noise: bool, coloured: bool = False):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    overrides = [f"experiment={experiment}"]
    if noise:
        overrides += ["+data.val.noise_dir=${paths.data_root}/noise", "+data.val.noise_prob=1.0"]
    if coloured:
        overrides += ["+data.val.coloration_prob=1.0"]
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        cfg = compose("train", overrides=overrides)
    return instantiate(cfg.data.val)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "checkpoints" / "default.pt")
    parser.add_argument("--experiment", default="sudormrf_small_dm")
    parser.add_argument("--noise", action="store_true")
    parser.add_argument("--coloured", action="store_true", help="a random equaliser on every talker")
    parser.add_argument("--limit", type=int, help="score only the first N mixtures")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (more than the free cores is slow)")
    parser.add_argument("--filter-scan", action="store_true", help="score spectral filter windows/powers/weights")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="score only these settings (names below)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import torch

    from avss.inference import separate_array
    from avss.inference.refine import spectral_filter
    from avss.metrics.separation import best_permutation, si_snr_improvement
    from avss.models.base import Separator

    if set(args.only or ()) - set(SETTINGS):
        parser.error(f"--only takes setting names: {sorted(SETTINGS)}")
    settings_run = {name: SETTINGS[name] for name in args.only or SETTINGS}
    if args.filter_scan and SCAN_FROM not in settings_run:
        parser.error(f"--filter-scan needs the setting '{SCAN_FROM}'")
    torch.set_num_threads(args.threads)
    model = Separator.from_pretrained(args.checkpoint)
    items = validation_set(args.experiment, args.noise, args.coloured)
    scores = {name: [] for name in settings_run}
    seconds = dict.fromkeys(settings_run, 0.0)
    scan = {combo: [] for combo in itertools.product(*SCAN.values())} if args.filter_scan else {}

    def score(est, refs, mix) -> float:
        perm, _ = best_permutation(est, refs)
        return float(si_snr_improvement(est[list(perm)], refs, mix).mean())

    count = len(items) if args.limit is None else min(args.limit, len(items))
    for index in range(count):
        item = items[index]
        mix, refs = item["mix"].numpy(), item["sources"].numpy()
        for name, settings in settings_run.items():
            start = time.perf_counter()
            est = separate_array(model, mix, model.sample_rate, chunk_seconds=None, **settings)
            seconds[name] += time.perf_counter() - start
            scores[name].append(score(est, refs, mix))
            if name == SCAN_FROM:
                for window_ms, power, weight in scan:
                    filtered = spectral_filter(est, mix, model.sample_rate, weight, window_ms, power)
                    scan[window_ms, power, weight].append(score(filtered, refs, mix))
    audio_seconds = sum(items[i]["mix"].shape[-1] for i in range(count)) / model.sample_rate
    results = {"checkpoint": str(args.checkpoint), "experiment": args.experiment, "noise": args.noise,
               "coloured": args.coloured, "threads": args.threads, "mixtures": count,
               "audio_seconds": round(audio_seconds, 1), "settings": {}}
    for name, settings in settings_run.items():
        passes = settings["shifts"] * (2 if settings["flip_sign"] else 1)
        results["settings"][name] = {**settings, "passes": passes, "si_snri": round(float(np.mean(scores[name])), 3),
                                     "rtf": round(seconds[name] / audio_seconds, 4)}
        print(f"{name:52s} passes {passes}  SI-SNRi {np.mean(scores[name]):6.3f} dB  "
              f"RTF {seconds[name] / audio_seconds:.3f}", flush=True)
    if scan:
        ranked = sorted(scan.items(), key=lambda kv: -np.mean(kv[1]))
        results["filter_scan"] = {"tracks": SCAN_FROM, "rows": [
            {"window_ms": w, "power": p, "weight": a, "si_snri": round(float(np.mean(v)), 3)}
            for (w, p, a), v in ranked]}
        print(f"spectral filter on '{SCAN_FROM}', best first:")
        for (w, p, a), v in ranked[:10]:
            print(f"  window {w:4d} ms  power {p:3.1f}  weight {a:.1f}  SI-SNRi {np.mean(v):6.3f} dB")
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
