"""Separate the speakers of a video with a trained checkpoint.

python separate_video.py video=FILE save_dir=OUT [num_speakers=2] [checkpoint=checkpoints/default.pt] [device=cpu|cuda]

Finds the faces (OpenCV Haar cascades), crops their mouths, separates the sound and puts each voice on its face:
speaker K is the K-th face from the left. Writes OUT/speakerK.wav (the video's audio rate and length),
OUT/speakerK.mp4 (the original picture with that speaker's audio), OUT/mouths/speakerK.npz and OUT/tracks.json.
Exit code: 0 written, 1 the video could not be separated or fewer faces than num_speakers were found (one line
on stderr; what could be written is written), 2 bad arguments.
"""
import sys

import hydra
from omegaconf import DictConfig


@hydra.main(config_path="configs", config_name="separate_video", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from avss.video.separate import main as run

    code = run(cfg)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
