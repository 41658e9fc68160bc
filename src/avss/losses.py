"""Separation losses over [B, S, L] tensors, with permutation-invariant training (PIT)."""
from __future__ import annotations

import itertools

import torch

from avss.nn.stft import STFTEncoder, compressed_spectrum

EPS = 1e-8


def si_snr(est: torch.Tensor, ref: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Zero-mean scale-invariant SNR in dB along the last axis."""
    est = est - est.mean(dim=-1, keepdim=True)
    ref = ref - ref.mean(dim=-1, keepdim=True)
    proj = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps) * ref
    noise = est - proj
    return 10 * torch.log10((proj.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


def snr(est: torch.Tensor, ref: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Plain SNR in dB along the last axis (scale-dependent)."""
    return 10 * torch.log10((ref.pow(2).sum(-1) + eps) / ((ref - est).pow(2).sum(-1) + eps))


def compressed_spectral_snr(est: torch.Tensor, ref: torch.Tensor, n_fft: int = 512, hop: int = 128,
                            power: float = 0.3, eps: float = EPS) -> torch.Tensor:
    """SNR in dB between power-law compressed complex spectra (|X|^power with X's phase), both signals scaled by
    the reference's RMS: every bin counts, not only the loud low ones that dominate a waveform SNR. Broadcasts
    over leading axes like `si_snr`."""
    scale = ref.pow(2).mean(-1, keepdim=True).add(eps).sqrt()
    encoder = STFTEncoder(n_fft, hop).to(est.device, est.dtype)
    ref_c = compressed_spectrum(encoder(ref / scale), power, eps)[1]  # at ref's own shape: once per reference
    est_c = compressed_spectrum(encoder(est / scale), power, eps)[1]  # broadcast: each estimate at each ref's scale
    signal = ref_c.pow(2).flatten(-3).mean(-1)
    error = (est_c - ref_c).pow(2).flatten(-3).mean(-1)
    return 10 * torch.log10((signal + eps) / (error + eps))


def si_snr_and_spectral(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """The mean of SI-SNR and the compressed spectral SNR, in dB: the waveform target plus dense per-bin
    supervision. It did not keep the band-split's masks from collapsing on complex input planes
    (results/band_split_probes.md)."""
    return 0.5 * (si_snr(est, ref) + compressed_spectral_snr(est, ref))


PAIRWISE_METRICS = {"si_snr": si_snr, "snr": snr, "si_snr+spectral": si_snr_and_spectral}


def best_permutation(est: torch.Tensor, ref: torch.Tensor, metric=si_snr) -> tuple[torch.Tensor, torch.Tensor]:
    """For [B, S, L] inputs, return (score [B] of the best permutation averaged over sources,
    perm [B, S] such that est[b, perm[b, s]] pairs with ref[b, s])."""
    n_src = est.shape[1]
    # pair[b, i, j] = metric(est_i, ref_j); S! permutations are fine for S <= 4
    pair = metric(est.unsqueeze(2), ref.unsqueeze(1))
    perms = torch.tensor(list(itertools.permutations(range(n_src))), device=est.device)
    src_idx = torch.arange(n_src, device=est.device)
    scores = torch.stack([pair[:, p, src_idx].mean(-1) for p in perms], dim=1)  # [B, P]
    best_score, best_idx = scores.max(dim=1)
    return best_score, perms[best_idx]


def apply_permutation(est: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    return torch.gather(est, 1, perm.unsqueeze(-1).expand(-1, -1, est.shape[-1]))


class SeparationLoss(torch.nn.Module):
    """Negative SI-SNR or SNR, permutation-invariant when `pit` (separation), fixed order otherwise (extraction)."""

    def __init__(self, metric: str = "si_snr", pit: bool = True):
        super().__init__()
        if metric not in PAIRWISE_METRICS:
            raise ValueError(f"unknown loss metric {metric!r}; choose one of {sorted(PAIRWISE_METRICS)}")
        self.metric = PAIRWISE_METRICS[metric]
        self.pit = pit

    def forward(self, est: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (loss scalar, est reordered to match ref)."""
        if self.pit and est.shape[1] > 1:
            score, perm = best_permutation(est, ref, self.metric)
            return -score.mean(), apply_permutation(est, perm)
        return -self.metric(est, ref).mean(), est
