"""Deepen a trained SuDoRM-RF checkpoint without changing what it computes (avss.models.growth), to train on:
more U-ConvBlocks (`--blocks`), more pyramid levels in each (`--depth`, a longer receptive field), or both.

    python scripts/grow_checkpoint.py checkpoints/sudormrf_small_dm.pt grown.pt --blocks 16
    python scripts/grow_checkpoint.py checkpoints/sudormrf16_grown.pt grown.pt --depth 5 [--start-gain 0.1]
    python train.py experiment=sudormrf16_dm init_from=grown.pt [optimizer.lr=1.5e-4 scheduler.T_max=14 trainer.max_epochs=14]
"""
from __future__ import annotations

import argparse

import torch

from avss.models import Separator
from avss.models.growth import deepen, extend_pyramid


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="trained checkpoint (.pt or Lightning .ckpt)")
    parser.add_argument("target", help="where to write the deeper checkpoint (.pt)")
    parser.add_argument("--blocks", type=int, help="U-ConvBlocks of the deeper model (a multiple of the model's)")
    parser.add_argument("--depth", type=int, help="pyramid levels of every U-ConvBlock (at least the model's)")
    parser.add_argument("--start-gain", type=float, default=0.0,
                        help="new levels copy the coarsest one at this gain (0: exactly the same function)")
    args = parser.parse_args(argv)
    if args.blocks is None and args.depth is None:
        parser.error("give --blocks, --depth or both")
    model = Separator.from_pretrained(args.source)
    grown = model
    if args.blocks is not None:
        grown = deepen(grown, args.blocks)
    if args.depth is not None:
        grown = extend_pyramid(grown, args.depth, args.start_gain)
    probe = torch.randn(1, model.sample_rate)
    with torch.no_grad():
        gap = float((grown.eval()(probe) - model(probe)).abs().max())
    info = {**model.pretrained_info, "grown_from": str(args.source), "blocks_before": len(model.masker.blocks),
            "depth_before": model.config["depth"]}
    grown.save_pretrained(args.target, **info)
    size = sum(p.numel() for p in grown.parameters()) / 1e6
    print(f"{args.target}: {grown.config['blocks']} blocks of depth {grown.config['depth']}, {size:.3f} M "
          f"parameters; largest output difference from {args.source} on 1 s of noise: {gap:.2e}")


if __name__ == "__main__":
    main()
