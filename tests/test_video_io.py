"""avss.video.io on tiny generated videos: frame-rate conversion, audio, errors, writing mp4 with new audio."""
from fractions import Fraction

import av
import numpy as np
import pytest

from avss.io.errors import InputError
from avss.video.io import probe_video, read_video, write_video_with_audio

SECONDS, WIDTH, HEIGHT, AUDIO_RATE = 1.5, 64, 48, 44100
TONES = (440.0, 1000.0)  # left, right


def marker(k: int) -> int:
    """Brightness of source frame k, so a decoded frame tells which source frame it came from."""
    return (k * 6) % 240


def make_video(path, fps=25, seconds=SECONDS, size=(WIDTH, HEIGHT), audio_rate=AUDIO_RATE, channels=2):
    """A flat-grey video (frame k at brightness marker(k)) with a two-tone stereo AAC track; returns #frames."""
    width, height = size
    n = round(seconds * fps)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": "0", "preset": "ultrafast"}
        if audio_rate:
            audio = container.add_stream("aac", rate=audio_rate)
            audio.layout = "stereo" if channels == 2 else "mono"
        for k in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), marker(k), np.uint8), format="rgb24")
            frame.pts = k
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if audio_rate:
            t = np.arange(round(seconds * audio_rate)) / audio_rate
            sound = np.stack([0.3 * np.sin(2 * np.pi * f * t) for f in TONES])[:channels].astype(np.float32)
            for start in range(0, sound.shape[1], 1024):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(sound[:, start:start + 1024]), format="fltp",
                                                   layout=audio.layout.name)
                frame.sample_rate, frame.pts = audio_rate, start
                for packet in audio.encode(frame):
                    container.mux(packet)
            for packet in audio.encode(None):
                container.mux(packet)
    return n


def dominant_hz(x, rate):
    return np.argmax(np.abs(np.fft.rfft(x))) * rate / len(x)


def test_read_video_frames_audio_and_30_to_25_fps(tmp_path):
    make_video(tmp_path / "a25.mp4", fps=25)
    clip = read_video(tmp_path / "a25.mp4")
    assert clip.frames.shape == (round(SECONDS * 25), HEIGHT, WIDTH, 3) and clip.frames.dtype == np.uint8
    assert clip.fps == 25 and clip.audio_rate == AUDIO_RATE and clip.audio.dtype == np.float32
    assert clip.audio.shape[0] == 2 and abs(clip.audio.shape[1] - SECONDS * AUDIO_RATE) <= 1024
    assert [round(dominant_hz(ch, AUDIO_RATE)) for ch in clip.audio] == [440, 1000]
    assert np.abs(clip.frames[:, 0, 0, 0].astype(int) - [marker(k) for k in range(38)]).max() <= 2

    n30 = make_video(tmp_path / "a30.mkv", fps=30, audio_rate=None)
    clip = read_video(tmp_path / "a30.mkv", fps=25)
    assert clip.frames.shape[0] == round(SECONDS * 25) and clip.audio is None and clip.audio_rate is None
    nearest = [min(round(k * 30 / 25), n30 - 1) for k in range(clip.frames.shape[0])]  # nearest source frame
    assert np.abs(clip.frames[:, 0, 0, 0].astype(int) - [marker(j) for j in nearest]).max() <= 2
    assert abs(clip.duration - SECONDS) < 1e-6

    small = read_video(tmp_path / "a25.mp4", fps=10, audio_rate=16000, max_side=32, gray=True)
    assert small.frames.shape == (15, 24, 32) and small.audio_rate == 16000
    assert abs(small.audio.shape[1] - SECONDS * 16000) <= 400
    info = probe_video(tmp_path / "a25.mp4")
    assert (info.width, info.height, info.fps, info.audio_rate, info.audio_channels) == (64, 48, 25.0, 44100, 2)


def test_unreadable_inputs_raise_input_error(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(4000))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    import soundfile as sf

    sf.write(tmp_path / "sound.wav", np.zeros(800, np.float32), 8000)
    for path in (junk, empty, tmp_path / "missing.mp4", tmp_path / "sound.wav", tmp_path):
        with pytest.raises(InputError) as caught:
            read_video(path)
        line = caught.value.one_line()
        assert line.startswith(f"{path}: ") and "\n" not in line
    with pytest.raises(InputError, match="no video stream"):
        probe_video(tmp_path / "sound.wav")


def test_write_video_with_audio_round_trip(tmp_path):
    make_video(tmp_path / "src30.mp4", fps=30)
    sound = (0.5 * np.sin(2 * np.pi * 300 * np.arange(24000) / 16000)).astype(np.float32)
    stereo = np.stack([sound, -0.5 * sound])

    out = write_video_with_audio(tmp_path / "from_path.mp4", tmp_path / "src30.mp4", None, stereo, 16000)
    back = read_video(out, fps=30)
    assert back.frames.shape == (45, HEIGHT, WIDTH, 3)
    assert back.audio_rate == 16000 and back.audio.shape[0] == 2
    assert 0 <= back.audio.shape[1] - 24000 <= 1024  # AAC pads to whole 1024-sample frames
    assert round(dominant_hz(back.audio[0], 16000)) == 300
    with av.open(str(out)) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
        assert container.streams.video[0].codec_context.name in ("h264", "mpeg4")

    frames = read_video(tmp_path / "src30.mp4").frames[:, :47, :63]  # odd size: cropped to 62 x 46
    out = write_video_with_audio(tmp_path / "from_frames.mp4", frames, 25, sound, 16000)
    back = read_video(out)
    assert back.frames.shape == (38, 46, 62, 3) and back.audio.shape[0] == 1
    assert 0 <= back.audio.shape[1] - 24000 <= 1024
    assert np.abs(back.frames[:, 0, 0, 0].astype(int) - frames[:, 0, 0, 0]).max() <= 3

    copied = write_video_with_audio(tmp_path / "copied.mp4", out, None, stereo, 16000, copy_video=True,
                                    audio_offset=-0.2)
    back = read_video(copied)
    assert back.frames.shape == (38, 46, 62, 3) and back.audio.shape[0] == 2
    assert abs(probe_video(copied).audio_offset + 0.2) < 0.01
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copied.mp4", "from_frames.mp4", "from_path.mp4",
                                                           "src30.mp4"]  # no partial files left
