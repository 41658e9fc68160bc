"""Mixture consistency: separated tracks rescaled to explain the mixture, then given equal shares of the rest,
so that they sum to it exactly (the tracks of a separator come with arbitrary gains and signs)."""
from __future__ import annotations

import torch


def least_squares_gains(gram: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Solve gram [B, S, S] @ gains = target [B, S]. One and two tracks in closed form (batched, and exportable
    to ONNX, which has no linear solve); more tracks one small solve per item, because a batched
    torch.linalg.solve fails after torch.set_num_threads on these CPUs."""
    if gram.shape[-1] == 1:
        return target / gram[:, :, 0]
    if gram.shape[-1] == 2:  # Cramer's rule
        a, b, c, d = gram[:, 0, 0], gram[:, 0, 1], gram[:, 1, 0], gram[:, 1, 1]
        det = a * d - b * c
        return torch.stack([d * target[:, 0] - b * target[:, 1], a * target[:, 1] - c * target[:, 0]], 1) / det[:, None]
    return torch.stack([torch.linalg.solve(g, t) for g, t in zip(gram, target)])


def consistent_tracks(est: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """Tracks [B, S, L] scaled by least squares to explain `mix` [B, L], plus an equal share of the rest."""
    gram = est @ est.transpose(1, 2) + 1e-6 * torch.eye(est.shape[1], dtype=est.dtype)  # [B, S, S]
    target = (est @ mix.unsqueeze(-1)).squeeze(-1)  # [B, S]
    scaled = est * least_squares_gains(gram, target).unsqueeze(-1)
    return scaled + (mix - scaled.sum(1)).unsqueeze(1) / est.shape[1]
