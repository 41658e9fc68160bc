"""Chain the learning curves of the runs a checkpoint descends from into one curve with cumulative cost.

    python scripts/lineage_curve.py results/default_lineage_runs.csv --out results/default_lineage_curve.csv

The manifest lists, in training order, one segment per row: `curve` (a train.py learning_curve.csv), `first_step`
and `last_step` (the rows of that curve the segment keeps; the run was often stopped or continued past the chosen
weights), `cores` (CPU cores it trained on), `stage` and `val_set` (which validation set its SI-SNRi is on). Two
rows may share a curve (a run that changed core count midway): the later one starts from the earlier one's hours.
The output has one row per kept validation point with the total steps, wall hours, core hours and mixture-audio
hours up to it.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

MANIFEST_FIELDS = ["stage", "curve", "first_step", "last_step", "cores", "val_set"]
FIELDS = ["stage", "curve", "run_step", "total_steps", "wall_hours", "core_hours", "audio_hours", "val_set",
          "val_si_snri", "lr"]


def read_curve(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: learning curve not found; fix its path in the manifest")
    return list(csv.DictReader(path.open()))


def totals_at(row: dict, total: tuple, start: tuple, cores: float) -> tuple[int, float, float, float]:
    """(steps, wall h, core h, audio h) at a curve row: `total` before its segment plus what the run did after
    `start` (step, hours, audio hours where the segment's run was taken up)."""
    hours = float(row["train_hours"]) - start[1]
    return (total[0] + int(row["step"]) - start[0], total[1] + hours, total[2] + hours * cores,
            total[3] + float(row["audio_hours_seen"]) - start[2])


def chain(segments: list[dict], root: Path) -> list[dict]:
    out: list[dict] = []
    total = (0, 0.0, 0.0, 0.0)  # steps, wall hours, core hours, audio hours before the current segment
    # Where the previous segment of the same curve ended (step, hours, audio hours): a later segment of it counts
    # only what came after.
    ended: dict[str, tuple[int, float, float]] = {}
    curves: dict[str, list[dict]] = {}  # a curve split into several segments is read once
    for seg in segments:
        name = seg["curve"]
        first, last, cores = int(seg["first_step"]), int(seg["last_step"]), float(seg["cores"])
        if name not in curves:
            curves[name] = read_curve(root / name)
        rows = [r for r in curves[name] if first <= int(r["step"]) <= last]
        if not rows:
            raise ValueError(f"{name}: no rows between steps {first} and {last}; check the manifest row")
        start = ended.get(name, (0, 0.0, 0.0))
        at = [totals_at(r, total, start, cores) for r in rows]
        for r, (steps, wall, core, audio) in zip(rows, at):
            out.append({"stage": seg["stage"], "curve": name, "run_step": int(r["step"]), "total_steps": steps,
                        "wall_hours": round(wall, 4), "core_hours": round(core, 4), "audio_hours": round(audio, 3),
                        "val_set": seg["val_set"], "val_si_snri": float(r["val_si_snri"]), "lr": r.get("lr", "")})
        total = at[-1]
        ended[name] = (int(rows[-1]["step"]), float(rows[-1]["train_hours"]), float(rows[-1]["audio_hours_seen"]))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--out", type=Path, help="CSV to write (default: print the totals only)")
    parser.add_argument("--root", type=Path, default=Path("."), help="curve paths are relative to this folder")
    args = parser.parse_args(argv)
    if not args.manifest.is_file():
        print(f"error: {args.manifest}: manifest not found", file=sys.stderr)
        return 2
    reader = csv.DictReader(args.manifest.open())
    missing = sorted(set(MANIFEST_FIELDS) - set(reader.fieldnames or []))
    if missing:
        print(f"error: {args.manifest}: missing columns {', '.join(missing)}; it needs {', '.join(MANIFEST_FIELDS)}",
              file=sys.stderr)
        return 2
    try:
        rows = chain(list(reader), args.root)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.out:
        with args.out.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    last = rows[-1]
    print(f"{len(rows)} validation points; {last['total_steps']} steps, {last['wall_hours']:.2f} wall h, "
          f"{last['core_hours']:.2f} core h, {last['audio_hours']:.1f} h of mixture audio; last validation "
          f"{last['val_si_snri']:.3f} dB ({last['val_set']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
