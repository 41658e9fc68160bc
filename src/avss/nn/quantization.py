"""Quantization-aware training (QAT) for low-bit separators (as in LiMuSE), and export of the quantised weights.

* Activations: `fake_quantize` - min-max b-bit (default 8) quantisation of a whole tensor with its own
  dynamic range, rounded in the forward pass and passed straight through (identity gradient) in the backward.
* Weights: `SoftStaircase` - w -> s * q(w / s) on the symmetric integer levels -Q..Q (Q = 2^(b-1) - 1, e.g. 3
  for 3 bits, 7 for 4 bits) with a learnable scale s (initialised to the MSE-optimal scale of the float weights).
  In training q is a smooth staircase, a sum of 2Q sigmoids of temperature T centred half-way between levels
  (Yang et al. 2019, "Quantization networks"): differentiable, and it approaches rounding as T grows (a
  `avss.training.quantization.RaiseTemperature` callback raises T every epoch). In eval mode q is the hard
  staircase clamp(round(w / s), -Q, Q), i.e. exactly the weights that `export_quantized` writes.
* `enable_quantization(module, weight_bits, act_bits)` turns every nn.Conv1d / nn.ConvTranspose1d / nn.Linear
  under `module` into its quantised twin in place (same parameters and state-dict keys, plus `weight_quant.*`).
* `export_quantized` / `save_quantized` / `load_quantized`: integer codes + one scale per tensor, bit-packed.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SCALE_GRID = 64  # candidate scales tried when initialising a weight quantiser


def fake_quantize(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Min-max uniform quantisation of `x` to 2^bits levels over [min(x), max(x)], straight-through gradient."""
    lo, hi = x.detach().amin(), x.detach().amax()
    step = (hi - lo).clamp_min(1e-8) / (2**bits - 1)
    q = torch.round((x.detach() - lo) / step) * step + lo
    return x + (q - x.detach())


def quant_levels(bits: int) -> int:
    """Q: the codes of a `bits`-bit weight are the integers -Q..Q."""
    if bits < 2:
        raise ValueError(f"weight_bits={bits}: need at least 2 bits (levels -1, 0, 1)")
    return 2 ** (bits - 1) - 1


class SoftStaircase(nn.Module):
    """Weight quantiser: soft staircase in training, hard rounding in eval (see the module docstring)."""

    def __init__(self, bits: int, temperature: float = 5.0):
        super().__init__()
        self.bits, self.levels = bits, quant_levels(bits)
        self.scale = nn.Parameter(torch.ones(()))
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        self.register_buffer("initialized", torch.tensor(False))
        edges = torch.arange(-self.levels, self.levels, dtype=torch.float32) + 0.5
        self.register_buffer("edges", edges, persistent=False)

    @torch.no_grad()
    def init_scale(self, weight: torch.Tensor) -> None:
        """Set the scale to the one (of SCALE_GRID candidates up to max|w| / Q) with the least rounding MSE."""
        w = weight.detach().float().flatten()
        top = float(w.abs().max()) / self.levels
        if top <= 0:
            self.scale.fill_(1.0)
        else:
            best, best_err = top, math.inf
            for r in np.linspace(1.0 / SCALE_GRID, 1.0, SCALE_GRID):
                s = top * float(r)
                err = float((torch.clamp(torch.round(w / s), -self.levels, self.levels) * s - w).pow(2).mean())
                if err < best_err:
                    best, best_err = s, err
            self.scale.fill_(best)
        self.initialized.fill_(True)

    def positive_scale(self) -> torch.Tensor:
        return self.scale.abs().clamp_min(1e-8)

    def codes(self, weight: torch.Tensor) -> torch.Tensor:
        """Integer codes (int8, in -Q..Q) of the hard-quantised weight."""
        q = torch.clamp(torch.round(weight.detach() / self.positive_scale().detach()), -self.levels, self.levels)
        return q.to(torch.int8)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if not bool(self.initialized):
            self.init_scale(weight)
        scale = self.positive_scale()
        u = weight / scale
        if self.training:
            q = torch.sigmoid(self.temperature * (u.unsqueeze(-1) - self.edges)).sum(-1) - self.levels
        else:
            q = torch.clamp(torch.round(u), -self.levels, self.levels)
        return q * scale


class _Quantizable:
    """Mixin: optional weight quantiser (`weight_quant`) and input-activation fake quantisation (`act_bits`)."""

    def setup_quantization(self, weight_bits: int | None, act_bits: int | None, temperature: float) -> None:
        self.weight_quant = SoftStaircase(weight_bits, temperature) if weight_bits else None
        self.act_bits = act_bits

    def quantized_weight(self) -> torch.Tensor:
        return self.weight if self.weight_quant is None else self.weight_quant(self.weight)

    def quantized_input(self, x: torch.Tensor) -> torch.Tensor:
        return fake_quantize(x, self.act_bits) if self.act_bits else x


class QuantConv1d(_Quantizable, nn.Conv1d):
    def forward(self, x):
        return self._conv_forward(self.quantized_input(x), self.quantized_weight(), self.bias)


class QuantConvTranspose1d(_Quantizable, nn.ConvTranspose1d):
    def forward(self, x):
        return F.conv_transpose1d(self.quantized_input(x), self.quantized_weight(), self.bias, self.stride,
                                  self.padding, self.output_padding, self.groups, self.dilation)


class QuantLinear(_Quantizable, nn.Linear):
    def forward(self, x):
        return F.linear(self.quantized_input(x), self.quantized_weight(), self.bias)


QUANTIZED_TWIN = {nn.Conv1d: QuantConv1d, nn.ConvTranspose1d: QuantConvTranspose1d, nn.Linear: QuantLinear}


def enable_quantization(module: nn.Module, weight_bits: int | None = 3, act_bits: int | None = 8,
                        temperature: float = 5.0) -> list[str]:
    """Make every nn.Conv1d / nn.ConvTranspose1d / nn.Linear under `module` quantisation-aware, in place.

    The layers keep their parameters (and state-dict keys); their class becomes the quantised twin, which has the
    same attributes plus the quantiser (the twins add no fields of their own, so the swap is safe). `weight_bits`
    / `act_bits` None or 0 leave weights / inputs in float. Returns the qualified names of the converted layers.
    """
    converted = []
    for name, layer in module.named_modules():
        twin = QUANTIZED_TWIN.get(type(layer))
        if twin is not None:
            layer.__class__ = twin
            layer.setup_quantization(weight_bits, act_bits, temperature)
            converted.append(name)
    return converted


def quantized_layers(module: nn.Module) -> dict[str, nn.Module]:
    """Layers under `module` whose weights are quantised, by qualified name."""
    return {n: m for n, m in module.named_modules() if isinstance(m, _Quantizable) and m.weight_quant is not None}


def set_temperature(module: nn.Module, temperature: float) -> int:
    """Set the soft-staircase temperature of every weight quantiser under `module`; returns how many."""
    count = 0
    for m in module.modules():
        if isinstance(m, SoftStaircase):
            m.temperature.fill_(float(temperature))
            count += 1
    return count


def init_scales(module: nn.Module) -> int:
    """(Re)initialise every weight quantiser's scale from its layer's current weight (after loading float
    weights); returns how many."""
    layers = quantized_layers(module)
    for layer in layers.values():
        layer.weight_quant.init_scale(layer.weight)
    return len(layers)


# ---- export ----------------------------------------------------------------------------------------------
def _skipped(name: str, exclude) -> bool:
    return any(name == p or name.startswith(p + ".") for p in exclude)


def export_quantized(module: nn.Module, exclude=()) -> dict:
    """The deployable content of a quantisation-aware `module`: {"layers": {name: {"codes": int8 tensor,
    "scale": float, "bits": int}}, "float": {state-dict key: tensor}} where "float" holds everything else that
    inference needs (biases, norms, PReLU slopes, non-quantised layers), without the float copies of quantised
    weights or quantiser internals. Submodules whose name (or prefix) is in `exclude` are left out."""
    layers = {n: m for n, m in quantized_layers(module).items() if not _skipped(n, exclude)}
    out = {"layers": {}, "float": {}}
    for name, layer in layers.items():
        quant = layer.weight_quant
        out["layers"][name] = {"codes": quant.codes(layer.weight), "scale": float(quant.positive_scale().detach()),
                               "bits": quant.bits}
    dropped = {f"{n}.weight" for n in layers}
    for key, value in module.state_dict().items():
        if key in dropped or ".weight_quant." in key or _skipped(key.rsplit(".", 1)[0], exclude):
            continue
        out["float"][key] = value.detach().float()
    return out


def _pack(codes: torch.Tensor, bits: int) -> np.ndarray:
    """int codes in -Q..Q -> bit-packed uint8 (bits per code, little-endian bit order within a code)."""
    u = (codes.flatten().numpy().astype(np.int64) + quant_levels(bits)).astype(np.uint8)
    planes = (u[:, None] >> np.arange(bits, dtype=np.uint8)) & 1
    return np.packbits(planes.flatten())


def _unpack(packed: np.ndarray, bits: int, count: int) -> torch.Tensor:
    planes = np.unpackbits(packed)[: count * bits].reshape(count, bits).astype(np.int64)
    u = (planes << np.arange(bits)).sum(1)
    return torch.from_numpy(u - quant_levels(bits))


def save_quantized(module: nn.Module, path, exclude=()) -> dict:
    """Write the quantised model (bit-packed codes, float32 for the rest, a JSON index) as one .npz file.

    Returns {"file_bytes", "payload_bytes" (packed codes + floats + scales), "float32_bytes" (the same tensors
    all in float32), "quantized_params", "float_params"}.
    """
    content = export_quantized(module, exclude)
    index, blobs, offset = {"layers": {}, "float": {}}, [], 0
    for name, entry in content["layers"].items():
        packed = _pack(entry["codes"], entry["bits"])
        index["layers"][name] = {"shape": list(entry["codes"].shape), "bits": entry["bits"], "scale": entry["scale"],
                                 "offset": offset, "nbytes": int(packed.size)}
        blobs.append(packed)
        offset += packed.size
    floats, foffset = [], 0
    for key, value in content["float"].items():
        index["float"][key] = {"shape": list(value.shape), "offset": foffset}
        floats.append(value.flatten().numpy().astype(np.float32))
        foffset += value.numel()
    codes = np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)
    values = np.concatenate(floats) if floats else np.zeros(0, np.float32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        np.savez_compressed(f, codes=codes, floats=values,
                            index=np.frombuffer(json.dumps(index).encode(), dtype=np.uint8))
    n_quant = sum(e["codes"].numel() for e in content["layers"].values())
    return {"file_bytes": path.stat().st_size,
            "payload_bytes": int(codes.size + 4 * values.size + 4 * len(content["layers"])),
            "float32_bytes": 4 * (n_quant + int(values.size)), "quantized_params": n_quant,
            "float_params": int(values.size)}


def load_quantized(module: nn.Module, path) -> nn.Module:
    """Load a `save_quantized` file into a quantisation-aware `module` of the same configuration: quantised
    weights become codes * scale (so eval mode reproduces them exactly) and their scales are set."""
    with np.load(Path(path)) as data:
        index = json.loads(data["index"].tobytes().decode())
        codes, values = data["codes"], data["floats"]
    layers = quantized_layers(module)
    state = {}
    for key, meta in index["float"].items():
        n = math.prod(meta["shape"])
        state[key] = torch.from_numpy(values[meta["offset"]:meta["offset"] + n].copy()).view(meta["shape"])
    with torch.no_grad():
        for name, meta in index["layers"].items():
            if name not in layers:
                raise KeyError(f"{name}: no quantised layer of that name in the model")
            layer = layers[name]
            n = math.prod(meta["shape"])
            q = _unpack(codes[meta["offset"]:meta["offset"] + meta["nbytes"]], meta["bits"], n).view(meta["shape"])
            layer.weight.copy_(q.float() * meta["scale"])
            layer.weight_quant.scale.fill_(meta["scale"])
            layer.weight_quant.initialized.fill_(True)
    missing, unexpected = module.load_state_dict(state, strict=False)
    if unexpected:
        raise KeyError(f"unexpected tensors in {path}: {unexpected[:5]}")
    return module
