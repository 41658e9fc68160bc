"""Regenerate the bundled example set in examples/ (course layout) from text-to-speech.

    python scripts/make_examples.py            # needs the Debian packages espeak-ng and flite

Three two-speaker mixtures of synthetic speech (espeak-ng and flite voices, fixed sentences), at 16 kHz and
22.05 kHz, as wav and flac, with references and SYNTHETIC mouth streams (avss.data.synthetic_mouths, grey
levels rounded to steps of 8 to keep the files small). One speaker ID contains "_" (anna_b_2). The output
depends only on the texts, voices, SEED and the TTS versions (recorded in examples/README.md).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

from avss.data.custom_dir import scan_custom_dir
from avss.data.mixture_sets import scale_pair, write_mixture
from avss.data.tts import Voice, speak

REPO = Path(__file__).resolve().parents[1]
SEED = 0
MOUTH_STEP = 8

# (ID, engine, voice, text) for s1 and s2, mixture sample rate, mixture format, level of s1 over s2 in dB
EXAMPLES = [
    dict(s1=("anna_b_2", "espeak-ng", "en-us+f2", "Please leave the green lamp on the table."),
         s2=("tom", "flite", "rms", "We can walk to the market after lunch."),
         sample_rate=16000, ext="wav", snr_db=0.0),
    dict(s1=("lena", "flite", "slt", "The old clock in the hall stopped at noon."),
         s2=("ravi", "espeak-ng", "en-gb+m1", "Turn left at the bridge and keep going."),
         sample_rate=22050, ext="flac", snr_db=2.5),
    dict(s1=("joe", "flite", "awb", "Bring a warm coat, it might snow tonight."),
         s2=("mia", "espeak-ng", "en+f3", "She painted the fence a bright shade of blue."),
         sample_rate=16000, ext="flac", snr_db=-2.0),
]


def synthesise(engine: str, voice: str, text: str, sample_rate: int) -> np.ndarray:
    """Speak `text` with espeak-ng (at 165 words per minute) or flite; float32 mono at `sample_rate`, trimmed."""
    try:
        return speak(Voice(voice, engine, voice, rate=165 if engine == "espeak-ng" else None), text, sample_rate)
    except RuntimeError as error:  # the engine is not installed
        sys.exit(f"make_examples.py: {error}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "examples", help="output folder (default examples/)")
    out = parser.parse_args(argv).out
    for sub in ("audio", "mouths"):  # generated content only; README.md stays
        shutil.rmtree(out / sub, ignore_errors=True)
    for i, ex in enumerate(EXAMPLES):
        rate = ex["sample_rate"]
        (id1, *tts1), (id2, *tts2) = ex["s1"], ex["s2"]
        x1, x2 = synthesise(*tts1, rate), synthesise(*tts2, rate)
        n = max(len(x1), len(x2))  # the shorter sentence is padded with silence: no word is cut
        x1, x2 = np.pad(x1, (0, n - len(x1))), np.pad(x2, (0, n - len(x2)))
        s1, s2 = scale_pair(x1, x2, ex["snr_db"])
        written = write_mixture(out, id1, id2, s1, s2, rate, ext=ex["ext"], mouths=True,
                                rng=np.random.default_rng([SEED, i]), ref_ext=ex["ext"],
                                mouth_step=MOUTH_STEP)
        print(f"{written['mix'].relative_to(out)}: {n / rate:.2f} s at {rate} Hz")
    entries = scan_custom_dir(out)
    bad = [e.name for e in entries if not (e.has_refs and e.has_mouths)]
    if bad or len(entries) != len(EXAMPLES):
        print(f"make_examples.py: {out} does not parse as expected ({bad or len(entries)})", file=sys.stderr)
        return 1
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{len(entries)} mixtures in {out}, {size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
