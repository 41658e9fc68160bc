"""Build a fixed two-speaker evaluation set in the course layout from a speaker-labelled corpus.

    python scripts/make_eval_set.py --preset test-other            # -> data/test_other_mix (the evaluation set)
    python scripts/make_eval_set.py --preset fillets                # -> data/fillets_mix (Czech, voices v + m)
    python scripts/make_eval_set.py --preset fsdd                   # -> data/fsdd_mix (spoken digits)
    python scripts/make_eval_set.py --preset fillets-unseen         # -> data/fillets_unseen_mix (voices not trained on)
    python scripts/make_eval_set.py --preset fsdd-unseen            # -> data/fsdd_unseen_mix (digits, held-out pair)
    python scripts/make_eval_set.py --corpus ../shared/data/librispeech/test-other --out data/test_other_mix \
        --n 100 --seed 0 --regex '^(\\d+)/' --formats wav,flac,mp3 --drop-refs 1

Options given on the command line override the preset's. Mouths are SYNTHETIC (avss.data.synthetic_mouths).
The sets go under data/ (git-ignored): never commit them, they are made from ../shared corpora.
See avss.data.mixture_sets.make_mixture_set for how mixtures are drawn.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avss.data.mixture_sets import make_mixture_set
from avss.io.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"

PRESETS = {
    # the evaluation set: LibriSpeech test-other, 10 speakers unseen in training, 16 kHz, <= 6 s, U[-5, 5] dB
    "test-other": dict(corpus=SHARED / "librispeech" / "test-other", out=REPO / "data" / "test_other_mix",
                       n=100, seed=0, regex=r"^(\d+)/", sample_rate=16000, max_seconds=6.0, snr_range=5.0),
    # Czech game voices: the two main voices `v` and `m` (label = second `-` field of the file name)
    "fillets": dict(corpus=SHARED / "fillets-cs", out=REPO / "data" / "fillets_mix", n=100, seed=0,
                    regex=r"/[^/-]+-([^-./]+)[-.][^/]*$", speakers="v,m", min_files=20, min_seconds=1.0,
                    sample_rate=16000, max_seconds=6.0, snr_range=5.0),
    # Czech minor character voices r, p, leb, s: < 20 files each, so `data_corpora` (min_utterances: 20) never
    # trains on them; every mixture is an unseen speaker pair
    "fillets-unseen": dict(corpus=SHARED / "fillets-cs", out=REPO / "data" / "fillets_unseen_mix", n=100, seed=0,
                           regex=r"/[^/-]+-([^-./]+)[-.][^/]*$", speakers="r,p,leb,s", min_files=5, min_seconds=1.0,
                           sample_rate=16000, max_seconds=6.0, snr_range=5.0),
    # the two spoken-digit speakers that `data_corpora` excludes from training (exclude_speakers)
    "fsdd-unseen": dict(corpus=SHARED / "fsdd", out=REPO / "data" / "fsdd_unseen_mix", n=100, seed=0,
                        regex=r"^\d+_([a-z]+)_", speakers="theo,yweweler", files_per_source=3, sample_rate=16000,
                        max_seconds=6.0, snr_range=5.0),
    # spoken digits (8 kHz -> 16 kHz): each source joins 3 digits of its speaker (~1.5-2 s)
    "fsdd": dict(corpus=SHARED / "fsdd", out=REPO / "data" / "fsdd_mix", n=100, seed=0, regex=r"^\d+_([a-z]+)_",
                 files_per_source=3, sample_rate=16000, max_seconds=6.0, snr_range=5.0),
}
DEFAULTS = dict(n=100, seed=0, regex=r"^([^/]+)/", sample_rate=16000, max_seconds=6.0, snr_range=5.0,
                formats="wav", drop_refs=0, speakers=None, min_files=1, min_seconds=0.0, files_per_source=1)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), help="a named set; other options override its values")
    p.add_argument("--corpus", type=Path, help="corpus folder (speaker label from --regex on relative paths)")
    p.add_argument("--out", type=Path, help="output folder (course layout + manifest.csv)")
    p.add_argument("--n", type=int, help="number of mixtures (default 100)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--regex", help="speaker regex, group 1 = label, searched in the path relative to --corpus")
    p.add_argument("--sample-rate", type=int, help="output sample rate (default 16000)")
    p.add_argument("--max-seconds", type=float, help="longest mixture in seconds (default 6)")
    p.add_argument("--snr-range", type=float, help="relative level drawn from U[-x, x] dB (default 5)")
    p.add_argument("--formats", help="mixture formats cycled over mixtures, e.g. wav,flac,mp3 (default wav)")
    p.add_argument("--drop-refs", type=int, help="remove the references of the last K mixtures (default 0)")
    p.add_argument("--speakers", help="comma-separated speaker labels to keep (default all)")
    p.add_argument("--min-files", type=int, help="keep speakers with at least this many files (default 1)")
    p.add_argument("--min-seconds", type=float, help="skip files shorter than this (default 0)")
    p.add_argument("--files-per-source", type=int, help="join this many files of a speaker per source (default 1)")
    p.add_argument("--no-mouths", action="store_true", help="do not write synthetic mouth files")
    p.add_argument("--overwrite", action="store_true", help="replace an existing set in --out")
    return p.parse_args(argv)


def resolve(args: argparse.Namespace) -> dict:
    """Preset values, then command-line values on top; returns make_mixture_set keyword arguments."""
    opts = dict(DEFAULTS, **PRESETS.get(args.preset, {}))
    opts.update({k: v for k, v in vars(args).items() if v is not None and k in set(DEFAULTS) | {"corpus", "out"}})
    if opts.get("corpus") is None or opts.get("out") is None:
        raise SystemExit("make_eval_set.py: give --preset, or both --corpus and --out")
    speakers = opts["speakers"]
    return dict(corpus_dir=opts["corpus"], out_dir=opts["out"], n_mixtures=opts["n"], seed=opts["seed"],
                speaker_regex=opts["regex"], sample_rate=opts["sample_rate"], max_seconds=opts["max_seconds"],
                snr_range=opts["snr_range"], formats=tuple(f.strip() for f in opts["formats"].split(",") if f.strip()),
                drop_reference_for=opts["drop_refs"],
                speakers=None if not speakers else [s.strip() for s in speakers.split(",") if s.strip()],
                min_files_per_speaker=opts["min_files"], min_seconds=opts["min_seconds"],
                files_per_source=opts["files_per_source"], mouths=not args.no_mouths, overwrite=args.overwrite)


def main(argv=None) -> int:
    kwargs = resolve(parse_args(argv))
    try:
        rows = make_mixture_set(**kwargs)
    except InputError as err:
        print(err.one_line(), file=sys.stderr)
        return 1
    speakers = sorted({r["spk1"] for r in rows} | {r["spk2"] for r in rows})
    seconds = sum(float(r["seconds"]) for r in rows)
    print(f"wrote {len(rows)} mixtures ({seconds / 60:.1f} min, {len(speakers)} speakers: {', '.join(speakers)}) "
          f"to {kwargs['out_dir']}; manifest: {Path(kwargs['out_dir']) / 'manifest.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
