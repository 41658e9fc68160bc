"""Which test-time refinement settings pay off, measured on the validation mixtures (never on a test set).

    python scripts/probe_refinement.py [--checkpoint checkpoints/default.pt] [--experiment sudormrf_small_dm]
                                       [--noise] [--limit N] [--threads 1] [--json results/refinement_validation.json]

Builds the experiment's validation set (held-out speakers, fixed seed; `--noise` adds the shared background
noise to every mixture, the references stay clean), separates each mixture in one pass with `separate_array`
under several settings (avss.inference.refine) and reports the mean SI-SNRi (best permutation), the model
passes per chunk and the real-time factor of each setting (meaningful only on an otherwise idle machine).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from avss.utils.results import write_json

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {  # name -> separate_array keywords
    "one pass": {"shifts": 1, "flip_sign": False, "mixture_consistency": False},
    "one pass + consistency": {"shifts": 1, "flip_sign": False, "mixture_consistency": True},
    "2 shifts x 2 signs": {"shifts": 2, "flip_sign": True, "mixture_consistency": False},
    "2 shifts x 2 signs + consistency (default)": {"shifts": 2, "flip_sign": True, "mixture_consistency": True},
    "4 shifts x 2 signs + consistency": {"shifts": 4, "flip_sign": True, "mixture_consistency": True},
}


def validation_set(experiment: str, noise: bool):
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    overrides = [f"experiment={experiment}"]
    if noise:
        overrides += ["+data.val.noise_dir=${paths.data_root}/noise", "+data.val.noise_prob=1.0"]
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        cfg = compose("train", overrides=overrides)
    return instantiate(cfg.data.val)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "checkpoints" / "default.pt")
    parser.add_argument("--experiment", default="sudormrf_small_dm")
    parser.add_argument("--noise", action="store_true")
    parser.add_argument("--limit", type=int, help="score only the first N mixtures")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (more than the free cores is slow)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import torch

    from avss.inference import separate_array
    from avss.metrics.separation import best_permutation, si_snr_improvement
    from avss.models.base import Separator

    torch.set_num_threads(args.threads)
    model = Separator.from_pretrained(args.checkpoint)
    items = validation_set(args.experiment, args.noise)
    scores = {name: [] for name in SETTINGS}
    seconds = dict.fromkeys(SETTINGS, 0.0)
    count = len(items) if args.limit is None else min(args.limit, len(items))
    for index in range(count):
        item = items[index]
        mix, refs = item["mix"].numpy(), item["sources"].numpy()
        for name, settings in SETTINGS.items():
            start = time.perf_counter()
            est = separate_array(model, mix, model.sample_rate, chunk_seconds=None, **settings)
            seconds[name] += time.perf_counter() - start
            perm, _ = best_permutation(est, refs)
            scores[name].append(float(si_snr_improvement(est[list(perm)], refs, mix).mean()))
    audio_seconds = sum(items[i]["mix"].shape[-1] for i in range(count)) / model.sample_rate
    results = {"checkpoint": str(args.checkpoint), "experiment": args.experiment, "noise": args.noise, "threads": args.threads,
               "mixtures": count, "audio_seconds": round(audio_seconds, 1), "settings": {}}
    for name, settings in SETTINGS.items():
        passes = settings["shifts"] * (2 if settings["flip_sign"] else 1)
        results["settings"][name] = {**settings, "passes": passes, "si_snri": round(float(np.mean(scores[name])), 3),
                                     "rtf": round(seconds[name] / audio_seconds, 4)}
        print(f"{name:44s} passes {passes}  SI-SNRi {np.mean(scores[name]):6.3f} dB  "
              f"RTF {seconds[name] / audio_seconds:.3f}", flush=True)
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
