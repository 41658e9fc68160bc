"""Separate the speakers of a real video: `save_dir/speakerK.wav`, `speakerK.mp4`, `mouths/speakerK.npz` and
`tracks.json`.

The pipeline has three replaceable steps:

1. `find_speakers(video_path, num_speakers, info)` -> one `SpeakerTrack` (mouth frames at 25 fps, face box) per
   on-screen speaker, ordered left to right: Haar-cascade face detection and tracking (`avss.video.faces`), then
   landmark-free mouth crops (`avss.video.mouth_roi`). It returns fewer tracks when fewer faces are visible.
2. `separate_array` on the video's sound (with the tracks' mouths for audio-visual models).
3. `assign_estimates(estimates, rate, speakers, model)` -> `Assignment`: which estimate is which speaker.
   Extraction models already return one estimate per face; for audio-only models each estimate is put on the
   face whose mouth moves with its loudness (`avss.video.sync`, Hungarian assignment).

Fewer faces than `num_speakers` (none visible, or one of two): an audio-visual checkpoint cannot run (InputError);
an audio-only one still separates, keeps the model's order, writes the faces it found as `mouths/faceK.npz`, and
the result's `problem` (also in tracks.json) says how many faces were found; the script then exits with 1.

`separate_video(...)` is the library entry; `main(cfg)` is the body of the `separate_video.py` script.
"""
from __future__ import annotations

import functools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from avss.data.mouths import MOUTH_FPS, match_frames, num_frames
from avss.inference.chunked import check_settings, separate_array
from avss.io.audio import save_audio
from avss.io.errors import InputError
from avss.video.io import VideoInfo, probe_video, read_audio_track, write_video_with_audio

AUDIO_ONLY_ORDER = "model order (voices not matched to faces)"
SYNC_ORDER = "audio-visual synchrony: each voice on the face whose mouth moves with it (faces left to right)"
EXTRACTION_ORDER = "one estimate per tracked face, faces left to right"
DETECT_EVERY = 3  # face detection on every 3rd frame at 25 fps (boxes in between are interpolated)
USAGE = ("usage: python separate_video.py video=FILE save_dir=OUT [num_speakers=2] [checkpoint=PATH] "
         "[device=cpu|cuda] [chunk_seconds=8] [overlap_seconds=1] [refinement=none] [write_videos=true]")


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


class Speakers(list):
    """The list of `SpeakerTrack`s `find_speakers` returns, plus what the face tracker saw: `faces_found` (faces
    counted, possibly more than returned) and `summary` (one line: where, how often detected, how long it took)."""

    def __init__(self, tracks=(), faces_found: int = 0, summary: str = "", seconds: float = 0.0):
        super().__init__(tracks)
        self.faces_found, self.summary, self.seconds = faces_found, summary, seconds


@dataclass
class Assignment:
    """Output speaker k (1-based file name speaker{k+1}) is `estimates[order[k]]`; `description` goes to tracks.json,
    as do `details` (e.g. the synchrony correlations) under "sync"."""

    order: list[int]
    description: str
    speakers: list[SpeakerTrack] | None = None
    details: dict | None = None


Tracker = Callable[[Path, int, VideoInfo], "list[SpeakerTrack] | None"]
Assigner = Callable[[np.ndarray, int, "list[SpeakerTrack] | None", object], Assignment]


def find_speakers(video_path, num_speakers: int, info: VideoInfo, detect_every: int = DETECT_EVERY,
                  max_side: int | None = None) -> Speakers:
    """Face tracking: the `num_speakers` strongest faces as mouth streams, ordered left to right.

    Detection (`avss.video.faces.find_faces`) runs on frames decoded at 25 fps, at most `max_side` (default 480)
    pixels on the longer side, on every `detect_every`-th frame; mouths are cropped in a second pass at (up to)
    full size. Returns fewer tracks (possibly none) when fewer faces are found; `faces_found` and `summary` say
    what the tracker saw.
    """
    from avss.video.faces import DETECT_MAX_SIDE, find_faces
    from avss.video.mouth_roi import mouths_from_video

    start = time.perf_counter()
    tracking = find_faces(video_path, want=num_speakers, fps=MOUTH_FPS, max_side=max_side or DETECT_MAX_SIDE,
                          detect_every=detect_every)
    chosen = tracking.speakers(num_speakers)
    size = tracking.frame_size or (info.width, info.height)
    mouths = mouths_from_video(video_path, [t.boxes for t in chosen], size, fps=MOUTH_FPS)
    tracks = []
    for k, (track, frames) in enumerate(zip(chosen, mouths), start=1):
        box = tuple(round(float(v), 1) for v in np.median(track.boxes, axis=0))
        tracks.append(SpeakerTrack(frames, box, f"face {k} of {len(chosen)} from the left, detected in "
                                                f"{100 * track.presence:.0f} % of the checked frames"))
    seconds = time.perf_counter() - start
    return Speakers(tracks, len(tracking.faces), f"{tracking.summary()}; {seconds:.1f} s", seconds)


def assign_estimates(estimates: np.ndarray, rate: int, speakers: list[SpeakerTrack] | None, model) -> Assignment:
    """Decide which estimate belongs to which speaker (`speakers`' mouths start with the audio).

    - extraction models ran once per face track: estimate k is face k (left to right);
    - audio-only models with one face per estimate: audio-visual synchrony (`avss.video.sync.assign_by_sync`);
    - otherwise (no or too few faces) the estimates stay in the order the model produced.
    """
    order = list(range(estimates.shape[0]))
    if speakers is not None and _is_extraction(model):
        return Assignment(order, EXTRACTION_ORDER, speakers)
    if speakers and len(speakers) == estimates.shape[0]:
        from avss.video.sync import assign_by_sync

        result = assign_by_sync(estimates, rate, [np.asarray(t.mouths) for t in speakers])
        return Assignment(result.order, SYNC_ORDER, speakers, result.as_dict())
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
    """Mouth streams re-aligned to start with the audio (which starts `audio_offset` s after the first frame).
    Their length stays as it is (models and `avss.video.sync` trim or pad to the audio themselves)."""
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


def _save_mouths(path: Path, frames: np.ndarray) -> Path:
    """np.savez_compressed(path, data=frames), appearing only when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.stem}.partial.npz")
    try:
        np.savez_compressed(temp, data=np.ascontiguousarray(frames, dtype=np.uint8))
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


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
                   tracker: Tracker = find_speakers, assigner: Assigner = assign_estimates, **refinement) -> dict:
    """Separate the speakers of `video_path` and write them into `save_dir`:

    - `speakerK.wav` (K = 1..num_speakers, faces left to right): 16-bit, at the video's audio rate and with its
      exact length;
    - `speakerK.mp4` (with write_videos): the original picture with that speaker's audio (H.264 + AAC);
    - `mouths/speakerK.npz` (key `data`): speaker K's mouth crops, uint8 [T, 96, 96] at 25 fps, frame 0 at the
      start of the audio, T = the frames the audio covers (the course layout's mouth files);
    - `tracks.json`: the video, num_speakers, faces found, how estimates were assigned to faces (with the
      synchrony correlations), each speaker's face box, duration, fps, timings and files.

    With fewer faces than `num_speakers` and an audio-only model the estimates keep the model's order, the faces
    found go to `mouths/faceK.npz`, and "problem" (in the result and tracks.json) says how many were found.

    Returns the tracks.json content with absolute file paths under "files". Raises InputError for an unusable
    video (missing, corrupt, silent) or an audio-visual model without a face per speaker, ValueError for a
    num_speakers the model cannot produce or bad chunk or refinement settings. `refinement`: the test-time
    refinement keywords of `separate_array` (shifts, flip_sign, mixture_consistency, spectral_filter).
    """
    started = time.perf_counter()
    video_path, save_dir = Path(video_path), Path(save_dir)
    num_speakers = check_request(model, num_speakers)
    check_settings(chunk_seconds, overlap_seconds, **refinement)
    info = probe_video(video_path)
    if not info.has_audio:
        raise InputError(video_path, "has no audio track, so there is nothing to separate", "pass a video with sound")

    speakers = tracker(video_path, num_speakers, info)
    tracking_seconds = time.perf_counter() - started
    found = None if speakers is None else int(getattr(speakers, "faces_found", len(speakers)))
    problem = None
    if speakers is not None and len(speakers) < num_speakers:
        problem = (f"found {found} face{'' if found == 1 else 's'}, expected {num_speakers}" if found < num_speakers
                   else f"kept {len(speakers)} of {found} faces, expected {num_speakers}")
    if model.needs_visual:
        if speakers is None:
            raise InputError(video_path, f"{type(model).__name__} is an audio-visual checkpoint and needs each "
                             "speaker's mouth frames, but no face tracker was given",
                             "use an audio-only checkpoint, e.g. a ConvTasNet one")
        if len(speakers) != num_speakers:
            raise InputError(video_path, f"found {found} face{'' if found == 1 else 's'}, expected {num_speakers}; "
                             f"{type(model).__name__} needs one face per speaker",
                             f"pass num_speakers={len(speakers)}" if speakers else
                             "check the faces are visible and frontal, or use an audio-only checkpoint")

    mix, rate = read_audio_track(video_path, mono=int(getattr(model, "in_channels", 1)) == 1)
    aligned = _mouths_for_audio(speakers, info.audio_offset) if speakers else []
    mouths = aligned if model.needs_visual else None
    separation_start = time.perf_counter()
    estimates = separate_array(model, mix, rate, mouths=mouths, chunk_seconds=chunk_seconds,
                               overlap_seconds=overlap_seconds, device=device, **refinement)
    separation_seconds = time.perf_counter() - separation_start
    faces = [SpeakerTrack(m, t.box, t.label) for m, t in zip(aligned, speakers)] if speakers else None
    assignment = assigner(estimates, rate, faces if problem is None else None, model)
    tracks = [estimates[i] for i in assignment.order]

    save_dir.mkdir(parents=True, exist_ok=True)
    files, entries = [], []
    for k, audio in enumerate(tracks, start=1):
        wav = save_dir / f"speaker{k}.wav"
        _save_wav(wav, audio, rate)
        files.append(wav)
    frames_needed = num_frames(mix.shape[-1], rate)
    mouth_files = {}
    if faces:  # matched to speakers: mouths/speakerK.npz; otherwise the faces found: mouths/faceK.npz
        stem = "speaker" if assignment.speakers is not None else "face"
        for k, face in enumerate(faces, start=1):
            mouth_files[k] = _save_mouths(save_dir / "mouths" / f"{stem}{k}.npz",
                                          match_frames(np.asarray(face.mouths), frames_needed))
        files += list(mouth_files.values())
    videos = _write_videos(video_path, save_dir, tracks, rate, info) if write_videos else []
    files += videos
    for k in range(1, len(tracks) + 1):
        face = None
        if assignment.speakers is not None:
            track = assignment.speakers[k - 1]
            face = {"label": track.label, "box": list(track.box) if track.box is not None else None,
                    "mouths": f"mouths/speaker{k}.npz" if k in mouth_files else None}
        entries.append({"speaker": k, "audio": f"speaker{k}.wav",
                        "video": f"speaker{k}.mp4" if write_videos else None, "face": face})
    unmatched = None
    if faces and assignment.speakers is None:
        unmatched = [{"face": k, "label": f.label, "box": list(f.box) if f.box is not None else None,
                      "mouths": f"mouths/face{k}.npz"} for k, f in enumerate(faces, start=1)]
    description = assignment.description + (f" ({problem})" if problem else "")
    summary = {"video": str(video_path), "num_speakers": len(tracks), "faces_found": found,
               "face_tracking": getattr(speakers, "summary", None) or None, "problem": problem,
               "assignment": description, "sync": assignment.details, "unmatched_faces": unmatched,
               "duration": round(info.duration, 3), "fps": round(info.fps, 3), "audio_rate": int(rate),
               "audio_samples": int(mix.shape[-1]), "model": type(model).__name__,
               "seconds": {"face_tracking": round(tracking_seconds, 2), "separation": round(separation_seconds, 2),
                           "total": round(time.perf_counter() - started, 2)},
               "speakers": entries}
    tracks_json = save_dir / "tracks.json"
    tracks_json.write_text(json.dumps(summary, indent=2) + "\n")
    return {**summary, "files": [str(p) for p in files + [tracks_json]]}


# --------------------------------------------------------------------------------------------- script body
def main(cfg) -> int:
    """`separate_video.py` body. Exit code: 0 written; 1 the video could not be separated or written, or fewer
    faces than speakers were found (one line on stderr; what could be written is written); 2 unusable arguments
    (missing video or checkpoint, bad num_speakers/device/chunking)."""
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
    device, options = settings
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
        tracker = functools.partial(find_speakers, detect_every=int(cfg.get("detect_every", DETECT_EVERY)),
                                    max_side=cfg.get("detect_max_side"))
        result = separate_video(model, video, save_dir, num_speakers=num_speakers, device=device,
                                write_videos=bool(cfg.get("write_videos", True)), tracker=tracker, **options)
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
    if result.get("face_tracking"):
        print(f"faces: {result['face_tracking']}", flush=True)
    names = ", ".join(str(Path(p).relative_to(save_dir)) if Path(p).is_relative_to(save_dir) else Path(p).name
                      for p in result["files"])
    print(f"wrote {names} into {save_dir} ({result['assignment']})", flush=True)
    if result.get("problem"):
        _err(f"{video}: {result['problem']}, so the voices are in the model's order, not matched to faces "
             f"(written to {save_dir}; check that each speaker's face is visible)")
        return 1
    return 0
