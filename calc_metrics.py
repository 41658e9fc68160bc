"""Score separated files against references: SI-SNRi, SDRi, PESQ, STOI.

python calc_metrics.py gt_dir=DATASET_DIR pred_dir=OUTPUT_DIR [save_json=results.json] [permute=true]
"""
import sys

import hydra
from omegaconf import DictConfig


@hydra.main(config_path="configs", config_name="calc_metrics", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from avss.metrics.cli import run

    code = run(cfg)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
