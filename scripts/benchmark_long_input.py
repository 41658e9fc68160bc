"""Peak memory and exact output length when inference.py separates one long recording.

    python scripts/benchmark_long_input.py [--minutes 10] [--rate 44100] [--checkpoint checkpoints/default.pt]
                                           [--json results/long_input.json]

Writes a course-layout folder in a temporary directory holding one stereo mixture of `--minutes` at `--rate`
(the first bundled example, resampled and tiled, with a slightly different right channel), runs
`python inference.py` on it in a child process, and reports the child's peak resident memory
(getrusage ru_maxrss: the whole process, Python, torch and the model included), its wall time, and whether every
output has exactly the input's length and rate.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from avss.utils.results import write_json

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=44100)
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "checkpoints" / "default.pt")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from avss.data.custom_dir import scan_custom_dir
    from avss.io.audio import load_audio

    audio, _ = load_audio(scan_custom_dir(ROOT / "examples")[0].mix, sample_rate=args.rate)
    n = round(args.minutes * 60 * args.rate)
    left = np.resize(audio, n)
    stereo = np.stack([left, 0.8 * np.roll(left, 7)], axis=1).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "data", Path(tmp) / "out"
        (data / "audio" / "mix").mkdir(parents=True)
        sf.write(data / "audio" / "mix" / "long_one.wav", stereo, args.rate)
        del stereo, left
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(ROOT / "inference.py"), f"data_dir={data}", f"save_dir={out}",
                               f"checkpoint={args.checkpoint}", "progress=false"], cwd=ROOT, capture_output=True,
                              text=True)
        wall = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux reports kB
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        lengths = {}
        for track in sorted(p for p in out.iterdir() if p.is_dir()):
            info = sf.info(track / "long_one.wav")
            lengths[track.name] = {"frames": info.frames, "rate": info.samplerate}
    exact = all(v["frames"] == n and v["rate"] == args.rate for v in lengths.values())
    result = {"minutes": args.minutes, "rate": args.rate, "input_frames": n, "checkpoint": str(args.checkpoint),
              "peak_rss_mb": round(peak_mb, 1), "wall_s": round(wall, 1), "rtf": round(wall / (args.minutes * 60), 4),
              "outputs": lengths, "exact_length": exact}
    print(json.dumps(result, indent=2))
    if args.json:
        write_json(args.json, result)
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
