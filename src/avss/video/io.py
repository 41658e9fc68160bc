"""Video file I/O with PyAV: read frames (resampled to a fixed frame rate) and audio, write mp4 with a new audio track.

- `probe_video(path) -> VideoInfo`: size, frame rate, duration, audio rate/channels and the audio's start relative
  to the first video frame, without decoding the whole file.
- `iter_frames(path, fps=25, max_side=None, gray=False)`: the frames one by one at `fps` (bounded memory; what a
  face tracker should use on long videos).
- `read_video(path, fps=25, audio_rate=None, max_side=None, gray=False) -> VideoClip`: everything in memory.
- `write_video_with_audio(path, frames_or_source_video, fps, audio, audio_rate)`: an mp4 (H.264 or MPEG-4 Part 2
  video, AAC audio).

Frame-rate conversion picks, for output frame k at time k / fps, the decoded frame whose timestamp is nearest
(frames are repeated or dropped; nothing is interpolated). Times are measured from the first decoded video frame.
Frames that carry a display rotation (phone videos) are turned upright. Problems with the input file raise
`avss.io.errors.InputError`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from avss.io.audio import load_audio, resample, to_mono
from avss.io.errors import InputError

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
                    ".flv", ".wmv", ".3gp")
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
_REENCODE_HINT = "check that it plays; re-export it as an H.264/AAC mp4 if needed"


@dataclass
class VideoInfo:
    """What `probe_video` finds: sizes are as displayed (after rotation), `fps` is the source's average rate."""

    path: str
    width: int
    height: int
    fps: float
    duration: float  # seconds of video (container metadata; read_video measures it from the frames)
    rotation: int  # degrees the frames are turned (counter-clockwise) to display them upright
    audio_rate: int | None  # None: no audio stream
    audio_channels: int
    audio_offset: float  # seconds from the first video frame to the first audio sample (usually ~0)

    @property
    def has_audio(self) -> bool:
        return self.audio_rate is not None


@dataclass
class VideoClip:
    """A decoded video: `frames` uint8 [T, H, W, 3] RGB (or [T, H, W] with gray=True) at `fps`, frame k showing
    time k / fps; `audio` float32 [C, L] at `audio_rate` (None: the file has no audio), starting `audio_offset`
    seconds after frame 0; `duration` in seconds of video."""

    frames: np.ndarray
    fps: float
    audio: np.ndarray | None
    audio_rate: int | None
    duration: float
    path: str
    audio_offset: float = 0.0

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


# --------------------------------------------------------------------------------------------- opening
def _first_line(error: Exception) -> str:
    """FFmpeg's own wording ("Invalid data found when processing input"), without errno or file name."""
    text = getattr(error, "strerror", None) or str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _check_file(path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a directory, not a video file", "pass one video file")
    if not path.is_file():
        raise InputError(path, "video file not found", "check the path")
    if path.stat().st_size == 0:
        raise InputError(path, "video file is empty (0 bytes)", "re-export or remove it")
    return path


def _open(path: Path):
    """Open for reading; InputError when FFmpeg cannot make sense of the file or it holds no video stream."""
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise InputError(path, f"cannot open as a video ({_first_line(error)})", _REENCODE_HINT) from None
    if not container.streams.video:
        container.close()
        raise InputError(path, "contains no video stream", "pass a video file; separate audio-only files with "
                         "inference.py")
    return container


def _stream_rate(stream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and rate > 0:
            return Fraction(rate)
    return Fraction(25)


def _frame_time(frame, index: int, rate: Fraction) -> Fraction:
    if frame.pts is not None and frame.time_base is not None:
        return frame.pts * Fraction(frame.time_base)
    return index / rate


def _first_times(container, path: Path):
    """(first video frame, first video time, first audio time or None), from the first decoded frames.

    Decoders drop codec priming (AAC, Opus), so decoded times beat the streams' `start_time` for A/V alignment.
    """
    import av

    video = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio else None
    rate = _stream_rate(video)
    first, video_time, audio_time = None, None, None
    try:
        for packet in container.demux(*([video, audio] if audio is not None else [video])):
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                if packet.stream.type == "audio":
                    continue
                raise
            for frame in decoded:
                if packet.stream.type == "video" and first is None:
                    first, video_time = frame, _frame_time(frame, 0, rate)
                elif packet.stream.type == "audio" and audio_time is None and frame.pts is not None:
                    audio_time = frame.pts * Fraction(frame.time_base)
            if first is not None and (audio is None or audio_time is not None):
                break
    except av.FFmpegError as error:
        raise InputError(path, f"cannot decode the video stream ({_first_line(error)})", _REENCODE_HINT) from None
    if first is None:
        raise InputError(path, "the video stream has no decodable frames", _REENCODE_HINT)
    return first, video_time, audio_time


def probe_video(path) -> VideoInfo:
    """Size, frame rate, duration and audio format of a video file, decoding only its first frames."""
    import av

    path = _check_file(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = _stream_rate(stream)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = float(stream.frames / rate) if stream.frames else 0.0
        first, video_time, audio_time = _first_times(container, path)
        width, height, rotation = first.width, first.height, _rotation(first)
        if rotation % 180:
            width, height = height, width
        audio_rate, channels, offset = None, 0, 0.0
        if container.streams.audio:
            audio = container.streams.audio[0]
            audio_rate, channels = int(audio.rate or 0) or None, int(audio.channels or 0)
            if audio_time is not None:
                offset = round(float(audio_time - video_time), 4)
    return VideoInfo(str(path), int(width), int(height), float(rate), max(duration, 0.0), rotation,
                     audio_rate, channels, offset)


# --------------------------------------------------------------------------------------------- frames
def _rotation(frame) -> int:
    try:
        angle = frame.rotation
    except Exception:  # no display matrix
        return 0
    return int(round((angle or 0) / 90.0)) * 90 % 360


def _scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class _FrameReader:
    """Decodes one video stream and yields uint8 arrays at a fixed frame rate (nearest-timestamp selection).

    After iteration, `duration` (seconds of video, first frame to the end of the last) and `total`
    (round(duration * fps), the frame count; with a source above twice `fps` one extra frame can slip out
    before the end is known) are set. A file that breaks off mid-stream keeps the frames decoded before the break.
    """

    def __init__(self, path, fps=25, max_side: int | None = None, gray: bool = False):
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        if max_side is not None and int(max_side) < 1:
            raise ValueError(f"max_side must be a positive number of pixels, got {max_side!r}")
        self.path = _check_file(path)
        self.fps = Fraction(fps).limit_denominator(100000)
        self.max_side, self.gray = max_side, gray
        self.duration, self.total = 0.0, 0

    def _decoded(self, container) -> Iterator[tuple[Fraction, object, Fraction]]:
        """(time from the first frame, frame, frame duration) for every decoded frame, times non-decreasing."""
        import av

        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = _stream_rate(stream)
        start, last, index = None, Fraction(0), 0
        try:
            for frame in container.decode(stream):
                time = _frame_time(frame, index, rate)
                if start is None:
                    start = time
                time = max(time - start, last)
                step = Fraction(1) / rate
                if getattr(frame, "duration", None) and frame.time_base is not None:
                    step = frame.duration * Fraction(frame.time_base)
                yield time, frame, step
                last, index = time, index + 1
        except av.FFmpegError as error:
            if index == 0:
                raise InputError(self.path, f"cannot decode the video stream ({_first_line(error)})",
                                 _REENCODE_HINT) from None
        if index == 0:
            raise InputError(self.path, "the video stream has no decodable frames", _REENCODE_HINT)

    def _to_array(self, frame) -> np.ndarray:
        from av.video.reformatter import Interpolation

        width, height = _scaled_size(frame.width, frame.height, self.max_side)
        array = frame.to_ndarray(width=width, height=height, format="gray" if self.gray else "rgb24",
                                 interpolation=Interpolation.AREA)
        turns = _rotation(frame) // 90
        if turns:
            array = np.ascontiguousarray(np.rot90(array, k=turns))
        return array

    def __iter__(self) -> Iterator[np.ndarray]:
        container = _open(self.path)
        with container:
            previous, prev_time, prev_step, array = None, Fraction(0), Fraction(0), None
            k = 0
            for time, frame, step in self._decoded(container):
                if previous is not None:
                    middle = (prev_time + time) / 2
                    while k / self.fps < middle:  # output time k/fps is nearer the previous frame
                        array = self._to_array(previous) if array is None else array
                        yield array
                        k += 1
                previous, prev_time, prev_step, array = frame, time, step, None
            self.duration = float(prev_time + prev_step)
            self.total = max(1, math.floor(self.duration * self.fps + Fraction(1, 2)))  # round(duration * fps)
            while k < self.total:  # the last frame covers the rest of the video
                array = self._to_array(previous) if array is None else array
                yield array
                k += 1


def iter_frames(path, fps=25, max_side: int | None = None, gray: bool = False) -> Iterator[np.ndarray]:
    """Yield the video's frames at `fps` one by one: uint8 [H, W, 3] RGB, or [H, W] with gray=True.

    Frame k shows time k / fps from the first frame; `max_side` downscales (aspect kept) while decoding.
    """
    yield from _FrameReader(path, fps, max_side, gray)


def read_video(path, fps=25, audio_rate: int | None = None, max_side: int | None = None,
               gray: bool = False) -> VideoClip:
    """Decode a video file (mp4, mov, mkv, webm, avi, mpg, ...) into memory.

    Frames are resampled to `fps` by nearest timestamp; there are round(duration * fps) of them. `max_side`
    downscales frames while decoding so the longer side is at most that many pixels (use it for long or large
    videos: [T, H, W, 3] uint8 is T*H*W*3 bytes). The audio track, if any, is float32 [C, L] at its own rate or
    at `audio_rate`. Raises InputError for missing, corrupt or video-less files.
    """
    reader = _FrameReader(path, fps, max_side, gray)
    path = reader.path
    frames = np.stack(list(reader)[:reader.total])
    audio, rate, offset = None, None, 0.0
    info = probe_video(path)
    if info.has_audio:
        audio, rate = read_audio_track(path, audio_rate)
        offset = info.audio_offset
    return VideoClip(frames=frames, fps=float(reader.fps), audio=audio, audio_rate=rate, duration=reader.duration,
                     path=str(path), audio_offset=offset)


def read_audio_track(path, sample_rate: int | None = None, mono: bool = False) -> tuple[np.ndarray, int]:
    """The first audio track of a video file as float32 ([C, L], or [L] with mono) at its own rate or
    `sample_rate`; InputError when there is none."""
    path = _check_file(path)
    return load_audio(path, sample_rate=sample_rate, mono=mono)


# --------------------------------------------------------------------------------------------- writing
def video_codec() -> str:
    """`libx264` when PyAV's FFmpeg has it, else FFmpeg's own MPEG-4 Part 2 encoder."""
    from av.codec import Codec

    try:
        Codec("libx264", "w")
        return "libx264"
    except Exception:
        return "mpeg4"


def _even(frame: np.ndarray) -> np.ndarray:
    """yuv420p needs even width and height: crop one pixel row/column (pad when the side is 1 pixel)."""
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    elif frame.shape[-1] == 1:
        frame = np.repeat(frame, 3, axis=-1)
    height, width = frame.shape[:2]
    if height % 2 or width % 2:
        frame = frame[: height - height % 2 or None, : width - width % 2 or None]
        pad = ((0, 2 - frame.shape[0]) if frame.shape[0] < 2 else (0, 0),
               (0, 2 - frame.shape[1]) if frame.shape[1] < 2 else (0, 0), (0, 0))
        frame = np.pad(frame, pad, mode="edge")
    return np.ascontiguousarray(frame, dtype=np.uint8)


def _prepare_audio(audio, audio_rate) -> tuple[np.ndarray, int]:
    """float32 [C, L] with C in (1, 2), peak-limited to 1, at a rate AAC supports."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2 or audio.shape[-1] == 0:
        raise ValueError(f"audio must be [L] or [C, L] with L > 0, got shape {list(audio.shape)}")
    if audio.shape[0] > 2:
        audio = to_mono(audio)[None]
    audio = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)
    rate = int(audio_rate)
    if rate not in AAC_RATES:  # e.g. 44056 Hz: resample to the nearest rate AAC knows
        target = min(AAC_RATES, key=lambda r: abs(r - rate))
        audio, rate = resample(audio, rate, target), target
    peak = float(np.abs(audio).max())
    if peak > 1.0:
        audio = audio / peak
    return np.ascontiguousarray(audio, dtype=np.float32), rate


class _AudioFeeder:
    """Encodes [C, L] audio into an AAC stream a piece at a time, so packets interleave with the video."""

    def __init__(self, container, audio, rate):
        self.container, self.audio, self.rate = container, audio, rate
        self.stream, self.sent = None, 0

    def open(self) -> None:
        """Add the AAC stream (after the video stream, so the video is track 1)."""
        self.stream = self.container.add_stream("aac", rate=self.rate)
        self.stream.layout = "stereo" if self.audio.shape[0] == 2 else "mono"
        self.stream.bit_rate = 128000 if self.audio.shape[0] == 2 else 96000

    def until(self, seconds: float | None) -> None:
        """Encode the samples that play before `seconds` (None: all of them)."""
        from av import AudioFrame

        length = self.audio.shape[-1]
        end = length if seconds is None else min(length, max(0, round(seconds * self.rate)))
        while self.sent < end:
            stop = min(end, self.sent + 1024)
            frame = AudioFrame.from_ndarray(np.ascontiguousarray(self.audio[:, self.sent:stop]), format="fltp",
                                             layout=self.stream.layout.name)
            frame.sample_rate, frame.pts = self.rate, self.sent
            frame.time_base = Fraction(1, self.rate)
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
            self.sent = stop

    def finish(self) -> None:
        self.until(None)
        for packet in self.stream.encode(None):
            self.container.mux(packet)


def _add_video_stream(container, fps: Fraction, width: int, height: int):
    codec = video_codec()
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    if codec == "libx264":
        stream.options = {"crf": "20", "preset": "veryfast"}
    else:  # mpeg4's default bit rate (200 kb/s) looks poor: aim for about 0.15 bits per pixel
        stream.bit_rate = int(max(400_000, 0.15 * width * height * float(fps)))
    stream.codec_context.time_base = 1 / fps
    return stream


def _encode_frames(container, frames: Iterator[np.ndarray], fps: Fraction, first_pts: int,
                   feeder: _AudioFeeder | None) -> int:
    from av import VideoFrame

    stream, count = None, 0
    for array in frames:
        array = _even(array)
        if stream is None:
            stream = _add_video_stream(container, fps, array.shape[1], array.shape[0])
            if feeder is not None:  # every stream must exist before the first packet is written
                feeder.open()
        elif array.shape[:2] != (stream.height, stream.width):
            import cv2

            array = cv2.resize(array, (stream.width, stream.height), interpolation=cv2.INTER_AREA)
        frame = VideoFrame.from_ndarray(array, format="rgb24")
        frame.pts, frame.time_base = first_pts + count, 1 / fps
        for packet in stream.encode(frame):
            container.mux(packet)
        count += 1
        if feeder is not None:
            feeder.until((first_pts + count) / float(fps))
    if stream is None:
        raise ValueError("no video frames to write")
    for packet in stream.encode(None):
        container.mux(packet)
    return count


def _copy_video_packets(container, source: Path, shift_seconds: float, feeder: _AudioFeeder | None) -> int:
    """Stream-copy the first video stream of `source` (no re-encoding); returns the number of packets."""
    with _open(source) as inp:
        in_stream = inp.streams.video[0]
        out_stream = container.add_stream_from_template(in_stream)
        if feeder is not None:
            feeder.open()
        time_base = Fraction(in_stream.time_base)
        start = in_stream.start_time or 0
        shift = round(shift_seconds / time_base) - start
        count = 0
        for packet in inp.demux(in_stream):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            if packet.pts is not None:
                packet.pts += shift
            packet.dts += shift
            if feeder is not None and packet.pts is not None:
                feeder.until(float(packet.pts * time_base))
            packet.stream = out_stream
            container.mux(packet)
            count += 1
    return count


def write_video_with_audio(path, frames_or_source_video, fps=None, audio=None, audio_rate: int | None = None,
                           audio_offset: float = 0.0, copy_video: bool = False) -> Path:
    """Write an mp4 with H.264 (libx264, else MPEG-4 Part 2) video and, if `audio` is given, an AAC track.

    `frames_or_source_video`: uint8 frames [T, H, W, 3] (or [T, H, W]; any iterable of frames) shown at `fps`,
    or the path of a video
    whose frames are decoded and re-encoded (at `fps`, default: the source's own frame rate; rotation applied).
    With `copy_video=True` a source's video packets are copied as they are (fast, no quality loss; the codec must
    fit in mp4, e.g. a file this function wrote). `audio`: float [L] or [C, L] at `audio_rate` (more than two
    channels are averaged to mono; peaks above 1 are scaled down), starting `audio_offset` seconds after the
    first frame. Odd frame sizes lose one pixel row/column (yuv420p needs even sizes). The file appears only
    when complete. Returns `path`.
    """
    import av

    path = Path(path)
    if audio is not None:
        if not audio_rate:
            raise ValueError("audio_rate is required with audio")
        audio, audio_rate = _prepare_audio(audio, audio_rate)
    video_start = max(0.0, -audio_offset)
    if audio is not None and audio_offset > 0:  # silence until the audio starts (an AAC track starting late
        audio = np.pad(audio, ((0, 0), (round(audio_offset * audio_rate), 0)))  # keeps its priming samples)
    source = None
    if isinstance(frames_or_source_video, (str, os.PathLike)):
        source = _check_file(frames_or_source_video)
        if fps is None and not copy_video:
            with _open(source) as container:
                fps = _stream_rate(container.streams.video[0])
    else:
        frames = frames_or_source_video
        if hasattr(frames, "__len__") and len(frames) == 0:
            raise ValueError("no video frames to write")
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive when writing frames, got {fps!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.stem}.partial.mp4")
    try:
        with av.open(str(temp), "w", format="mp4") as container:
            feeder = _AudioFeeder(container, audio, audio_rate) if audio is not None else None
            if source is not None and copy_video:
                _copy_video_packets(container, source, video_start, feeder)
            else:
                rate = Fraction(fps).limit_denominator(100000)
                iterator = iter_frames(source, rate) if source is not None else iter(frames)
                _encode_frames(container, iterator, rate, round(video_start * float(rate)), feeder)
            if feeder is not None:
                feeder.finish()
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path
