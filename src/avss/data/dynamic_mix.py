"""Dynamic mixing: an endless stream of 2-speaker mixtures drawn on the fly from speaker-labelled corpora.

Each item: two different speakers (from the same corpus), a random crop of one utterance each (shorter ones
placed at a random offset), optional speed perturbation, a relative level drawn from [-snr, snr] dB, a random
overall gain, optional background noise, and (optionally) a synthetic mouth stream per source. Items are a
pure function of (seed, index) in the validation split, so validation sets are fixed. Training items come
from a per-process random stream seeded by (seed, torch's process seed, DDP rank): distinct in every epoch,
worker and rank, and reproducible after `lightning.seed_everything`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soxr
import torch
from torch.utils.data import Dataset

from avss.data.corpora import Corpus, load_corpus
from avss.data.synthetic_mouths import synthetic_mouth_stream
from avss.io.audio import AUDIO_EXTENSIONS, load_audio


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x * x)) + 1e-8)


def split_speakers(corpus: Corpus, n_val: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Deterministically hold out `n_val` speakers for validation; return (train, val) labels."""
    labels = sorted(corpus.speakers)
    order = np.random.default_rng(seed).permutation(len(labels))
    val = sorted(labels[i] for i in order[:n_val])
    return [s for s in labels if s not in set(val)], val


class DynamicMixDataset(Dataset):
    """Args:
        corpora: list of dicts for `load_corpus` (path, speaker_regex, ...) plus optional `weight` (sampling
            weight of the corpus) and `n_val_speakers` (speakers held out for the validation split).
        split: "train" (all but held-out speakers) or "val" (held-out speakers only).
        length: items per epoch.
    """

    def __init__(self, corpora: list[dict], sample_rate: int = 16000, segment: float = 2.0, length: int = 2000,
                 split: str = "train", seed: int = 0, snr_range: float = 5.0, gain_db: tuple = (-25.0, -15.0),
                 speed_perturb: float = 0.0, noise_dir: str | None = None, noise_snr: tuple = (10.0, 30.0),
                 noise_prob: float = 0.0, mouths: bool = False, partial_overlap_prob: float = 0.0,
                 n_src: int = 2, min_speech_rms_db: float = -45.0):
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', not {split!r}")
        self.sample_rate, self.segment_len, self.length = sample_rate, int(segment * sample_rate), length
        self.split, self.seed = split, seed
        self._stream, self._stream_owner = None, None
        self.snr_range, self.gain_db, self.speed_perturb = snr_range, tuple(gain_db), speed_perturb
        self.noise_snr, self.noise_prob, self.mouths = tuple(noise_snr), noise_prob, mouths
        self.partial_overlap_prob, self.n_src = partial_overlap_prob, n_src
        self.min_speech_rms = 10 ** (min_speech_rms_db / 20)
        self.pools, weights = [], []
        for spec in corpora:
            spec = dict(spec)
            weight, n_val = float(spec.pop("weight", 1.0)), int(spec.pop("n_val_speakers", 0))
            corpus = load_corpus(sample_rate=sample_rate, **spec)
            train_spk, val_spk = split_speakers(corpus, n_val, seed)
            chosen = corpus.subset(val_spk if split == "val" else train_spk)
            if len(chosen.speakers) >= n_src:
                self.pools.append(chosen)
                weights.append(weight)
        if not self.pools:
            raise ValueError(f"no corpus has >= {n_src} speakers in the {split!r} split; check the data config")
        self.weights = np.array(weights) / np.sum(weights)
        self.noises = self._load_noises(noise_dir) if noise_dir and noise_prob > 0 else []

    def _load_noises(self, noise_dir) -> list[np.ndarray]:
        files = sorted(p for p in Path(noise_dir).rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
        return [load_audio(f, self.sample_rate)[0] for f in files]

    def __len__(self) -> int:
        return self.length

    def _rng(self, index: int) -> np.random.Generator:
        if self.split == "val":
            return np.random.default_rng([self.seed, index])
        owner = os.getpid()
        if self._stream_owner != owner:  # first item in this process (main or a DataLoader worker)
            rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            self._stream = np.random.default_rng([self.seed, torch.initial_seed() % 2**63, rank])
            self._stream_owner = owner
        return self._stream

    def _crop(self, utt: np.ndarray, rng: np.random.Generator, speed: float) -> np.ndarray:
        """A segment_len crop of `utt` (after speed change), zero-padded at a random offset if too short;
        retried a few times to avoid near-silent crops."""
        need = int(np.ceil(self.segment_len * speed)) + 1
        out = np.zeros(self.segment_len, np.float32)
        for _ in range(4):
            if len(utt) >= need:
                start = int(rng.integers(0, len(utt) - need + 1))
                piece = utt[start:start + need]
            else:
                piece = utt
            if speed != 1.0:  # playing `speed` times faster = resampling to rate/speed
                piece = soxr.resample(piece, self.sample_rate * speed, self.sample_rate).astype(np.float32)
            piece = piece[:self.segment_len]
            if _rms(piece) > self.min_speech_rms:
                break
        offset = int(rng.integers(0, self.segment_len - len(piece) + 1))
        out[offset:offset + len(piece)] = piece
        return out

    def __getitem__(self, index: int) -> dict:
        rng = self._rng(index)
        corpus = self.pools[int(rng.choice(len(self.pools), p=self.weights))]
        labels = sorted(corpus.speakers)
        chosen = rng.choice(len(labels), size=self.n_src, replace=False)
        sources = []
        for k in chosen:
            utts = corpus.speakers[labels[k]]
            speed = float(rng.uniform(1 - self.speed_perturb, 1 + self.speed_perturb)) if self.speed_perturb else 1.0
            src = self._crop(utts[int(rng.integers(len(utts)))], rng, speed)
            sources.append(src / _rms(src))
        if self.partial_overlap_prob and rng.random() < self.partial_overlap_prob:
            k = int(rng.integers(self.n_src))  # one talker starts late or stops early
            cut = int(rng.uniform(0.1, 0.5) * self.segment_len)
            if rng.random() < 0.5:
                sources[k][:cut] = 0.0
            else:
                sources[k][-cut:] = 0.0
        rel_db = rng.uniform(-self.snr_range, self.snr_range)
        levels = [rel_db / 2, -rel_db / 2] + [0.0] * (self.n_src - 2)
        sources = np.stack([s * 10 ** (db / 20) for s, db in zip(sources, levels)])
        mix = sources.sum(0)
        gain = 10 ** (rng.uniform(*self.gain_db) / 20) / _rms(mix)
        sources, mix = sources * gain, mix * gain
        if self.noises and rng.random() < self.noise_prob:
            mix = mix + self._noise(rng, _rms(mix))
        peak = np.max(np.abs(mix))
        if peak > 0.99:
            sources, mix = sources * (0.99 / peak), mix * (0.99 / peak)
        item = {
            "mix": torch.from_numpy(mix.astype(np.float32)),
            "sources": torch.from_numpy(sources.astype(np.float32)),
            "length": self.segment_len,
            "name": f"{self.split}{index:06d}_{labels[chosen[0]]}_{labels[chosen[1]]}",
        }
        if self.mouths:
            item["mouths"] = torch.from_numpy(
                np.stack([synthetic_mouth_stream(s, self.sample_rate, rng) for s in sources]))
        return item

    def _noise(self, rng: np.random.Generator, speech_rms: float) -> np.ndarray:
        noise = self.noises[int(rng.integers(len(self.noises)))]
        if len(noise) < self.segment_len:
            noise = np.tile(noise, int(np.ceil(self.segment_len / len(noise))))
        start = int(rng.integers(0, len(noise) - self.segment_len + 1))
        noise = noise[start:start + self.segment_len]
        snr_db = rng.uniform(*self.noise_snr)
        return noise * (speech_rms / _rms(noise)) * 10 ** (-snr_db / 20)
