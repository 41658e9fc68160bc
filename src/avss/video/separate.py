"""Separate the speakers of a real video: `save_dir/speakerK.wav`, `save_dir/speakerK.mp4` and `save_dir/tracks.json`.

The pipeline has three replaceable steps, so face tracking and audio-visual assignment can plug in later:

1. `find_speakers(video_path, num_speakers, info)` -> one `SpeakerTrack` (mouth frames at 25 fps, face box) per
   on-screen speaker, ordered left to right, or None when no tracker is available. Today: always None.
2. `separate_array` on the video's sound (with the tracks' mouths for audio-visual models).
3. `assign_estimates(estimates, rate, speakers, model)` -> `Assignment`: which estimate is which speaker.
   Extraction models already return one estimate per face; for audio-only models the estimates stay in the
   model's order until an audio-visual synchrony matcher exists.

`separate_video(...)` is the library entry; `main(cfg)` is the body of the `separate_video.py` script.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from avss.data.mouths import MOUTH_FPS
from avss.inference.chunked import check_chunking, separate_array
from avss.io.audio import save_audio
from avss.io.errors import InputError
from avss.video.io import VideoInfo, probe_video, read_audio_track, write_video_with_audio

AUDIO_ONLY_ORDER = "audio-only order (no face tracking yet)"
USAGE = ("usage: python separate_video.py video=FILE save_dir=OUT [num_speakers=2] [checkpoint=PATH] "
         "[device=cpu|cuda] [chunk_seconds=8] [overlap_seconds=1] [write_videos=true]")


# --------------------------------------------------------------------------------------------- plug points
@dataclass
class SpeakerTrack:
    """One on-screen speaker, as a face tracker reports it.

    `mouths`: uint8 [T, 96, 96] grayscale mouth crops at 25 fps, frame k showing time k / 25 s after the video's
    first frame (the layout `avss.data.mouths` uses); `box`: a typical face box (x0, y0, x1, y1) in displayed
    pixels, used for left-to-right order and reported in tracks.json; `label`: a short description.
    """

    mouths: np.ndarray
    box: tuple[float, float, float, float] | None = None
    label: str = ""


@dataclass
class Assignment:
    """Output speaker k (1-based file name speaker{k+1}) is `estimates[order[k]]`; `description` goes to tracks.json."""

    order: list[int]
    description: str
    speakers: list[SpeakerTrack] | None = None


Tracker = Callable[[Path, int, VideoInfo], "list[SpeakerTrack] | None"]
Assigner = Callable[[np.ndarray, int, "list[SpeakerTrack] | None", object], Assignment]


def find_speakers(video_path, num_speakers: int, info: VideoInfo) -> list[SpeakerTrack] | None:
    """Face tracking: the `num_speakers` most present faces as mouth streams, ordered left to right.

    Not implemented yet: returns None (no tracks), which makes audio-visual checkpoints unusable on real videos
    and leaves audio-only estimates in the model's order.
    """
    return None


def assign_estimates(estimates: np.ndarray, rate: int, speakers: list[SpeakerTrack] | None, model) -> Assignment:
    """Decide which estimate belongs to which speaker.

    - extraction models ran once per face track: estimate k is face k (left to right);
    - otherwise the estimates stay in the order the model produced (a later audio-visual synchrony step will
      match them to the face tracks when those exist).
    """
    order = list(range(estimates.shape[0]))
    if speakers is not None and _is_extraction(model):
        return Assignment(order, "one estimate per tracked face, faces left to right", speakers)
    return Assignment(order, AUDIO_ONLY_ORDER, None)


# --------------------------------------------------------------------------------------------- checks
def _is_extraction(model) -> bool:
    return bool(model.needs_visual) and getattr(model, "task", "separation") == "extraction"


def check_request(model, num_speakers) -> int:
    """ValueError (one line) unless `model` can produce `num_speakers` tracks; returns num_speakers as int."""
    if isinstance(num_speakers, bool) or not isinstance(num_speakers, (int, np.integer)) or num_speakers < 1:
        raise ValueError(f"num_speakers must be a whole number of at least 1, got {num_speakers!r}")
    num_speakers = int(num_speakers)
    if not _is_extraction(model) and num_speakers != int(model.n_src):
        raise ValueError(f"num_speakers={num_speakers}, but this {type(model).__name__} checkpoint always separates "
                         f"exactly {model.n_src} speakers (pass num_speakers={model.n_src}, or use a checkpoint "
                         f"trained for {num_speakers})")
    return num_speakers


def _mouths_for_audio(speakers: list[SpeakerTrack], audio_offset: float) -> list[np.ndarray]:
    """Mouth streams re-aligned to start with the audio (which starts `audio_offset` s after the first frame)."""
    shift = round(audio_offset * MOUTH_FPS)
    out = []
    for track in speakers:
        frames = np.asarray(track.mouths)
        if shift > 0:
            frames = frames[shift:] if frames.shape[0] > shift else frames[-1:]
        elif shift < 0:
            frames = np.concatenate([np.repeat(frames[:1], -shift, axis=0), frames])  # hold the first frame
        out.append(frames)
    return out


# --------------------------------------------------------------------------------------------- writing
def _save_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    temp = path.with_name(f".{path.stem}.partial.wav")
    try:
        save_audio(temp, audio, rate)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def _write_videos(video_path: Path, save_dir: Path, tracks: list[np.ndarray], rate: int, info: VideoInfo) -> list[Path]:
    """speakerK.mp4 for each track: the source video is re-encoded once, then copied next to each speaker's audio."""
    picture = save_dir / ".video-only.partial.mp4"
    paths = []
    try:
        write_video_with_audio(picture, video_path, None, None, None)
        for k, audio in enumerate(tracks, start=1):
            paths.append(write_video_with_audio(save_dir / f"speaker{k}.mp4", picture, None, audio, rate,
                                                audio_offset=info.audio_offset, copy_video=True))
    finally:
        picture.unlink(missing_ok=True)
    return paths


# --------------------------------------------------------------------------------------------- library entry
def separate_video(model, video_path, save_dir, num_speakers: int = 2, device="cpu",
                   chunk_seconds: float | None = 8.0, overlap_seconds: float = 1.0, write_videos: bool = True,
                   tracker: Tracker = find_speakers, assigner: Assigner = assign_estimates) -> dict:
    """Separate the speakers of `video_path` and write them into `save_dir`:

    - `speakerK.wav` (K = 1..num_speakers): 16-bit, at the video's audio rate and with its exact length;
    - `speakerK.mp4` (with write_videos): the original picture with that speaker's audio (H.264 + AAC);
    - `tracks.json`: the video, num_speakers, how estimates were assigned to speakers, duration, fps and files.

    Returns the tracks.json content with absolute file paths under "files". Raises InputError for an unusable
    video (missing, corrupt, silent) or an audio-visual model without face tracks, ValueError for a
    num_speakers the model cannot produce or bad chunk settings.
    """
    video_path, save_dir = Path(video_path), Path(save_dir)
    num_speakers = check_request(model, num_speakers)
    check_chunking(chunk_seconds, overlap_seconds)
    info = probe_video(video_path)
    if not info.has_audio:
        raise InputError(video_path, "has no audio track, so there is nothing to separate", "pass a video with sound")

    speakers = tracker(video_path, num_speakers, info)
    if model.needs_visual:
        if speakers is None:
            raise InputError(video_path, f"{type(model).__name__} is an audio-visual checkpoint and needs each "
                             "speaker's mouth frames, but face tracking is not available yet",
                             "use an audio-only checkpoint, e.g. a ConvTasNet one")
        if len(speakers) != num_speakers:
            raise InputError(video_path, f"found {len(speakers)} speaking faces, expected {num_speakers}",
                             f"pass num_speakers={len(speakers)}" if speakers else "check the faces are visible")

    mix, rate = read_audio_track(video_path, mono=int(getattr(model, "in_channels", 1)) == 1)
    mouths = _mouths_for_audio(speakers, info.audio_offset) if (model.needs_visual and speakers) else None
    estimates = separate_array(model, mix, rate, mouths=mouths, chunk_seconds=chunk_seconds,
                               overlap_seconds=overlap_seconds, device=device)
    assignment = assigner(estimates, rate, speakers, model)
    tracks = [estimates[i] for i in assignment.order]

    save_dir.mkdir(parents=True, exist_ok=True)
    files, entries = [], []
    for k, audio in enumerate(tracks, start=1):
        wav = save_dir / f"speaker{k}.wav"
        _save_wav(wav, audio, rate)
        files.append(wav)
    videos = _write_videos(video_path, save_dir, tracks, rate, info) if write_videos else []
    files += videos
    for k in range(1, len(tracks) + 1):
        face = None
        if assignment.speakers is not None:
            track = assignment.speakers[k - 1]
            face = {"label": track.label, "box": list(track.box) if track.box is not None else None}
        entries.append({"speaker": k, "audio": f"speaker{k}.wav",
                        "video": f"speaker{k}.mp4" if write_videos else None, "face": face})
    summary = {"video": str(video_path), "num_speakers": len(tracks), "assignment": assignment.description,
               "duration": round(info.duration, 3), "fps": round(info.fps, 3), "audio_rate": int(rate),
               "audio_samples": int(mix.shape[-1]), "model": type(model).__name__, "speakers": entries}
    tracks_json = save_dir / "tracks.json"
    tracks_json.write_text(json.dumps(summary, indent=2) + "\n")
    return {**summary, "files": [str(p) for p in files + [tracks_json]]}


# --------------------------------------------------------------------------------------------- script body
def main(cfg) -> int:
    """`separate_video.py` body. Exit code: 0 written; 1 the video could not be separated or written (one line
    on stderr); 2 unusable arguments (missing video or checkpoint, bad num_speakers/device/chunking)."""
    import av

    from avss.utils.cli import checkpoint_exists, err as _err, load_checkpoint, resolve_path, run_settings

    if not cfg.get("video"):
        _err(f"separate_video: video is required ({USAGE})")
        return 2
    video = resolve_path(cfg.video)
    save_dir = resolve_path(cfg.get("save_dir") or Path("outputs") / "separate_video" / video.stem)
    if not video.is_file():
        _err(f"{video}: video file not found (check the path; {USAGE})")
        return 2
    if not cfg.get("checkpoint"):
        _err(f"separate_video: checkpoint is required ({USAGE})")
        return 2
    checkpoint = resolve_path(cfg.checkpoint)
    if not checkpoint_exists(checkpoint):  # checked before the (slower) video probe
        return 2
    try:
        probe_video(video)  # an unreadable video fails before the checkpoint is loaded
    except InputError as error:
        _err(error.one_line())
        return 1
    settings = run_settings(cfg, "separate_video")
    if settings is None:
        return 2
    device, chunk_seconds, overlap_seconds = settings
    model = load_checkpoint(checkpoint)
    if model is None:
        return 2
    try:
        num_speakers = check_request(model, cfg.get("num_speakers", 2))
    except ValueError as error:
        _err(f"separate_video: {error}")
        return 2
    kind = "audio-visual extraction" if model.needs_visual else "audio-only separation"
    print(f"loaded {type(model).__name__} ({kind}, {model.sample_rate} Hz) from {checkpoint}", flush=True)

    try:
        result = separate_video(model, video, save_dir, num_speakers=num_speakers, device=device,
                                chunk_seconds=chunk_seconds, overlap_seconds=overlap_seconds,
                                write_videos=bool(cfg.get("write_videos", True)))
    except InputError as error:
        _err(error.one_line())
        return 1
    except OSError as error:
        _err(f"{save_dir}: cannot write the results ({error.strerror or error})")
        return 1
    except av.FFmpegError as error:  # the picture could not be re-encoded: the wav files are written already
        _err(f"{video}: cannot write the speaker videos ({getattr(error, 'strerror', None) or error}); "
             f"the .wav files are in {save_dir} (or pass write_videos=false)")
        return 1
    names = ", ".join(Path(p).name for p in result["files"])
    print(f"wrote {names} into {save_dir} ({result['assignment']})", flush=True)
    return 0
