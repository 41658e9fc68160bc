"""Separate every mixture of a folder with a trained checkpoint.

python inference.py data_dir=DIR save_dir=OUT [checkpoint=PATH] [device=cpu|cuda] [chunk_seconds=8] [overlap_seconds=1]
    [refinement=none | refinement.shifts=4 ...]

Writes OUT/s1/<mix name>.wav and OUT/s2/<mix name>.wav (16-bit, the mixture's rate and length). With no
arguments it separates the bundled `examples` folder with `checkpoints/default.pt`.
Exit code: 0 all separated, 1 some mixtures failed (one line each on stderr), 2 bad arguments.
"""
import sys

import hydra
from omegaconf import DictConfig


@hydra.main(config_path="configs", config_name="inference", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from avss.inference.runner import main as run

    code = run(cfg)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
