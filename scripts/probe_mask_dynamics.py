"""Do an STFT-masking model's masks follow the mixture, or has it settled on one fixed filter per track?

    python scripts/probe_mask_dynamics.py CHECKPOINT [--limit 40] [--json results/NAME.json]

For each held-out validation mixture (scripts/probe_refinement.py) it reports the one-pass SI-SNRi, how alike the
two tracks are (SI-SNR of one against the other: sign and scale do not count, so two copies of the mixture score
high), and the masks' time variation: the share of their variance (over frames and bins, per track and plane)
that lies along time within each bin. A model that separates must change its masks from frame to frame as the
talkers take turns in each bin; one that outputs a fixed equaliser per track (0 dB SI-SNRi territory) has a time
variation near 0. The oracle ideal ratio masks of the same mixtures are scored beside it as the yardstick.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def time_variation(masks):
    """masks [S, P, F, T] -> the share of their variance along time within each bin (0: a fixed filter)."""
    within_bins = masks.var(dim=-1).mean(dim=-1)  # [S, P]
    overall = masks.flatten(-2).var(dim=-1).clamp_min(1e-12)
    return float((within_bins / overall).mean())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="an STFT-masking model (.pt or Lightning .ckpt)")
    parser.add_argument("--experiment", default="sudormrf_small_dm", help="whose validation set to use")
    parser.add_argument("--limit", type=int, default=40, help="score the first N mixtures")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import torch

    from avss.losses import SeparationLoss, si_snr
    from avss.models.base import Separator
    from avss.models.tf_masknet import ComplexMaskSeparator
    from avss.utils.results import write_json

    sys.path.insert(0, str(ROOT / "scripts"))
    from oracle_masks import ideal_masks, si_snr_improvement
    from probe_refinement import validation_set

    torch.set_num_threads(args.threads)
    model = Separator.from_pretrained(args.checkpoint)
    if not isinstance(model, ComplexMaskSeparator):
        print(f"error: {args.checkpoint}: {type(model).__name__} is not an STFT-masking model "
              "(TF-MaskNet, TF-GridLite, band-split RNN)", file=sys.stderr)
        return 2
    items = validation_set(args.experiment, noise=False)
    count = min(args.limit, len(items))
    pit = SeparationLoss()
    scores = {"si_snri": [], "tracks_alike_db": [], "mask_time_variation": [], "oracle_irm_time_variation": []}
    with torch.no_grad():
        for index in range(count):
            mix, refs = items[index]["mix"][None], items[index]["sources"][None]
            spec, scale = model.analyze(mix)
            masks = model.estimate_masks(spec)
            _, est = pit(model.apply_masks(masks, spec, scale, mix.shape[-1]), refs)
            scores["si_snri"].append(si_snr_improvement(est[0], refs[0], mix[0]))
            scores["tracks_alike_db"].append(float(si_snr(est[:, 0], est[:, 1])))
            scores["mask_time_variation"].append(time_variation(masks[0]))
            irm = ideal_masks(model.encoder, refs[0])["irm"]
            scores["oracle_irm_time_variation"].append(time_variation(irm[:, None]))
    results = {"checkpoint": str(args.checkpoint), "mixtures": count,
               **{key: round(sum(values) / count, 3) for key, values in scores.items()}}
    print(f"{args.checkpoint}: SI-SNRi {results['si_snri']:.2f} dB | tracks alike {results['tracks_alike_db']:.2f} dB "
          f"| mask time variation {results['mask_time_variation']:.3f} "
          f"(oracle IRM {results['oracle_irm_time_variation']:.3f}) over {count} mixtures")
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
