"""Function-preserving growth of a trained SuDoRM-RF: more U-ConvBlocks without losing what was learned.

Every U-ConvBlock is residual (x + project(...)), so a block whose last 1x1 convolution is zero is the identity.
`deepen` follows each trained block with copies of itself whose output convolution is zeroed: the deeper model
computes exactly what the trained one did, the copies start from features that are already useful, and training
then only has to learn what the extra depth adds (the idea of Net2Net, Chen et al. 2016, for residual blocks).
"""
from __future__ import annotations

import torch

from avss.models.base import build_from_config
from avss.models.sudormrf import SuDoRMRF


def deepen(model: SuDoRMRF, blocks: int) -> SuDoRMRF:
    """A new SuDoRM-RF with `blocks` U-ConvBlocks (a multiple of the model's) computing the same function."""
    if not isinstance(model, SuDoRMRF):
        raise TypeError(f"deepen grows SuDoRMRF models, not {type(model).__name__}")
    old = len(model.masker.blocks)
    if blocks < old or blocks % old:
        raise ValueError(f"blocks={blocks}: give a multiple of the model's {old} blocks")
    grown = build_from_config({**model.config, "blocks": blocks})
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("masker.blocks.")}
    missing, unexpected = grown.load_state_dict(state, strict=False)
    if unexpected or any(not key.startswith("masker.blocks.") for key in missing):
        raise RuntimeError(f"deepen: weights outside the blocks do not match: {unexpected or missing}")
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
