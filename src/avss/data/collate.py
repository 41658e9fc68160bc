"""Stack dataset items (see avss.data.custom_dir.MixtureDataset) into a batch dict, padding to the longest."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _pad_time(x: torch.Tensor, n: int) -> torch.Tensor:
    """Zero-pad the last axis of `x` to `n`."""
    return F.pad(x, (0, n - x.shape[-1])) if x.shape[-1] < n else x


def _pad_frames(m: torch.Tensor, t: int) -> torch.Tensor:
    """Pad [S, T, H, W] mouths (or [S, T, D] cached embeddings) to `t` frames by repeating the last frame."""
    if m.shape[1] >= t:
        return m
    tail = m[:, -1:].expand(-1, t - m.shape[1], *m.shape[2:])
    return torch.cat([m, tail], dim=1)


def collate_batch(items: list[dict]) -> dict:
    """Batch items: `mix` [B, L] (or [B, C, L]), `sources` [B, S, L], `mouths` [B, S, T, 96, 96] (only if every
    item has mouths), `lengths` [B] int64 (valid samples), `names` list[str], `has_refs` [B] bool (if present), and any
    other tensor every item has with the same shape, stacked (e.g. `enrollment` [B, S, Le]).

    Audio is zero-padded to the longest item; mouths are padded to the most frames by repeating the last frame.
    """
    if not items:
        raise ValueError("collate_batch needs at least one item")
    lengths = [int(it.get("length", it["mix"].shape[-1])) for it in items]
    n = max(it["mix"].shape[-1] for it in items)
    batch = {
        "mix": torch.stack([_pad_time(it["mix"], n) for it in items]),
        "lengths": torch.tensor(lengths, dtype=torch.int64),
        "names": [it.get("name", str(i)) for i, it in enumerate(items)],
    }
    if all("sources" in it for it in items):
        n_src = {it["sources"].shape[0] for it in items}
        if len(n_src) != 1:
            raise ValueError(f"items have different numbers of sources: {sorted(n_src)}")
        batch["sources"] = torch.stack([_pad_time(it["sources"], n) for it in items])
    if all("mouths" in it for it in items):
        t = max(it["mouths"].shape[1] for it in items)
        batch["mouths"] = torch.stack([_pad_frames(it["mouths"], t) for it in items])
    for key, value in items[0].items():  # any other per-item tensors of equal shape (e.g. "enrollment")
        if key in batch or key in ("mix", "sources", "mouths", "length") or not isinstance(value, torch.Tensor):
            continue
        if all(isinstance(it.get(key), torch.Tensor) and it[key].shape == value.shape for it in items):
            batch[key] = torch.stack([it[key] for it in items])
    if all("has_refs" in it for it in items):
        batch["has_refs"] = torch.tensor([bool(it["has_refs"]) for it in items], dtype=torch.bool)
    return batch


class RandomLengthCollate:
    """`collate_batch`, then the whole batch cut to one random window of `min_samples` up to its full length
    (uniform length, uniform start), a new draw per batch. Models trained on fixed-length crops only can fail on
    inputs much shorter than them (README "A learned second stage"); this varies the length without changing
    what the dataset yields. Audio-only batches: the mixture and its sources are cut alike, so they still add up.
    Of `tries` random starts the one that keeps most of the quietest source is used: a window where a talker is
    silent would give a near-infinite SI-SNR loss (a digit or a partial overlap fills only part of a crop).
    """

    def __init__(self, min_samples: int, tries: int = 8):
        if min_samples < 1:
            raise ValueError(f"min_samples must be at least 1, got {min_samples}")
        self.min_samples, self.tries = int(min_samples), max(1, int(tries))

    def __call__(self, items: list[dict]) -> dict:
        batch = collate_batch(items)
        if "mouths" in batch:
            raise ValueError("RandomLengthCollate cuts audio only; batches with mouths keep their length")
        full = batch["mix"].shape[-1]
        if full <= self.min_samples:
            return batch
        length = int(torch.randint(self.min_samples, full + 1, ()))
        starts = torch.randint(0, full - length + 1, (self.tries,)).tolist()
        start = starts[0]
        if "sources" in batch and len(starts) > 1:
            power = batch["sources"].pow(2)  # [B, S, L]
            total = power.sum(-1).clamp_min(1e-12)
            kept = [float((power[..., s:s + length].sum(-1) / total).min()) for s in starts]
            start = starts[max(range(len(starts)), key=kept.__getitem__)]
        for key in ("mix", "sources"):
            if key in batch:
                batch[key] = batch[key][..., start:start + length]
        batch["lengths"] = (batch["lengths"] - start).clamp(0, length)
        return batch
