"""Mixture consistency: separated tracks rescaled to explain the mixture, then given equal shares of the rest,
so that they sum to it exactly (the tracks of a separator come with arbitrary gains and signs)."""
from __future__ import annotations

import torch


def consistent_tracks(est: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """Tracks [B, S, L] scaled by least squares to explain `mix` [B, L], plus an equal share of the rest."""
    gram = est @ est.transpose(1, 2) + 1e-6 * torch.eye(est.shape[1], dtype=est.dtype)  # [B, S, S]
    target = (est @ mix.unsqueeze(-1)).squeeze(-1)  # [B, S]
    # one small solve per item: a batched torch.linalg.solve fails after torch.set_num_threads on these CPUs
    gains = torch.stack([torch.linalg.solve(g, t) for g, t in zip(gram, target)])
    scaled = est * gains.unsqueeze(-1)
    return scaled + (mix - scaled.sum(1)).unsqueeze(1) / est.shape[1]
