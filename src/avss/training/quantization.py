"""Lightning callbacks for the quantisation-aware (second) training stage of low-bit models (e.g. LiMuSE).

* `InitFromFloat(path)`: before training, load the weights of a float model (a `best_model.pt` written by
  `save_pretrained` or a Lightning `.ckpt` of the float run) into the quantisation-aware model and initialise
  every weight quantiser's scale from them. When a QAT run is resumed with `ckpt_path`, Lightning restores the
  checkpoint after this hook, so the resumed weights win.
* `RaiseTemperature(start, factor, max_temperature)`: at the start of epoch e, set the soft-staircase
  temperature of every weight quantiser to min(start * factor**e, max_temperature) (a function of the epoch, so
  resumed runs continue the schedule).
"""
from __future__ import annotations

import logging
from pathlib import Path

import lightning as L

from avss.nn.quantization import init_scales, quantized_layers, set_temperature

log = logging.getLogger("avss.train")


class InitFromFloat(L.Callback):
    def __init__(self, path: str):
        self.path = Path(path)

    def setup(self, trainer, pl_module, stage=None):
        if stage not in (None, "fit"):
            return
        from avss.models.base import Separator

        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: float checkpoint to start quantisation-aware training from "
                                    "not found (set callbacks.quant_init.path)")
        model = pl_module.model
        state = Separator.from_pretrained(self.path).state_dict()
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if ".weight_quant." not in k]
        if missing or unexpected:
            raise ValueError(f"{self.path} does not match the model: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
        n = init_scales(model)
        log.info("quantisation-aware training from %s: %d quantised layers", self.path, n)


class RaiseTemperature(L.Callback):
    def __init__(self, start: float = 5.0, factor: float = 1.2, max_temperature: float = 200.0):
        if start <= 0 or factor < 1:
            raise ValueError(f"need start > 0 and factor >= 1, got start={start}, factor={factor}")
        self.start, self.factor, self.max_temperature = start, factor, max_temperature

    def temperature(self, epoch: int) -> float:
        return min(self.start * self.factor**epoch, self.max_temperature)

    def on_train_epoch_start(self, trainer, pl_module):
        model = getattr(pl_module, "model", pl_module)
        if not quantized_layers(model):
            return
        t = self.temperature(trainer.current_epoch)
        set_temperature(model, t)
        pl_module.log("quant/temperature", t, on_step=False, on_epoch=True)
