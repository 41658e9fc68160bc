"""separate_video and separate_video.py on a tiny generated video with a tiny untrained checkpoint."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from omegaconf import OmegaConf

from avss.io.errors import InputError
from avss.models.base import Separator
from avss.models.convtasnet import ConvTasNet
from avss.video.io import read_audio_track, read_video
from avss.video.separate import AUDIO_ONLY_ORDER, SpeakerTrack, main, separate_video
from test_video_io import make_video

ROOT = Path(__file__).resolve().parents[1]


def tiny_convtasnet():
    torch.manual_seed(0)
    return ConvTasNet(n_src=2, sample_rate=16000, n_filters=16, kernel_size=16, bottleneck=8, hidden=16, skip=8,
                      blocks=2, repeats=1).eval()


class MouthGain(Separator):
    """Fake extraction model: output = mix * mean mouth brightness / 255."""

    needs_visual = True
    task = "extraction"

    def __init__(self, sample_rate: int = 16000):
        super().__init__()
        self.sample_rate, self.n_src = sample_rate, 1

    def forward(self, mix, mouths=None):
        return (mix * (mouths.float().mean(dim=(1, 2, 3)) / 255.0)[:, None]).unsqueeze(1)


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "talk.mp4"
    make_video(path, fps=25, seconds=0.8)
    return path


def test_separate_video_writes_wavs_mp4s_and_tracks(tmp_path, video):
    result = separate_video(tiny_convtasnet(), video, tmp_path / "out", num_speakers=2, chunk_seconds=None)
    mix, rate = read_audio_track(video)
    for k in (1, 2):
        info = sf.info(str(tmp_path / "out" / f"speaker{k}.wav"))
        assert (info.samplerate, info.frames) == (44100, mix.shape[-1]) and rate == 44100
        clip = read_video(tmp_path / "out" / f"speaker{k}.mp4")
        assert clip.frames.shape == (20, 48, 64, 3) and clip.audio_rate == 44100
        assert 0 <= clip.audio.shape[-1] - mix.shape[-1] <= 1024
    tracks = json.loads((tmp_path / "out" / "tracks.json").read_text())
    assert tracks["video"] == str(video) and tracks["num_speakers"] == 2
    assert tracks["assignment"] == AUDIO_ONLY_ORDER == result["assignment"]
    assert abs(tracks["duration"] - 0.8) < 0.01 and tracks["fps"] == 25
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "speaker1.mp4", "speaker1.wav", "speaker2.mp4", "speaker2.wav", "tracks.json"]

    with pytest.raises(ValueError, match="exactly 2 speakers"):
        separate_video(tiny_convtasnet(), video, tmp_path / "three", num_speakers=3)
    assert not (tmp_path / "three").exists()


def test_audio_visual_model_needs_face_tracks(tmp_path, video):
    with pytest.raises(InputError, match="face tracking is not available yet") as caught:
        separate_video(MouthGain(), video, tmp_path / "av")
    assert "audio-only checkpoint" in caught.value.one_line()

    def fake_tracker(path, num_speakers, info):  # what a face tracker will hand over: left face dark, right bright
        return [SpeakerTrack(np.full((20, 96, 96), v, np.uint8), (0, 0, 10, 10), f"face {i + 1}")
                for i, v in enumerate((0, 255))]

    result = separate_video(MouthGain(), video, tmp_path / "av", tracker=fake_tracker, write_videos=False)
    first, _ = sf.read(tmp_path / "av" / "speaker1.wav")
    second, _ = sf.read(tmp_path / "av" / "speaker2.wav")
    assert np.abs(first).max() == 0 and np.abs(second).max() > 0.1
    assert result["speakers"][1]["face"]["label"] == "face 2" and "face" in result["assignment"]

    make_video(tmp_path / "mute.mp4", seconds=0.4, audio_rate=None)
    with pytest.raises(InputError, match="no audio track"):
        separate_video(tiny_convtasnet(), tmp_path / "mute.mp4", tmp_path / "mute")


def run_script(cwd, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(ROOT / "separate_video.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


def test_separate_video_script(tmp_path, video, capsys):
    tiny_convtasnet().save_pretrained(tmp_path / "ckpt" / "tiny.pt")
    ok = run_script(tmp_path, f"video={video.name}", "save_dir=sep", "checkpoint=ckpt/tiny.pt")
    assert ok.returncode == 0, ok.stderr
    assert "speaker1.wav" in ok.stdout and "speaker2.mp4" in ok.stdout and "tracks.json" in ok.stdout
    assert (tmp_path / "sep" / "speaker2.mp4").is_file()
    assert not (tmp_path / "outputs").exists() and not (tmp_path / ".hydra").exists()

    bad = run_script(tmp_path, "video=nope.mp4", "save_dir=sep2", "checkpoint=ckpt/tiny.pt")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "nope.mp4" in bad.stderr

    base = {"video": str(video), "save_dir": str(tmp_path / "sep3"), "checkpoint": str(tmp_path / "ckpt" / "tiny.pt"),
            "num_speakers": 2, "device": "cpu", "chunk_seconds": 8.0, "overlap_seconds": 1.0, "write_videos": False}
    for key, value in (("checkpoint", str(tmp_path / "none.pt")), ("num_speakers", 3)):
        assert main(OmegaConf.create({**base, key: value})) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and str(value) in err, err
    assert not (tmp_path / "sep3").exists()
