"""Oracle reference points of an evaluation set: what ideal masks, and a perfect band-limited estimate, score.

    python scripts/oracle_masks.py data/test_other_mix [--n-fft 512] [--hop 128] [--json results/oracle_test_other.json]

For every mixture with both references (`audio/s1`, `audio/s2` of the course layout), at the set's own rate:
* `irm`: ideal ratio mask |S_k| / (|S_1| + |S_2|) on the mixture's STFT (mixture phase), then iSTFT;
* `ibm`: ideal binary mask (1 where source k has the larger magnitude);
* `wiener`: |S_k|^2 / (|S_1|^2 + |S_2|^2);
* `perfect_8k`: the reference itself after a round trip through 8 kHz (soxr), the ceiling of any model that
  works at 8 kHz and is scored against the full-band references.
Each is scored as SI-SNRi (SI-SNR of the estimate minus that of the mixture, per source, averaged) with the same
SI-SNR as training and calc_metrics. Mixtures without references are skipped and counted.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np
import torch

from avss.data.custom_dir import scan_custom_dir
from avss.io.audio import load_audio, resample
from avss.io.errors import InputError, first_line
from avss.losses import si_snr
from avss.nn.stft import ISTFTDecoder, STFTEncoder
from avss.utils.results import write_json

EPS = 1e-8


@functools.lru_cache(maxsize=4)
def _stft_pair(n_fft: int, hop: int) -> tuple[STFTEncoder, ISTFTDecoder]:
    return STFTEncoder(n_fft, hop), ISTFTDecoder(n_fft, hop)


def ideal_masks(encoder: STFTEncoder, refs: torch.Tensor) -> dict:
    """refs [S, L] -> {"irm" | "ibm" | "wiener": masks [S, F, T]} on the encoder's STFT."""
    ref_mag = encoder(refs).pow(2).sum(1).sqrt()  # [S, F, T]
    return {
        "irm": ref_mag / (ref_mag.sum(0, keepdim=True) + EPS),
        "ibm": (ref_mag == ref_mag.max(0, keepdim=True).values).float(),
        "wiener": ref_mag.pow(2) / (ref_mag.pow(2).sum(0, keepdim=True) + EPS),
    }


def oracle_estimates(mix: torch.Tensor, refs: torch.Tensor, sample_rate: int, n_fft: int, hop: int) -> dict:
    """mix [L], refs [S, L] -> {method: estimates [S, L]}."""
    encoder, decoder = _stft_pair(n_fft, hop)
    mix_spec = encoder(mix)  # [2, F, T]
    out = {name: decoder(mask[:, None] * mix_spec[None], mix.shape[-1])
           for name, mask in ideal_masks(encoder, refs).items()}
    band_limited = [resample(resample(r.numpy(), sample_rate, 8000), 8000, sample_rate)[:mix.shape[-1]]
                    for r in refs]
    out["perfect_8k"] = torch.from_numpy(np.stack([np.pad(b, (0, mix.shape[-1] - len(b))) for b in band_limited]))
    return out


def si_snr_improvement(est: torch.Tensor, refs: torch.Tensor, mix: torch.Tensor) -> float:
    return float((si_snr(est, refs) - si_snr(mix.expand_as(refs), refs)).mean())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_dir", type=Path)
    p.add_argument("--n-fft", type=int, default=512)
    p.add_argument("--hop", type=int, default=128)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    try:
        entries = scan_custom_dir(args.data_dir)
    except InputError as error:
        print(first_line(error), file=sys.stderr)
        return 2
    scores: dict[str, list[float]] = {}
    skipped, rate = 0, None
    for entry in entries:
        if not entry.has_refs:
            skipped += 1
            continue
        mix, rate = load_audio(entry.mix)
        refs = np.stack([load_audio(r, rate)[0][:len(mix)] for r in entry.refs])
        refs = np.pad(refs, ((0, 0), (0, len(mix) - refs.shape[1])))
        mix_t, refs_t = torch.from_numpy(mix), torch.from_numpy(refs)
        for name, est in oracle_estimates(mix_t, refs_t, rate, args.n_fft, args.hop).items():
            scores.setdefault(name, []).append(si_snr_improvement(est, refs_t, mix_t))
    if not scores:
        print(f"{args.data_dir}: no mixture has both references (audio/s1, audio/s2); nothing to score",
              file=sys.stderr)
        return 1
    summary = {"data_dir": str(args.data_dir), "n": len(scores["irm"]), "skipped_without_refs": skipped,
               "sample_rate": rate, "n_fft": args.n_fft, "hop": args.hop,
               "si_snri_db": {name: round(float(np.mean(v)), 2) for name, v in scores.items()}}
    print(json.dumps(summary, indent=1))
    if args.json:
        write_json(args.json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
