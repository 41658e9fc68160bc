"""Can a model learn at all? Train it from scratch on one fixed batch, or on fresh dynamic mixtures, and print
the training SI-SNRi (mean over the steps since the last report) every `--every` steps: a quick check that separates optimisation bugs from slow generalisation.

    python scripts/fit_fixed_batch.py --model tfmask_blstm [--steps 150] [--batch 8] [--stream] [--lr 1e-3] [model.key=value ...]

Fixed batch (default): the training SI-SNRi of the same `--batch` 2-s mixtures, step after step; a model that
cannot fit them has a bug. `--stream`: every step draws a new batch of training mixtures, and the report adds
the SI-SNRi on 32 other, fixed training mixtures that are never stepped on. Adam, gradient norm clipped at 5,
PIT on negative SI-SNR, as in training.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a configs/model name, e.g. tfmask_blstm")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--stream", action="store_true", help="a new batch every step")
    parser.add_argument("--every", type=int, default=25, help="report interval in steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model.hop=256")
    args = parser.parse_args(argv)

    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from avss.losses import SeparationLoss, si_snr

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    draw = random.Random(args.seed)
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        cfg = compose("train", overrides=[f"model={args.model}", "data=dynamic_mix", "data.train.segment=2.0",
                                           *args.overrides])
    dataset = instantiate(cfg.data.train)
    model = instantiate(cfg.model)
    loss_fn = SeparationLoss()
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)

    def batch(indices):
        items = [dataset[i] for i in indices]
        return torch.stack([item["mix"] for item in items]), torch.stack([item["sources"] for item in items])

    def mixture_si_snr(mix, sources) -> float:  # the SI-SNR of the unprocessed mixture: SI-SNRi's baseline
        return si_snr(mix[:, None].expand_as(sources), sources).mean().item()

    fixed = None if args.stream else batch(range(args.batch))
    fixed_baseline = None if fixed is None else mixture_si_snr(*fixed)
    held = batch(range(10**6, 10**6 + 32)) if args.stream else None
    held_baseline = mixture_si_snr(*held) if held is not None else None
    start, recent = time.perf_counter(), []
    for step in range(args.steps + 1):
        mix, sources = batch(draw.sample(range(10**6), args.batch)) if args.stream else fixed
        loss, _ = loss_fn(model(mix), sources)
        recent.append(-loss.item() - (fixed_baseline if fixed is not None else mixture_si_snr(mix, sources)))
        if step % args.every == 0:
            line = f"step {step:5d}  train SI-SNRi {sum(recent) / len(recent):6.2f} dB"
            if held is not None:
                model.eval()
                with torch.no_grad():
                    held_loss, _ = loss_fn(model(held[0]), held[1])
                line += f"  other mixtures {-held_loss.item() - held_baseline:6.2f} dB"
                model.train()
            print(f"{line}  {time.perf_counter() - start:5.0f} s", flush=True)
            recent = []
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimiser.step()
    return 0


if __name__ == "__main__":
    sys.exit(main())
