"""Dynamic mixing: an endless stream of 2-speaker mixtures drawn on the fly from speaker-labelled corpora.

Each item: two different speakers (from the same corpus), a random crop of one utterance each (shorter ones
placed at a random offset), optional speed perturbation, a relative level drawn from [-snr, snr] dB, a random
overall gain, optional background noise, optional random spectral coloration (`coloration_prob`,
avss.data.coloration: a different equaliser per talker, drawn last so that it changes only the items' tone),
optional formant shifting (`formant_shift`, avss.data.formants: each talker's vocal tract scaled by a factor
uniform in 1 +- formant_shift, pitch and timing unchanged) and (optionally) a synthetic mouth stream per source. Items are a
pure function of (seed, index) in the validation split, so validation sets are fixed. Training items come
from a per-process random stream seeded by (seed, torch's process seed, DDP rank): distinct in every epoch,
worker and rank, and reproducible after `lightning.seed_everything`. Which speakers are held out depends on
`split_seed` alone, never on `seed`, so a training and a validation set with different item seeds still split
the speakers the same way (until 2026-12-01 the hold-out followed `seed`: the validation set, seed 1234, drew
its 12 speakers from the training speakers of the seed-0 runs; README "The validation set").

Options for multi-cue / multi-channel models (off by default; the default items are unchanged):
* `channels=2`: the dry sources are placed at random, different directions around an anechoic 2-mic array
  (7 cm spacing, `avss.data.spatial.two_mic_images`); `mix` is [2, L] and `sources` [S, L] are the images at the
  reference microphone (mic 0), which is what a 2-channel extraction model is trained to output.
* `enrollment_seconds`: adds `enrollment` [S, Le], for each source a *different* utterance of the same speaker
  (random crop of Le samples; shorter utterances are repeated to fill Le), for voiceprint-conditioned models.
  A speaker with a single utterance gets a different crop of that utterance, taken outside the part used in the
  mixture when enough of it is left (else anywhere in it, possibly overlapping the mixture crop).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soxr
import torch
from torch.utils.data import Dataset

from avss.data.coloration import random_coloration
from avss.data.corpora import Corpus, load_corpus
from avss.data.formants import shift_formants
from avss.data.spatial import two_mic_images
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
        split_seed: seed of the speaker hold-out; train and val sets must share it (they do by default).
        length: items per epoch.
        channels: 1 (mono mixtures) or 2 (anechoic 2-mic mixtures; see the module docstring).
        enrollment_seconds: if set, items carry `enrollment` [S, Le] utterances of each source's speaker.
    """

    def __init__(self, corpora: list[dict], sample_rate: int = 16000, segment: float = 2.0, length: int = 2000,
                 split: str = "train", seed: int = 0, snr_range: float = 5.0, gain_db: tuple = (-25.0, -15.0),
                 speed_perturb: float = 0.0, noise_dir: str | None = None, noise_snr: tuple = (10.0, 30.0),
                 noise_prob: float = 0.0, mouths: bool = False, partial_overlap_prob: float = 0.0,
                 n_src: int = 2, min_speech_rms_db: float = -45.0, channels: int = 1,
                 enrollment_seconds: float | None = None, coloration_prob: float = 0.0, split_seed: int = 0,
                 formant_shift: float = 0.0):
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', not {split!r}")
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, not {channels!r}")
        if enrollment_seconds is not None and not enrollment_seconds > 0:
            raise ValueError(f"enrollment_seconds must be positive (or null), not {enrollment_seconds!r}")
        self.channels = channels
        self.enrollment_len = int(round(enrollment_seconds * sample_rate)) if enrollment_seconds else 0
        self.sample_rate, self.segment_len, self.length = sample_rate, int(segment * sample_rate), length
        self.split, self.seed = split, seed
        self._stream, self._stream_owner = None, None
        self.snr_range, self.gain_db, self.speed_perturb = snr_range, tuple(gain_db), speed_perturb
        self.noise_snr, self.noise_prob, self.mouths = tuple(noise_snr), noise_prob, mouths
        self.partial_overlap_prob, self.n_src = partial_overlap_prob, n_src
        if not 0 <= coloration_prob <= 1:
            raise ValueError(f"coloration_prob must be a probability in [0, 1], not {coloration_prob!r}")
        self.coloration_prob = coloration_prob
        if not 0 <= formant_shift < 0.5:
            raise ValueError(f"formant_shift must be in [0, 0.5) (e.g. 0.1 for factors 0.9-1.1), not {formant_shift!r}")
        self.formant_shift = formant_shift
        self.min_speech_rms = 10 ** (min_speech_rms_db / 20)
        self.pools, weights = [], []
        for spec in corpora:
            spec = dict(spec)
            weight, n_val = float(spec.pop("weight", 1.0)), int(spec.pop("n_val_speakers", 0))
            corpus = load_corpus(sample_rate=sample_rate, **spec)
            train_spk, val_spk = split_speakers(corpus, n_val, split_seed)
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
        return self._crop_with_span(utt, rng, speed)[0]

    def _crop_with_span(self, utt: np.ndarray, rng: np.random.Generator,
                        speed: float) -> tuple[np.ndarray, tuple[int, int]]:
        """`_crop`, also returning the (start, stop) samples of `utt` that the crop was taken from."""
        need = int(np.ceil(self.segment_len * speed)) + 1
        span = (0, len(utt))
        out = np.zeros(self.segment_len, np.float32)
        for _ in range(4):
            if len(utt) >= need:
                start = int(rng.integers(0, len(utt) - need + 1))
                piece = utt[start:start + need]
                span = (start, start + need)
            else:
                piece, span = utt, (0, len(utt))
            if speed != 1.0:  # playing `speed` times faster = resampling to rate/speed
                piece = soxr.resample(piece, self.sample_rate * speed, self.sample_rate).astype(np.float32)
            piece = piece[:self.segment_len]
            if _rms(piece) > self.min_speech_rms:
                break
        offset = int(rng.integers(0, self.segment_len - len(piece) + 1))
        out[offset:offset + len(piece)] = piece
        return out, span

    def __getitem__(self, index: int) -> dict:
        rng = self._rng(index)
        corpus = self.pools[int(rng.choice(len(self.pools), p=self.weights))]
        labels = sorted(corpus.speakers)
        chosen = rng.choice(len(labels), size=self.n_src, replace=False)
        sources, used = [], []
        for k in chosen:
            utts = corpus.speakers[labels[k]]
            speed = float(rng.uniform(1 - self.speed_perturb, 1 + self.speed_perturb)) if self.speed_perturb else 1.0
            u = int(rng.integers(len(utts)))
            src, span = self._crop_with_span(utts[u], rng, speed)
            if self.formant_shift:  # independent of speed, which moves pitch and formants together
                src = shift_formants(src, float(rng.uniform(1 - self.formant_shift, 1 + self.formant_shift)),
                                     self.sample_rate)
            sources.append(src / _rms(src))
            used.append((utts, u, span))
        if self.partial_overlap_prob and rng.random() < self.partial_overlap_prob:
            k = int(rng.integers(self.n_src))  # one talker starts late or stops early
            cut = int(rng.uniform(0.1, 0.5) * self.segment_len)
            if rng.random() < 0.5:
                sources[k][:cut] = 0.0
            else:
                sources[k][-cut:] = 0.0
        if self.channels == 2:  # reference-mic images at unit level; the mixture gets both microphones
            images = two_mic_images(np.stack(sources), self.sample_rate, rng)
            sources = [img / _rms(img[0]) for img in images]
        rel_db = rng.uniform(-self.snr_range, self.snr_range)
        levels = [rel_db / 2, -rel_db / 2] + [0.0] * (self.n_src - 2)
        sources = np.stack([s * 10 ** (db / 20) for s, db in zip(sources, levels)])
        mix = sources.sum(0)
        gain = 10 ** (rng.uniform(*self.gain_db) / 20) / _rms(mix)
        sources, mix = sources * gain, mix * gain
        if self.noises and rng.random() < self.noise_prob:
            level = _rms(mix)  # 2 channels: a different noise excerpt on each microphone
            mix = mix + (self._noise(rng, level) if self.channels == 1
                         else np.stack([self._noise(rng, level) for _ in range(2)]))
        if self.coloration_prob:  # drawn last, so an item's talkers, crops and levels do not depend on it
            for k in range(self.n_src):
                if rng.random() < self.coloration_prob:
                    tone = random_coloration(sources[k], rng, self.sample_rate)
                    tone *= _rms(sources[k]) / _rms(tone)
                    mix, sources[k] = mix + (tone - sources[k]), tone
        peak = np.max(np.abs(mix))
        if peak > 0.99:
            sources, mix = sources * (0.99 / peak), mix * (0.99 / peak)
        if self.channels == 2:
            sources = sources[:, 0]  # targets: the reference microphone's images
        item = {
            "mix": torch.from_numpy(mix.astype(np.float32)),
            "sources": torch.from_numpy(sources.astype(np.float32)),
            "length": self.segment_len,
            "name": f"{self.split}{index:06d}_{labels[chosen[0]]}_{labels[chosen[1]]}",
        }
        if self.mouths:
            item["mouths"] = torch.from_numpy(
                np.stack([synthetic_mouth_stream(s, self.sample_rate, rng) for s in sources]))
        if self.enrollment_len:
            item["enrollment"] = torch.from_numpy(np.stack([self._enrollment(*u, rng) for u in used]))
        return item

    def _enrollment(self, utts: list[np.ndarray], used: int, span: tuple[int, int],
                    rng: np.random.Generator) -> np.ndarray:
        """An enrolment excerpt of `enrollment_len` samples for the speaker of `utts`: from another utterance
        than `utts[used]` if there is one, else from the part of `utts[used]` outside `span` (the mixture crop)
        when at least `enrollment_len` samples of it are left, else anywhere in `utts[used]`."""
        n = self.enrollment_len
        others = [i for i in range(len(utts)) if i != used]
        if others:
            region = utts[others[int(rng.integers(len(others)))]]
        else:
            utt = utts[used]
            parts = [p for p in (utt[:span[0]], utt[span[1]:]) if len(p) >= n]
            region = parts[int(rng.integers(len(parts)))] if parts else utt
        if len(region) >= n:
            start = int(rng.integers(0, len(region) - n + 1))
            out = region[start:start + n]
        else:  # too short: repeat it (no silent padding, which would bias a voiceprint's statistics)
            out = np.resize(region, n)
        out = out.astype(np.float32) * (0.05 / _rms(out))  # -26 dBFS
        peak = np.max(np.abs(out))
        return out * (0.99 / peak) if peak > 0.99 else out

    def _noise(self, rng: np.random.Generator, speech_rms: float) -> np.ndarray:
        noise = self.noises[int(rng.integers(len(self.noises)))]
        if len(noise) < self.segment_len:
            noise = np.tile(noise, int(np.ceil(self.segment_len / len(noise))))
        start = int(rng.integers(0, len(noise) - self.segment_len + 1))
        noise = noise[start:start + self.segment_len]
        snr_db = rng.uniform(*self.noise_snr)
        return noise * (speech_rms / _rms(noise)) * 10 ** (-snr_db / 20)
