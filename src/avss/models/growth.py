"""Function-preserving growth of a trained SuDoRM-RF: more U-ConvBlocks without losing what was learned.

Every U-ConvBlock is residual (x + project(...)), so a block whose last 1x1 convolution is zero is the identity.
`deepen` follows each trained block with copies of itself whose output convolution is zeroed: the deeper model
computes exactly what the trained one did, the copies start from features that are already useful, and training
then only has to learn what the extra depth adds (the idea of Net2Net, Chen et al. 2016, for residual blocks).

`extend_pyramid` gives every block coarser pyramid levels instead (a longer receptive field at little cost: a
level at stride 2^q runs 2^q times fewer frames). By default a new level's output norm starts with zero gain, so
it adds exactly nothing. That start is exact but slow: on the shipped model with Adam at lr 1e-4 the zero gains
had only reached ~1e-3 after 450 steps. `start_gain` > 0 instead starts each new level as a copy of the
coarsest trained one with its norm scaled by `start_gain`: a small change of the function (0.1 cost the
shipped model 0.09 dB on 50 validation mixtures) that gets gradients of a useful size.
"""
from __future__ import annotations

import torch

from avss.models.base import build_from_config
from avss.models.sudormrf import SuDoRMRF


def _rebuilt_with(model: SuDoRMRF, state: dict, is_new, caller: str, **changes) -> SuDoRMRF:
    """The model's config with `changes`, built and loaded with `state`; only keys for which `is_new(key)` holds
    may be left out (they keep their fresh initialisation)."""
    grown = build_from_config({**model.config, **changes})
    missing, unexpected = grown.load_state_dict(state, strict=False)
    if unexpected or not all(is_new(key) for key in missing):
        raise RuntimeError(f"{caller}: weights outside the grown parts do not match: {unexpected or missing}")
    return grown


def deepen(model: SuDoRMRF, blocks: int) -> SuDoRMRF:
    """A new SuDoRM-RF with `blocks` U-ConvBlocks (a multiple of the model's) computing the same function."""
    if not isinstance(model, SuDoRMRF):
        raise TypeError(f"deepen grows SuDoRMRF models, not {type(model).__name__}")
    old = len(model.masker.blocks)
    if blocks < old or blocks % old:
        raise ValueError(f"blocks={blocks}: give a multiple of the model's {old} blocks")
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("masker.blocks.")}
    grown = _rebuilt_with(model, state, lambda key: key.startswith("masker.blocks."), "deepen", blocks=blocks)
    copies = blocks // old
    for index, trained in enumerate(model.masker.blocks):
        for offset in range(copies):
            target = grown.masker.blocks[index * copies + offset]
            target.load_state_dict(trained.state_dict())  # copies the values
            if offset:
                output_conv = target.project[-1]
                with torch.no_grad():
                    output_conv.weight.zero_()
                    output_conv.bias.zero_()
    return grown.train(model.training)


def extend_pyramid(model: SuDoRMRF, depth: int, start_gain: float = 0.0) -> SuDoRMRF:
    """A new SuDoRM-RF whose U-ConvBlocks have `depth` pyramid levels (at least the model's); the same function
    when `start_gain` is 0, otherwise new levels copy the coarsest trained one with their norm scaled by it."""
    if not isinstance(model, SuDoRMRF):
        raise TypeError(f"extend_pyramid grows SuDoRMRF models, not {type(model).__name__}")
    old = model.config["depth"]
    if depth < old:
        raise ValueError(f"depth={depth}: give at least the model's {old} pyramid levels")
    new_levels = [f".levels.{q}." for q in range(old, depth)]
    grown = _rebuilt_with(model, model.state_dict(), lambda key: any(part in key for part in new_levels),
                          "extend_pyramid", depth=depth)
    with torch.no_grad():
        for block in grown.masker.blocks:
            coarsest = block.levels[old - 1]
            for level in block.levels[old:]:
                if start_gain:
                    level.load_state_dict(coarsest.state_dict())
                norm, trained = (getattr(n, "norm", n) for n in (level[-1], coarsest[-1]))  # cLN wraps a LayerNorm
                norm.weight.copy_(start_gain * trained.weight)
                norm.bias.copy_(start_gain * trained.bias)
    return grown.train(model.training)
