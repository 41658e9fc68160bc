"""Combine trained separators into one ensemble checkpoint (avss.models.Ensemble) that loads with one line.

    python scripts/make_ensemble.py ensemble.pt checkpoints/cascade16.pt checkpoints/band_split_magnitude_dm.pt \
        [--weights 0.8 0.2]   # how checkpoints/default.pt was made
    python inference.py data_dir=... save_dir=... checkpoint=ensemble.pt
"""
from __future__ import annotations

import argparse

from avss.models import Separator
from avss.models.ensemble import Ensemble


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="where to write the ensemble checkpoint (.pt)")
    parser.add_argument("members", nargs="+", help="trained checkpoints (.pt or Lightning .ckpt); the first sets "
                                                   "the track order")
    parser.add_argument("--weights", type=float, nargs="+", help="one weight per member (default: equal)")
    args = parser.parse_args(argv)
    trained = [Separator.from_pretrained(path) for path in args.members]
    ensemble = Ensemble(members=[model.config for model in trained], weights=args.weights)
    for member, model in zip(ensemble.members, trained):
        member.load_state_dict(model.state_dict())
    info = {"members": [{"checkpoint": str(path), **model.pretrained_info}
                        for path, model in zip(args.members, trained)]}
    ensemble.save_pretrained(args.target, **info)
    print(f"{args.target}: {len(trained)} members, "
          f"{sum(p.numel() for p in ensemble.parameters()) / 1e6:.3f} M parameters")


if __name__ == "__main__":
    main()
