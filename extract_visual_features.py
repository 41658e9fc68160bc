"""Cache lip embeddings: run a lip frontend once over every mouth file of a folder.

python extract_visual_features.py data_dir=DIR checkpoint=MODEL.pt            # the lip frontend of an AV model
python extract_visual_features.py data_dir=DIR lip_frontend={kind:lrw_resnet18,activation:prelu,checkpoint:PATH}

Writes DIR/mouths_emb/<tag>/<ID>.npy (float32 [T, D]) for every DIR/mouths/<ID>.npz; the tag names the frontend
and a hash of its weights. Train from them with data.train.visual_cache=<tag> (see avss.data.visual_cache).
Exit code: 0 all cached, 1 some mouth files failed (one line each on stderr), 2 bad arguments.
"""
import sys

import hydra
from omegaconf import DictConfig


@hydra.main(config_path="configs", config_name="extract_visual_features", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from avss.data.visual_cache import main as run

    code = run(cfg)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
