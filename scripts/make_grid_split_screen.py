"""Build a split-screen test video from two single-speaker clips (e.g. GRID): left clip | right clip, sound mixed.

    python scripts/make_grid_split_screen.py --left ../shared/data/av/grid/bbaf2n.mpg \
        --right ../shared/data/av/grid/brbk7n.mpg --out outputs/grid_split/bbaf2n_brbk7n.mp4 [--snr 0]

Writes `OUT` (the two pictures side by side at 25 fps, the right one resized to the left one's height; H.264 +
AAC, mono, at the left clip's audio rate) and, next to it, the references as they are in the mixture:
`OUT.left.wav` and `OUT.right.wav` (16-bit, same rate). Both clips are cut to the shorter one; the right voice is
scaled so the left-to-right level ratio is `--snr` dB (RMS over the whole clip), and the sum is scaled down if it
would clip. Score a separation of it with `scripts/eval_split_screen.py`.

The outputs are derived from ../shared data: keep them out of the repository (outputs/ is git-ignored).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from avss.io.audio import resample, save_audio
from avss.io.errors import InputError
from avss.video.io import read_video, write_video_with_audio


def split_screen(left: Path, right: Path, out: Path, snr_db: float = 0.0) -> dict:
    """Write the split-screen video and its two references; returns a small description."""
    import cv2

    a, b = read_video(left), read_video(right)
    for clip in (a, b):
        if clip.audio is None:
            raise InputError(clip.path, "has no audio track", "pass clips with sound")
    rate = int(a.audio_rate)
    voice_a = a.audio.mean(axis=0)
    voice_b = resample(b.audio.mean(axis=0), int(b.audio_rate), rate)
    length = min(voice_a.size, voice_b.size)
    voice_a, voice_b = voice_a[:length].astype(np.float64), voice_b[:length].astype(np.float64)
    rms_a, rms_b = np.sqrt(np.mean(voice_a ** 2)), np.sqrt(np.mean(voice_b ** 2))
    voice_b *= rms_a / max(rms_b, 1e-9) * 10 ** (-snr_db / 20)
    peak = np.abs(voice_a + voice_b).max()
    scale = 0.9 / peak if peak > 0.9 else 1.0
    voice_a, voice_b = (voice_a * scale).astype(np.float32), (voice_b * scale).astype(np.float32)

    frames = min(a.num_frames, b.num_frames, int(np.ceil(length / rate * 25)))
    height = a.frames.shape[1]
    width_b = round(b.frames.shape[2] * height / b.frames.shape[1])
    pictures = (np.concatenate([a.frames[k], cv2.resize(b.frames[k], (width_b, height), interpolation=cv2.INTER_AREA)],
                               axis=1) for k in range(frames))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_video_with_audio(out, pictures, 25, voice_a + voice_b, rate)
    save_audio(out.with_name(out.name + ".left.wav"), voice_a, rate)
    save_audio(out.with_name(out.name + ".right.wav"), voice_b, rate)
    return {"video": str(out), "left": str(left), "right": str(right), "rate": rate, "samples": int(length),
            "frames": int(frames), "snr_db": float(snr_db)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--left", required=True, type=Path, help="clip shown on the left")
    parser.add_argument("--right", required=True, type=Path, help="clip shown on the right")
    parser.add_argument("--out", required=True, type=Path, help="the split-screen mp4 to write")
    parser.add_argument("--snr", type=float, default=0.0, help="level of the left voice over the right one, dB")
    args = parser.parse_args(argv)
    try:
        info = split_screen(args.left, args.right, args.out, args.snr)
    except InputError as error:
        print(error.one_line(), file=sys.stderr)
        return 1
    print(f"wrote {info['video']} (+ .left.wav, .right.wav): {info['frames']} frames, {info['samples']} samples "
          f"at {info['rate']} Hz, left/right {info['snr_db']:g} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
