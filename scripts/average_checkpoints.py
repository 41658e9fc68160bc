"""Average the weights of fine-tuned checkpoints of one model (a "model soup") into one checkpoint.

    python scripts/average_checkpoints.py soup.pt checkpoints/cascade16.pt outputs/run_a/best_model.pt ... \
        [--weights 1 1 ...]
    python inference.py data_dir=... save_dir=... checkpoint=soup.pt

Unlike scripts/make_ensemble.py the result costs one model's compute: the members must share one config and
should be fine-tuned from a common starting point (otherwise their average is meaningless). Integer buffers
(counters) are taken from the first member.
"""
from __future__ import annotations

import argparse

import torch

from avss.models import Separator


def average_state_dicts(states: list[dict], weights: list[float] | None = None) -> dict:
    """Weighted mean of floating-point tensors key by key; other entries come from the first state."""
    if not states:
        raise ValueError("nothing to average: give at least one state dict")
    weights = [1.0] * len(states) if weights is None else [float(w) for w in weights]
    if len(weights) != len(states) or sum(weights) <= 0:
        raise ValueError(f"need one positive-sum weight per member, got {weights} for {len(states)} members")
    keys = list(states[0])
    for index, state in enumerate(states[1:], start=1):
        if list(state) != keys:
            raise ValueError(f"member {index} has different parameters than member 0")
    total = sum(weights)
    averaged = {}
    for key in keys:
        first = states[0][key]
        if first.is_floating_point():
            averaged[key] = sum(w * state[key].double() for w, state in zip(weights, states)).div(total).to(first.dtype)
        else:
            averaged[key] = first.clone()
    return averaged


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="where to write the averaged checkpoint (.pt)")
    parser.add_argument("members", nargs="+", help="checkpoints of one model config (.pt or Lightning .ckpt)")
    parser.add_argument("--weights", type=float, nargs="+", help="one weight per member (default: equal)")
    args = parser.parse_args(argv)
    trained = [Separator.from_pretrained(path) for path in args.members]
    for path, model in zip(args.members[1:], trained[1:]):
        if model.config != trained[0].config:
            raise SystemExit(f"{path}: a different model config than {args.members[0]}; "
                             "only checkpoints of one model can be averaged (use make_ensemble.py otherwise)")
    soup = trained[0]
    soup.load_state_dict(average_state_dicts([model.state_dict() for model in trained], args.weights))
    info = {"averaged": [{"checkpoint": str(path), "weight": w, **model.pretrained_info}
                         for path, w, model in zip(args.members, args.weights or [1.0] * len(trained), trained)]}
    soup.save_pretrained(args.target, **info)
    print(f"{args.target}: the average of {len(trained)} checkpoints")


if __name__ == "__main__":
    main()
