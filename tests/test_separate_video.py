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

from avss.data.mouths import num_frames
from avss.io.errors import InputError
from avss.models.base import Separator
from avss.models.convtasnet import ConvTasNet
from avss.video.io import read_audio_track, read_video
from avss.metrics.separation import si_snr
from avss.video.separate import AUDIO_ONLY_ORDER, SYNC_ORDER, SpeakerTrack, main, separate_video
from test_faces import RATE, make_face_video, two_voices, voice
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


class Oracle(Separator):
    """Fake audio-only separator that returns the true sources in a fixed order (scaled like the input)."""

    def __init__(self, sources, order=(1, 0)):
        super().__init__()
        self.sample_rate, self.n_src = RATE, 2
        self.sources = torch.as_tensor(np.stack([sources[i] for i in order]), dtype=torch.float32)
        self.mix_rms = float(np.sqrt(np.mean(np.sum(sources, axis=0) ** 2)))

    def forward(self, mix, mouths=None):
        length = mix.shape[-1]
        out = self.sources[:, :length]
        out = torch.nn.functional.pad(out, (0, length - out.shape[-1]))
        gain = mix.pow(2).mean(dim=-1).sqrt() / self.mix_rms
        return out.unsqueeze(0) * gain[:, None, None]


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
    assert tracks["assignment"] == result["assignment"] == f"{AUDIO_ONLY_ORDER} (found 0 faces, expected 2)"
    assert tracks["faces_found"] == 0 and tracks["problem"] == "found 0 faces, expected 2" and tracks["sync"] is None
    assert abs(tracks["duration"] - 0.8) < 0.01 and tracks["fps"] == 25
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "speaker1.mp4", "speaker1.wav", "speaker2.mp4", "speaker2.wav", "tracks.json"]

    with pytest.raises(ValueError, match="exactly 2 speakers"):
        separate_video(tiny_convtasnet(), video, tmp_path / "three", num_speakers=3)
    assert not (tmp_path / "three").exists()


def test_audio_visual_model_needs_face_tracks(tmp_path, video):
    with pytest.raises(InputError, match="found 0 faces, expected 2; MouthGain needs one face per speaker") as caught:
        separate_video(MouthGain(), video, tmp_path / "av")
    assert "audio-only checkpoint" in caught.value.one_line()
    with pytest.raises(InputError, match="no face tracker was given"):
        separate_video(MouthGain(), video, tmp_path / "av", tracker=lambda *args: None)
    assert not (tmp_path / "av").exists()

    def fake_tracker(path, num_speakers, info):  # what a face tracker will hand over: left face dark, right bright
        return [SpeakerTrack(np.full((20, 96, 96), v, np.uint8), (0, 0, 10, 10), f"face {i + 1}")
                for i, v in enumerate((0, 255))]

    result = separate_video(MouthGain(), video, tmp_path / "av", tracker=fake_tracker, write_videos=False)
    first, _ = sf.read(tmp_path / "av" / "speaker1.wav")
    second, _ = sf.read(tmp_path / "av" / "speaker2.wav")
    assert np.abs(first).max() == 0 and np.abs(second).max() > 0.1
    assert result["speakers"][1]["face"]["label"] == "face 2" and "face" in result["assignment"]
    mouths = np.load(tmp_path / "av" / "mouths" / "speaker2.npz")["data"]  # as many frames as the audio covers
    assert mouths.shape == (num_frames(first.size, 44100), 96, 96) and mouths.dtype == np.uint8
    assert (mouths == 255).all()
    assert result["speakers"][1]["face"]["mouths"] == "mouths/speaker2.npz"

    make_video(tmp_path / "mute.mp4", seconds=0.4, audio_rate=None)
    with pytest.raises(InputError, match="no audio track"):
        separate_video(tiny_convtasnet(), tmp_path / "mute.mp4", tmp_path / "mute")


def run_script(cwd, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(ROOT / "separate_video.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


def test_separate_video_script(tmp_path, video, capsys):
    tiny_convtasnet().save_pretrained(tmp_path / "ckpt" / "tiny.pt")
    make_face_video(tmp_path / "faces.mp4", two_voices(1.2), 1.2)
    ok = run_script(tmp_path, "video=faces.mp4", "save_dir=sep", "checkpoint=ckpt/tiny.pt")
    assert ok.returncode == 0, ok.stderr
    assert "speaker1.wav" in ok.stdout and "speaker2.mp4" in ok.stdout and "tracks.json" in ok.stdout
    assert "mouths/speaker2.npz" in ok.stdout and "faces: 2 face(s)" in ok.stdout
    assert (tmp_path / "sep" / "speaker2.mp4").is_file() and (tmp_path / "sep" / "mouths" / "speaker1.npz").is_file()
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


@pytest.mark.parametrize("model_order", [(0, 1), (1, 0)])
def test_each_voice_goes_to_its_face(tmp_path, model_order):
    """Two drawn faces whose mouths follow their own voices; the fake separator returns the true voices in either
    order; speaker1.wav must be the left face's voice and speaker2.wav the right one's."""
    seconds = 2.4
    voices = two_voices(seconds)
    make_face_video(tmp_path / "talk.mp4", voices, seconds)
    result = separate_video(Oracle(voices, model_order), tmp_path / "talk.mp4", tmp_path / "out", chunk_seconds=None,
                            write_videos=False)
    assert result["faces_found"] == 2 and result["problem"] is None and result["assignment"] == SYNC_ORDER
    assert result["sync"]["order"] == [model_order.index(0), model_order.index(1)]
    boxes = [entry["face"]["box"] for entry in result["speakers"]]
    assert boxes[0][2] < 80 < boxes[1][0]  # speaker1 = the left face, speaker2 = the right face
    for k, own in enumerate(voices, start=1):
        audio, rate = sf.read(tmp_path / "out" / f"speaker{k}.wav", dtype="float32")
        assert rate == RATE and abs(audio.size - own.size) <= 1024
        n = min(audio.size, own.size)
        assert si_snr(audio[:n], own[:n]) > 15, k  # AAC round trip of the mixture, then the oracle's voice
        mouths = np.load(tmp_path / "out" / "mouths" / f"speaker{k}.npz")["data"]
        assert mouths.shape == (num_frames(audio.size, RATE), 96, 96) and mouths.dtype == np.uint8
    tracks = json.loads((tmp_path / "out" / "tracks.json").read_text())
    assert tracks["speakers"][0]["face"]["mouths"] == "mouths/speaker1.npz" and len(tracks["sync"]["correlation"]) == 2


def test_one_face_for_two_speakers_writes_what_it_can(tmp_path, capsys):
    seconds = 1.2
    make_face_video(tmp_path / "one.mp4", [voice(seconds, 150.0, 3.0, 0.0, seed=4)], seconds)
    result = separate_video(tiny_convtasnet(), tmp_path / "one.mp4", tmp_path / "out", write_videos=False)
    assert result["problem"] == "found 1 face, expected 2" and result["faces_found"] == 1
    assert result["assignment"].startswith(AUDIO_ONLY_ORDER) and result["sync"] is None
    assert [e["face"] for e in result["speakers"]] == [None, None]
    assert result["unmatched_faces"][0]["mouths"] == "mouths/face1.npz"
    audio, rate = sf.read(tmp_path / "out" / "speaker1.wav")
    assert np.load(tmp_path / "out" / "mouths" / "face1.npz")["data"].shape == (num_frames(audio.size, rate), 96, 96)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "mouths", "speaker1.wav", "speaker2.wav", "tracks.json"]

    tiny_convtasnet().save_pretrained(tmp_path / "tiny.pt")
    cfg = {"video": str(tmp_path / "one.mp4"), "save_dir": str(tmp_path / "cli"),
           "checkpoint": str(tmp_path / "tiny.pt"),
           "num_speakers": 2, "device": "cpu", "chunk_seconds": 8.0, "overlap_seconds": 1.0, "write_videos": False}
    assert main(OmegaConf.create(cfg)) == 1
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1 and "found 1 face, expected 2" in captured.err
    assert "faces: 1 face(s)" in captured.out
    assert (tmp_path / "cli" / "speaker2.wav").is_file() and (tmp_path / "cli" / "tracks.json").is_file()
