"""Model complexity: multiply-accumulates (MACs) of one forward pass and parameter counts.

MACs come from `torch.utils.flop_counter.FlopCounterMode` (its FLOPs / 2: convolutions, transposed
convolutions, matmul / linear, batched matmul, attention), with one correction for recurrent layers:

* `nn.LSTM`, `nn.GRU` and `nn.RNN` are always counted analytically from the input shape seen by a forward
  hook, and whatever the flop counter recorded inside those modules is discarded. The counter's view of a
  recurrent layer depends on the kernel that ran: on CPU in torch 2.13 a plain LSTM goes to oneDNN and is
  not counted at all, an LSTM with `proj_size` and GRU/RNN are decomposed into (add)mm calls that are counted.
  Replacing rather than adding keeps the figure the same on every backend and never counts a layer twice.
* Per time step, direction and layer (input size `i`, hidden size `h`, state size `r` = proj_size or h):
      LSTM  4*h*(i + r)  (+ h*r for the projection)     GRU  3*h*(i + h)     RNN  h*(i + h)
  with `i` = input_size for layer 0 and r * num_directions above. Multiplied by the number of (batch, time)
  steps (the row count of a PackedSequence) and by the number of directions.
* Only the matrix products are counted, the same convention FlopCounterMode follows for every other layer:
  bias additions, gate nonlinearities, the elementwise gate/state products, norms, activations and masking
  are not counted anywhere. (The decomposed GRU/RNN kernels give exactly the formulas above.)

Visual frontends (submodules named `lip_frontend` or `visual_frontend`) are tallied separately, so a model's
separator cost can be reported without the lip-reading network, whose cost depends on the video, not the audio.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence
from torch.utils.flop_counter import FlopCounterMode

FRONTEND_NAMES = ("lip_frontend", "visual_frontend", "speaker_encoder")  # cue encoders, reported apart
RECURRENT_TYPES = (nn.LSTM, nn.GRU, nn.RNN)


# ---- parameters ------------------------------------------------------------------------------------------
def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of (distinct) parameter elements of `module`."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def frontend_modules(model: nn.Module, names=FRONTEND_NAMES) -> dict[str, nn.Module]:
    """Outermost submodules whose attribute name is one of `names`, by qualified name."""
    found: dict[str, nn.Module] = {}
    for qualname, module in model.named_modules():
        if qualname.rpartition(".")[2] in names and not any(qualname.startswith(f + ".") for f in found):
            found[qualname] = module
    return found


def param_breakdown(model: nn.Module, names=FRONTEND_NAMES) -> dict[str, int]:
    """{"total", "separator", "frontend"} parameter counts; frontend = modules named in `names`.

    A parameter shared between the frontend and the rest is counted once, as frontend.
    """
    frontend_ids = {id(p) for m in frontend_modules(model, names).values() for p in m.parameters()}
    total = frontend = 0
    for p in model.parameters():
        total += p.numel()
        if id(p) in frontend_ids:
            frontend += p.numel()
    return {"total": total, "separator": total - frontend, "frontend": frontend}


# ---- recurrent layers ------------------------------------------------------------------------------------
def recurrent_macs(module: nn.RNNBase, steps: int) -> int:
    """Analytic MACs of `module` over `steps` (batch x time) input rows, matrix products only."""
    hidden, dirs = module.hidden_size, 2 if module.bidirectional else 1
    proj = getattr(module, "proj_size", 0) or 0
    state = proj or hidden
    per_step = 0
    for layer in range(module.num_layers):
        inp = module.input_size if layer == 0 else state * dirs
        if isinstance(module, nn.LSTM):
            per_step += 4 * hidden * (inp + state) + hidden * proj
        elif isinstance(module, nn.GRU):
            per_step += 3 * hidden * (inp + hidden)
        else:
            per_step += hidden * (inp + hidden)
    return per_step * dirs * steps


def _recurrent_steps(module: nn.RNNBase, x) -> int:
    if isinstance(x, PackedSequence):
        return int(x.data.shape[0])
    if x.dim() == 2:  # unbatched [T, in]
        return int(x.shape[0])
    return int(x.shape[0] * x.shape[1])


# ---- MACs ------------------------------------------------------------------------------------------------
@dataclass
class MacsReport:
    total: float  # MACs of the whole forward pass
    frontend: float  # of which inside visual frontends
    by_frontend: dict  # qualified name -> MACs

    @property
    def separator(self) -> float:
        return self.total - self.frontend


class _MacTally:
    """Hooks that run inside a FlopCounterMode: swap recurrent layers' counted FLOPs for analytic MACs and
    attribute everything that happens inside a frontend module to that frontend."""

    def __init__(self, model: nn.Module, counter: FlopCounterMode, frontend_names):
        self.counter = counter
        self.correction = 0.0  # MACs to add to counter FLOPs / 2 (analytic recurrent MACs - counted ones)
        self.by_frontend: dict[str, float] = {}
        self.handles = []
        self._marks: dict[int, list] = {}
        for module in model.modules():
            if isinstance(module, RECURRENT_TYPES):
                self.handles.append(module.register_forward_pre_hook(self._rnn_pre))
                self.handles.append(module.register_forward_hook(self._rnn_post, with_kwargs=True))
        for qualname, module in frontend_modules(model, frontend_names).items():
            self.by_frontend[qualname] = 0.0
            self.handles.append(module.register_forward_pre_hook(self._frontend_pre))
            self.handles.append(module.register_forward_hook(self._make_frontend_post(qualname)))

    def macs(self) -> float:
        return self.counter.get_total_flops() / 2 + self.correction

    def _push(self, key, value):
        self._marks.setdefault(key, []).append(value)  # a stack: a module may be re-entered

    def _pop(self, key):
        return self._marks[key].pop()

    def _rnn_pre(self, module, args):
        self._push(("rnn", id(module)), self.counter.get_total_flops())

    def _rnn_post(self, module, args, kwargs, output):
        counted = (self.counter.get_total_flops() - self._pop(("rnn", id(module)))) / 2
        x = args[0] if args else kwargs["input"]
        self.correction += recurrent_macs(module, _recurrent_steps(module, x)) - counted

    def _frontend_pre(self, module, args):
        self._push(("frontend", id(module)), self.macs())

    def _make_frontend_post(self, qualname):
        def post(module, args, output):
            self.by_frontend[qualname] += self.macs() - self._pop(("frontend", id(module)))
        return post

    def remove(self):
        for handle in self.handles:
            handle.remove()


def _map_tensors(value, fn):
    if isinstance(value, torch.Tensor):
        return fn(value)
    if type(value) in (list, tuple):  # not PackedSequence & co: those fall back to a real pass
        return type(value)(_map_tensors(v, fn) for v in value)
    if type(value) is dict:
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    return value


def _to_meta(value):
    return _map_tensors(value, lambda t: t.detach().to("meta"))


def _meta_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` whose parameters and buffers live on the meta device (no weights are copied)."""
    memo = {id(p): nn.Parameter(p.detach().to("meta"), requires_grad=p.requires_grad) for p in model.parameters()}
    memo.update({id(b): b.detach().to("meta") for b in model.buffers()})
    return copy.deepcopy(model, memo)


def _count(model, inputs, kwargs, frontend_names) -> MacsReport:
    counter = FlopCounterMode(display=False)
    tally = _MacTally(model, counter, frontend_names)
    inputs, kwargs = _map_tensors((inputs, kwargs), torch.Tensor.detach)
    try:
        with torch.no_grad(), counter:
            model(*inputs, **kwargs)
    finally:
        tally.remove()
    frontend = sum(tally.by_frontend.values())
    return MacsReport(total=float(tally.macs()), frontend=float(frontend), by_frontend=dict(tally.by_frontend))


def macs_breakdown(model: nn.Module, *inputs, frontend_names=FRONTEND_NAMES, meta: bool = True,
                   **kwargs) -> MacsReport:
    """Count the MACs of one forward pass `model(*inputs, **kwargs)` (no grad), with visual frontends apart.

    With `meta` (default) the pass runs on a copy of the model on the meta device, so only shapes are
    propagated and nothing is computed (same count, a fraction of the time). Models whose forward needs
    real values (data-dependent control flow, `.item()`) fall back to a real pass on the given inputs.
    """
    if meta:
        try:
            meta_model = _meta_copy(model)
            return _count(meta_model, _to_meta(inputs), _to_meta(kwargs), frontend_names)
        except (NotImplementedError, RuntimeError):
            pass  # e.g. "Tensor.item() cannot be called on meta tensors": count on real tensors
    return _count(model, inputs, kwargs, frontend_names)


def count_macs(model: nn.Module, *inputs, meta: bool = True, **kwargs) -> float:
    """Multiply-accumulates of one forward pass `model(*inputs, **kwargs)` (frontends included)."""
    return macs_breakdown(model, *inputs, meta=meta, **kwargs).total
