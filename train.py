"""Train a separator: `python train.py [experiment=NAME] [key=value ...]` (see configs/train.yaml)."""
import hydra
from omegaconf import DictConfig


@hydra.main(config_path="configs", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from avss.training.run import train

    train(cfg)


if __name__ == "__main__":
    main()
