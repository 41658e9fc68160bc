"""Deepen a trained SuDoRM-RF checkpoint without changing what it computes (avss.models.growth), to train on.

    python scripts/grow_checkpoint.py checkpoints/sudormrf_small_dm.pt grown.pt --blocks 16
    python train.py experiment=sudormrf16_dm init_from=grown.pt [optimizer.lr=1.5e-4 scheduler.T_max=14 trainer.max_epochs=14]
"""
from __future__ import annotations

import argparse

import torch

from avss.models import Separator
from avss.models.growth import deepen


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="trained checkpoint (.pt or Lightning .ckpt)")
    parser.add_argument("target", help="where to write the deeper checkpoint (.pt)")
    parser.add_argument("--blocks", type=int, required=True, help="U-ConvBlocks of the deeper model")
    args = parser.parse_args(argv)
    model = Separator.from_pretrained(args.source)
    grown = deepen(model, args.blocks)
    probe = torch.randn(1, model.sample_rate)
    with torch.no_grad():
        gap = float((grown.eval()(probe) - model(probe)).abs().max())
    info = {**model.pretrained_info, "grown_from": str(args.source), "blocks_before": len(model.masker.blocks)}
    grown.save_pretrained(args.target, **info)
    print(f"{args.target}: {args.blocks} blocks, {sum(p.numel() for p in grown.parameters()) / 1e6:.3f} M "
          f"parameters; largest output difference from {args.source} on 1 s of noise: {gap:.2e}")


if __name__ == "__main__":
    main()
