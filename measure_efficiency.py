"""Model efficiency: params, MACs, checkpoint size, peak memory, latency, real-time factor, training-step time.

python measure_efficiency.py model=NAME|all [duration=2.0] [device=cpu|cuda] [batch_size=1] [save_json=FILE]
                             [repeats=10] [warmup=2] [train_step=true]
"""
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from avss.utils.benchmark import register_all_models_option

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
register_all_models_option()  # `model=all` next to the configs/model/*.yaml choices


@hydra.main(config_path="configs", config_name="measure_efficiency", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from avss.utils.benchmark import run

    code = run(cfg, model_name=HydraConfig.get().runtime.choices.get("model"), config_dir=CONFIG_DIR / "model")
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
