"""Write a corpus of synthetic talkers (espeak-ng and flite voices) for dynamic mixing.

    python scripts/make_tts_corpus.py [--out data/tts_corpus] [--espeak 180] [--flite 40] [--utterances 12]
                                      [--text /usr/share/common-licenses] [--seed 0]
    # needs the Debian packages espeak-ng and flite; about 2 min on 2 cores

Every talker (avss.data.tts.voice_plan: one engine voice, pitch and speaking rate) reads `--utterances` lines
drawn from the prose files under `--text` (the licence texts every Debian system has). Files are 16 kHz FLAC named
`<talker>-<n>.flac` (the voices in `<out>/voices.tsv`), so the corpus' speaker regex is `^([^-]+)-`
(experiment=sudormrf16_tts_dm uses it). The output depends only on the arguments and the TTS versions (written
to `<out>/versions.txt`).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from avss.data.tts import sentences, speak, voice_plan

REPO = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 16000


def read_lines(root: Path) -> list[str]:
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    lines = []
    for path in files:
        lines += sentences(path.read_text(errors="ignore"))
    return sorted(set(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "data" / "tts_corpus")
    parser.add_argument("--espeak", type=int, default=180, help="espeak-ng talkers")
    parser.add_argument("--flite", type=int, default=40, help="flite talkers")
    parser.add_argument("--utterances", type=int, default=12, help="lines per talker")
    parser.add_argument("--text", type=Path, default=Path("/usr/share/common-licenses"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    lines = read_lines(args.text)
    if len(lines) < args.utterances:
        sys.exit(f"make_tts_corpus.py: {args.text}: only {len(lines)} usable sentences, need {args.utterances}; "
                 "point --text at more English prose")
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    seconds = 0.0
    voices = voice_plan(args.espeak, args.flite, args.seed)
    for voice in voices:
        for n, k in enumerate(rng.choice(len(lines), size=args.utterances, replace=False)):
            try:
                audio = speak(voice, lines[k], SAMPLE_RATE)
            except RuntimeError as error:  # the engine is not installed
                sys.exit(f"make_tts_corpus.py: {error}")
            sf.write(args.out / f"{voice.name}-{n:02d}.flac", audio, SAMPLE_RATE)
            seconds += len(audio) / SAMPLE_RATE
    with open(args.out / "voices.tsv", "w") as table:
        table.write("name\tengine\tvoice\tpitch\trate\n")
        table.writelines(f"{v.name}\t{v.engine}\t{v.voice}\t{v.pitch}\t{v.rate}\n" for v in voices)
    versions = [subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
                for cmd in (["espeak-ng", "--version"], ["flite", "--version"])]
    (args.out / "versions.txt").write_text("\n".join(versions) + "\n")
    print(f"wrote {len(voices)} talkers x {args.utterances} lines ({seconds / 60:.1f} min) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
