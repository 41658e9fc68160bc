"""Synthetic talkers from Debian's text-to-speech engines (espeak-ng, flite): more voices for dynamic mixing.

The shared corpora hold about 240 real training talkers; the models fit them and stop improving on held-out ones. A
synthetic talker is one engine voice with a fixed pitch and speaking rate: `voice_plan` draws those, `sentences`
cuts prose into lines to speak, and `speak` runs the engine. scripts/make_tts_corpus.py writes the corpus.
"""
from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avss.io.audio import load_audio

ESPEAK_ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029",
                  "en-us-nyc")
# espeak-ng variants that still sound like one human talker (whispers, robots and effects left out)
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "adam", "Alex",
                   "Alicia", "Andrea", "Andy", "Annie", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb",
                   "david", "Denis", "Diogo", "ed", "edward", "Gene", "gustave", "Henrique", "Hugo", "iven", "Jacky",
                   "john", "Lee", "linda", "marcelo", "Marco", "Mario", "max", "Michael", "michel", "miguel",
                   "Mike", "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert", "sandro", "shelby",
                   "steph", "travis", "victor", "zac", "grandpa", "grandma", "klatt", "klatt2", "klatt3")
# flite's built-in voices and the range of their mean pitch in Hz (slt is a female voice, the others male)
FLITE_VOICES = {"awb": (85, 150), "rms": (80, 140), "kal16": (90, 150), "slt": (150, 250)}
SILENCE_DB = -40.0  # leading/trailing audio quieter than this (relative to the peak) is trimmed


@dataclass(frozen=True)
class Voice:
    name: str          # the talker's label: no "-" (the corpus' file names are <name>-<n>.flac)
    engine: str        # "espeak-ng" or "flite"
    voice: str         # engine voice, e.g. "en-us+m3" or "slt"
    pitch: float | None = None   # espeak-ng: pitch 0-99; flite: mean F0 in Hz; None: the engine's default
    rate: float | None = None    # espeak-ng: words per minute; flite: duration stretch (> 1 is slower); None: default


def voice_plan(n_espeak: int, n_flite: int, seed: int = 0) -> list[Voice]:
    """`n_espeak` + `n_flite` distinct synthetic talkers drawn with `seed`."""
    possible = len(ESPEAK_ACCENTS) * len(ESPEAK_VARIANTS) * 7  # pitch decades 20-29 ... 80
    if n_espeak > possible:
        raise ValueError(f"at most {possible} distinct espeak-ng talkers, asked for {n_espeak}")
    rng = np.random.default_rng(seed)
    voices, seen = [], set()
    while len(voices) < n_espeak:
        accent, variant = rng.choice(ESPEAK_ACCENTS), rng.choice(ESPEAK_VARIANTS)
        pitch, rate = int(rng.integers(20, 81)), int(rng.integers(135, 196))
        key = (accent, variant, pitch // 10)
        if key in seen:  # talkers of one voice differ by at least a pitch decade
            continue
        seen.add(key)
        voices.append(Voice(f"es{len(voices):03d}", "espeak-ng", f"{accent}+{variant}", pitch, rate))
    names = sorted(FLITE_VOICES)
    for k in range(n_flite):
        voice = names[k % len(names)]
        low, high = FLITE_VOICES[voice]
        voices.append(Voice(f"fl{k:03d}", "flite", voice, round(float(rng.uniform(low, high)), 1),
                            round(float(rng.uniform(0.85, 1.2)), 3)))
    return voices


def sentences(text: str, min_words: int = 5, max_words: int = 25) -> list[str]:
    """Lines of prose fit to speak: sentences of `min_words`-`max_words` words of plain letters and punctuation."""
    text = re.sub(r"\s+", " ", text)
    lines = []
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        sentence = sentence.strip()
        if not re.fullmatch(r"[A-Za-z][A-Za-z ,;:'()\-]*[.!?]", sentence):
            continue  # numbers, URLs, section marks and code read badly
        if min_words <= len(sentence.split()) <= max_words:
            lines.append(sentence)
    return lines


def speak(voice: Voice, text: str, sample_rate: int) -> np.ndarray:
    """`text` spoken by `voice`: float32 mono at `sample_rate`, leading and trailing silence trimmed."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        if voice.engine == "espeak-ng":
            cmd = ["espeak-ng", "-v", voice.voice]
            for flag, value in (("-p", voice.pitch), ("-s", voice.rate)):
                cmd += [] if value is None else [flag, str(int(value))]
            cmd += ["-w", str(wav), text]
        elif voice.engine == "flite":
            cmd = ["flite", "-voice", voice.voice]
            for name, value in (("int_f0_target_mean", voice.pitch), ("duration_stretch", voice.rate)):
                cmd += [] if value is None else ["--setf", f"{name}={value}"]
            cmd += ["-t", text, "-o", str(wav)]
        else:
            raise ValueError(f"unknown TTS engine {voice.engine!r}")
        try:
            subprocess.run(cmd, check=True, capture_output=True)
        except FileNotFoundError:
            raise RuntimeError(f"{voice.engine} not found: apt-get install espeak-ng flite") from None
        audio, _ = load_audio(wav, sample_rate)
    return trim_silence(audio, sample_rate)


def trim_silence(audio: np.ndarray, sample_rate: int, margin: float = 0.05) -> np.ndarray:
    """Cut leading/trailing 10 ms frames quieter than SILENCE_DB below the peak frame, keeping `margin` s."""
    hop = sample_rate // 100
    frames = audio[: len(audio) // hop * hop].reshape(-1, hop)
    level = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(level > level.max() + SILENCE_DB)
    pad = int(margin * sample_rate)
    return audio[max(0, loud[0] * hop - pad): min(len(audio), (loud[-1] + 1) * hop + pad)]
