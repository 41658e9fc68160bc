"""Several trained separators averaged: `Ensemble(members=[<model config>, ...])`.

Every member separates the same mixture; each member's tracks are put in the first member's order and
polarity (SI-SNR-trained models may return the speakers in either order and a track negated), scaled to the
level of the first member's matching track (scale-invariant models come with arbitrary gains, and the average
should not favour the loudest member) and averaged with the given `weights` (default: equal). The test-time
refinement (avss.inference.refine) then treats the ensemble as one model.

Members must agree on sample rate and number of tracks and be single-channel, audio-only separation models.
`member_weights`: optional checkpoint paths, one per member, whose trained weights are loaded when the ensemble
is built from a config; `scripts/make_ensemble.py` loads them itself, and a saved `Ensemble` checkpoint holds all
members' weights.
"""
from __future__ import annotations

import itertools

import torch
from torch import nn

from avss.models.base import Separator, build_from_config, load_trained_weights, plain_config
from avss.utils.weight_files import skipping_weight_files


def align_tracks(reference: torch.Tensor, est: torch.Tensor) -> torch.Tensor:
    """`est` [B, S, L] reordered, sign-flipped and rescaled per item to best match `reference` [B, S, L].

    The permutation maximises the summed magnitude of the normalised correlations; each track then gets the
    sign of its correlation and the norm of its reference track (silent tracks keep a gain of one). The batched,
    in-graph counterpart of avss.inference.refine.match_tracks (which aligns passes of one model: no gains)."""
    n_src = est.shape[1]
    ref_norm = reference.norm(dim=-1)  # [B, S]
    est_norm = est.norm(dim=-1)
    corr = (reference @ est.transpose(1, 2)) / (ref_norm.unsqueeze(2) * est_norm.unsqueeze(1) + 1e-8)  # [B, S, S]
    perms = torch.tensor(list(itertools.permutations(range(n_src))), device=est.device)  # [P, S]
    rows = torch.arange(n_src, device=est.device)
    totals = corr.abs()[:, rows, perms].sum(-1)  # [B, P]; identity first, so ties keep the order
    best = perms[totals.argmax(-1)]  # [B, S]
    picked = torch.gather(est, 1, best.unsqueeze(-1).expand(-1, -1, est.shape[-1]))
    matched = torch.gather(corr, 2, best.unsqueeze(-1)).squeeze(-1)  # [B, S]
    signs = torch.where(matched < 0, -1.0, 1.0).to(est.dtype)
    picked_norm = torch.gather(est_norm, 1, best)
    gains = torch.where((picked_norm > 1e-8) & (ref_norm > 1e-8), ref_norm / picked_norm.clamp_min(1e-8),
                        torch.ones_like(ref_norm))
    return picked * (signs * gains).unsqueeze(-1)


class Ensemble(Separator):
    def __init__(self, members: list[dict], weights: list[float] | None = None,
                 member_weights: list[str] | None = None):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(build_from_config(plain_config(config)) for config in members)
        if member_weights is not None and not skipping_weight_files():
            if len(member_weights) != len(members):
                raise ValueError(f"member_weights has {len(member_weights)} paths for {len(members)} members")
            for index, (member, path) in enumerate(zip(self.members, member_weights)):
                load_trained_weights(member, path, f"member_weights[{index}]", f"members[{index}]",
                                     f"give its config as members[{index}]")
        first = self.members[0]
        for index, member in enumerate(self.members):
            if not member.separates_mono_audio:
                raise ValueError(f"members[{index}] ({type(member).__name__}): an ensemble takes single-channel, "
                                 "audio-only separation models")
            if (member.sample_rate, member.n_src) != (first.sample_rate, first.n_src):
                raise ValueError(f"members[{index}] runs at {member.sample_rate} Hz with {member.n_src} tracks, "
                                 f"members[0] at {first.sample_rate} Hz with {first.n_src}: they must agree")
        weights = [1.0] * len(members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"weights must be {len(members)} non-negative numbers with a positive sum, got {weights}")
        self.register_buffer("weights", torch.tensor(weights) / sum(weights), persistent=False)
        self.sample_rate, self.n_src = first.sample_rate, first.n_src

    @property
    def frame_hop(self) -> int:
        return self.members[0].frame_hop

    def forward(self, mix: torch.Tensor, mouths: torch.Tensor | None = None) -> torch.Tensor:
        length = mix.shape[-1]
        reference = self.members[0](mix)[..., :length]
        total = reference * self.weights[0]
        for weight, member in zip(self.weights[1:], self.members[1:]):
            total = total + align_tracks(reference, member(mix)[..., :length]) * weight
        return total
