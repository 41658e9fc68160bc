"""Find and follow the faces of a video: OpenCV Haar cascades per frame, tracks by box overlap, smoothed boxes.

The detector is OpenCV's frontal-face Haar cascade (`haarcascade_frontalface_default.xml`, shipped inside the
`opencv-python-headless` wheel under `cv2.data.haarcascades`), with the profile-face cascade (run on the frame
and on its mirror image) as a fallback in frames where the frontal one finds fewer faces than wanted; profile
boxes are shifted onto frontal-equivalent boxes (`PROFILE_SHIFT`) so one mouth geometry serves both.
mediapipe is deliberately not used: 0.10.21 needs numpy<2 and protobuf<5, which breaks other packages here.

Pipeline (`find_faces(video_path, ...)`, or `track_faces(frames, ...)` on frames already decoded):

1. detection on downscaled grayscale frames (the longer side at most `max_side`, 480 px by default; histogram
   equalised), on every `detect_every`-th frame. Faces smaller than `min_face` of the shorter side are ignored;
   a box lying mostly (> 50 %) inside a larger one is dropped (eye or mouth regions mistaken for faces);
2. tracking: detections are matched to the existing tracks (Hungarian matching; a pair may match when their widths
   are within 1.3x and their IoU is >= 0.3 or their centres are less than half a face width apart, up to one
   width for a track unseen for a while); an unmatched detection starts a new track. Then tracks that are (almost)
   never detected in the same frame and lie where the other one is are joined (a face turning away and back);
3. per track: boxes of frames without a detection are interpolated linearly between detections and held at the
   first/last detection before/after them, then smoothed with a centred moving average of `smooth_seconds`
   (0.5 s; the window shrinks symmetrically near the ends);
4. tracks are ranked by *strength* (the cascade's neighbour count summed over the detections, per detection frame).
   A track counts as a face when it was detected in at least 10 % of the detection frames (*presence*), at least
   twice, its boxes are mostly skin-toned (colour videos: median skin fraction >= 0.4 in the box centre) and it
   does not sit right under a stronger face (necks and chests are sometimes taken for faces).

Boxes are (x0, y0, x1, y1) in pixels of the full-size displayed video, at 25 frames per second by default.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

DETECT_MAX_SIDE = 480  # detection runs on frames at most this many pixels on the longer side
MIN_FACE = 0.06  # smallest face, as a fraction of the detection frame's shorter side (at least 24 px)
MIN_PRESENCE = 0.1  # a track detected in fewer than this fraction of the detection frames is not counted as a face
MIN_SKIN = 0.4  # nor one whose boxes hold less skin colour than this (median; colour videos only)
SMOOTH_SECONDS = 0.5
FACE_SPEED = 1.0  # a track unseen for g seconds may continue up to min(0.5 + FACE_SPEED * g, 1) face widths away
MAX_SIZE_CHANGE = 1.3  # a track continues only with a box of similar width (larger jumps are other detections)

_CASCADES: dict[str, object] = {}


def _cascade(name: str):
    """A cached `cv2.CascadeClassifier` for one of the xml files in the OpenCV wheel."""
    import cv2

    if name not in _CASCADES:
        path = Path(cv2.data.haarcascades) / name
        classifier = cv2.CascadeClassifier(str(path))
        if classifier.empty():
            raise RuntimeError(f"cannot load the OpenCV Haar cascade {path} (reinstall opencv-python-headless)")
        _CASCADES[name] = classifier
    return _CASCADES[name]


# --------------------------------------------------------------------------------------------- boxes
def iou(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _inside_fraction(small, large) -> float:
    """The fraction of `small`'s area that lies inside `large`."""
    w = min(small[2], large[2]) - max(small[0], large[0])
    h = min(small[3], large[3]) - max(small[1], large[1])
    area = (small[2] - small[0]) * (small[3] - small[1])
    return float(w * h / area) if w > 0 and h > 0 and area > 0 else 0.0


def _suppress_nested(boxes: list[np.ndarray], scores: list[float], kinds: list[str]):
    """Drop boxes lying mostly inside a larger kept box (largest first)."""
    order = sorted(range(len(boxes)), key=lambda i: -(boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1]))
    kept: list[int] = []
    for i in order:
        if all(_inside_fraction(boxes[i], boxes[j]) <= 0.5 for j in kept):
            kept.append(i)
    return [boxes[i] for i in kept], [scores[i] for i in kept], [kinds[i] for i in kept]


# --------------------------------------------------------------------------------------------- detection
PROFILE_SHIFT = (0.21, 0.03)  # profile box -> frontal-equivalent box: shift by these fractions of its width/height


def _profile_to_frontal(box: np.ndarray, facing: int) -> np.ndarray:
    """Move a profile-cascade box so the frontal mouth geometry (`avss.video.mouth_roi`) applies to it.

    In a profile box the mouth lies towards the side the face is turned to: about (0.5 + 0.21 facing) w and 0.81 h
    (measured on the debate clip, where frontal boxes put it at 0.50 w, 0.78 h); `facing` is +1 for a face turned
    to the frame's right edge, -1 to its left edge."""
    width, height = box[2] - box[0], box[3] - box[1]
    dx, dy = facing * PROFILE_SHIFT[0] * width, PROFILE_SHIFT[1] * height
    return box + np.array([dx, dy, dx, dy])


@dataclass
class Detection:
    """One face found in one frame: `box` (x0, y0, x1, y1) in full-size pixels, `score` (the cascade's number
    of merged neighbour windows), `kind` "frontal" or "profile", `skin` (see `skin_fraction`)."""

    frame: int
    box: np.ndarray
    score: float
    kind: str
    skin: float | None = None  # fraction of skin-coloured pixels in the box's centre (None: no colour)


def is_colour(rgb: np.ndarray) -> bool:
    """Whether an RGB frame has colour at all (grayscale videos have none: then skin cannot be judged)."""
    small = rgb[::4, ::4].astype(np.int16)
    return float(np.abs(small - small.mean(axis=-1, keepdims=True)).mean()) > 2.0


def skin_fraction(rgb: np.ndarray, box) -> float:
    """Fraction of skin-toned pixels in the central 60 % x 60 % of `box` in an RGB frame: pixels whose red
    chroma exceeds their blue chroma by more than 10 (YCrCb: Cr - Cb > 10), which holds for skin of every tone
    under ordinary light and fails for grey, white, blue and green. Faces scored 0.89-1.0 on the GRID, faces/ and
    debate clips; window blinds and backgrounds mistaken for faces 0-0.12."""
    import cv2

    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    rows = slice(max(0, int(y0 + 0.2 * h)), max(0, int(y1 - 0.2 * h)))
    cols = slice(max(0, int(x0 + 0.2 * w)), max(0, int(x1 - 0.2 * w)))
    patch = np.ascontiguousarray(rgb[rows, cols])
    if patch.size == 0:
        return 0.0
    ycc = cv2.cvtColor(patch, cv2.COLOR_RGB2YCrCb).astype(np.int16)
    return float((ycc[..., 1] - ycc[..., 2] > 10).mean())


class FaceDetector:
    """Haar-cascade face detector for grayscale uint8 frames: frontal faces, profile faces as a fallback."""

    def __init__(self, min_face: float = MIN_FACE, min_neighbors: int = 5, profile_neighbors: int = 3,
                 scale_factor: float = 1.1, profile: bool = True):
        self.min_face, self.scale_factor = min_face, scale_factor
        self.min_neighbors, self.profile_neighbors = min_neighbors, profile_neighbors
        self.frontal_cascade = _cascade("haarcascade_frontalface_default.xml")
        self.profile_cascade = _cascade("haarcascade_profileface.xml") if profile else None

    def _run(self, cascade, gray: np.ndarray, min_size: int,
             min_neighbors: int) -> tuple[list[np.ndarray], list[float]]:
        found, counts = cascade.detectMultiScale2(gray, scaleFactor=self.scale_factor, minNeighbors=min_neighbors,
                                                  minSize=(min_size, min_size))
        boxes = [np.array([x, y, x + w, y + h], dtype=np.float64) for x, y, w, h in np.reshape(found, (-1, 4))]
        return boxes, [float(n) for n in np.reshape(counts, (-1,))]

    def detect(self, gray: np.ndarray, want: int = 1) -> list[tuple[np.ndarray, float, str]]:
        """(box, score, kind) for each face in a grayscale frame; the profile cascade runs only when the frontal one
        finds fewer than `want` faces."""
        import cv2

        gray = cv2.equalizeHist(np.ascontiguousarray(gray, dtype=np.uint8))
        min_size = max(24, round(self.min_face * min(gray.shape[:2])))
        boxes, scores = self._run(self.frontal_cascade, gray, min_size, self.min_neighbors)
        kinds = ["frontal"] * len(boxes)
        if self.profile_cascade is not None and len(_suppress_nested(boxes, scores, kinds)[0]) < want:
            width = gray.shape[1]
            for mirrored in (False, True):
                image = np.ascontiguousarray(gray[:, ::-1]) if mirrored else gray
                more, more_scores = self._run(self.profile_cascade, image, min_size, self.profile_neighbors)
                for box, score in zip(more, more_scores):
                    if mirrored:  # found in the mirror image: a face turned towards the frame's right edge
                        box = np.array([width - box[2], box[1], width - box[0], box[3]])
                    box = _profile_to_frontal(box, +1 if mirrored else -1)
                    if all(iou(box, b) < 0.3 and _inside_fraction(box, b) <= 0.5 for b in boxes):
                        boxes.append(box)
                        scores.append(score)
                        kinds.append("profile")
        return list(zip(*_suppress_nested(boxes, scores, kinds)))


# --------------------------------------------------------------------------------------------- tracks
@dataclass
class FaceTrack:
    """One face followed through the video.

    `detections`: where it was detected; `boxes`: float [T, 4] smoothed (x0, y0, x1, y1) for every frame (filled
    by `finish`); `presence`: detected frames / detection frames; `strength`: summed detection scores / detection
    frames."""

    detections: list[Detection] = field(default_factory=list)
    boxes: np.ndarray | None = None
    presence: float = 0.0
    strength: float = 0.0

    @property
    def frames(self) -> set[int]:
        return {d.frame for d in self.detections}

    @property
    def last_box(self) -> np.ndarray:
        return self.detections[-1].box

    @property
    def mean_box(self) -> np.ndarray:
        """The median detected box (x0, y0, x1, y1)."""
        return np.median(np.stack([d.box for d in self.detections]), axis=0)

    @property
    def skin(self) -> float | None:
        """Median skin fraction of the detections (None without colour)."""
        values = [d.skin for d in self.detections if d.skin is not None]
        return float(np.median(values)) if values else None

    @property
    def profile_fraction(self) -> float:
        return sum(d.kind == "profile" for d in self.detections) / max(1, len(self.detections))

    def finish(self, num_frames: int, smooth_frames: int, detection_frames: int) -> None:
        """Interpolate, hold and smooth the boxes over all `num_frames` frames; set `presence`."""
        self.boxes = smooth(_interpolated(self, np.arange(num_frames, dtype=np.float64)), smooth_frames)
        self.presence = len(self.frames) / max(1, detection_frames)
        self.strength = sum(d.score for d in self.detections) / max(1, detection_frames)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over `window` frames along axis 0 of [T, ...]; near the ends the window shrinks
    symmetrically (frame t averages t-h..t+h with h = min(window // 2, t, T-1-t))."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if n == 0 or window <= 1:
        return values.copy()
    cumsum = np.concatenate([np.zeros((1,) + values.shape[1:]), np.cumsum(values, axis=0)])
    t = np.arange(n)
    half = np.minimum(np.minimum(window // 2, t), n - 1 - t)
    total = cumsum[t + half + 1] - cumsum[t - half]
    return total / (2 * half + 1).reshape((-1,) + (1,) * (values.ndim - 1))


def _match_cost(track_box: np.ndarray, box: np.ndarray, gap_seconds: float = 0.0) -> float | None:
    """Cost of continuing a track (last box `track_box`, seen `gap_seconds` ago) with `box`, or None if they cannot
    be the same face: widths within `MAX_SIZE_CHANGE`, and IoU >= 0.3 or centres less than min(0.5 + `FACE_SPEED` *
    gap, 1) face widths apart."""
    overlap = iou(track_box, box)
    wa, wb = track_box[2] - track_box[0], box[2] - box[0]
    ca = (track_box[:2] + track_box[2:]) / 2
    cb = (box[:2] + box[2:]) / 2
    distance = float(np.hypot(*(ca - cb))) / max(wa, wb)
    if not 1 / MAX_SIZE_CHANGE <= wb / max(wa, 1e-9) <= MAX_SIZE_CHANGE:
        return None
    if overlap >= 0.3 or distance < min(0.5 + FACE_SPEED * gap_seconds, 1.0):
        return (1.0 - overlap) + distance
    return None


def _associate(tracks: list[FaceTrack], detections: list[Detection], fps: float) -> list[FaceTrack]:
    """Extend `tracks` with one frame's detections (Hungarian matching); unmatched detections start new tracks."""
    from scipy.optimize import linear_sum_assignment

    unmatched = set(range(len(detections)))
    if tracks and detections:
        big = 1e6
        cost = np.full((len(tracks), len(detections)), big)
        for i, track in enumerate(tracks):
            for j, det in enumerate(detections):
                c = _match_cost(track.last_box, det.box, (det.frame - track.detections[-1].frame) / fps)
                if c is not None:
                    cost[i, j] = c
        for i, j in zip(*linear_sum_assignment(cost)):
            if cost[i, j] < big:
                tracks[i].detections.append(detections[j])
                unmatched.discard(j)
    for j in sorted(unmatched):
        tracks.append(FaceTrack([detections[j]]))
    return tracks


def _interpolated(track: FaceTrack, frames: np.ndarray) -> np.ndarray:
    """The track's detected boxes interpolated linearly at `frames` (held before the first / after the last)."""
    times = np.array([d.frame for d in track.detections], dtype=np.float64)
    boxes = np.stack([d.box for d in track.detections])
    return np.stack([np.interp(frames, times, boxes[:, j]) for j in range(4)], axis=1)


def _same_face(a: FaceTrack, b: FaceTrack) -> bool:
    """Whether two tracks look like one face seen in turns: (almost) never detected in the same frame, and either
    their median boxes, or b's detections and a's boxes interpolated at those frames, have centres (median) less
    than 0.75 face widths apart and widths within 1.5x (profile and frontal boxes differ in scale)."""
    if len(a.frames & b.frames) > 0.1 * min(len(a.frames), len(b.frames)):
        return False

    def close(first: np.ndarray, second: np.ndarray) -> bool:
        wa, wb = first[:, 2] - first[:, 0], second[:, 2] - second[:, 0]
        distance = np.hypot(*(((first[:, :2] + first[:, 2:]) - (second[:, :2] + second[:, 2:])) / 2).T)
        ratio = float(np.median(wb / wa))
        return float(np.median(distance / np.maximum(wa, wb))) < 0.75 and 1 / 1.5 <= ratio <= 1.5

    boxes = np.stack([d.box for d in b.detections])
    expected = _interpolated(a, np.array([d.frame for d in b.detections], dtype=np.float64))
    return close(a.mean_box[None], b.mean_box[None]) or close(expected, boxes)


def _below(track: FaceTrack, face: FaceTrack) -> bool:
    """Whether `track` sits where `face`'s neck or chest is: its median box starts between 0.3 box heights above
    and 0.6 below the face's bottom edge and overlaps it horizontally by more than half its width."""
    a, b = face.mean_box, track.mean_box
    height = a[3] - a[1]
    overlap = min(a[2], b[2]) - max(a[0], b[0])
    return a[3] - 0.3 * height <= b[1] <= a[3] + 0.6 * height and overlap > 0.5 * (b[2] - b[0])


def _merge_fragments(tracks: list[FaceTrack]) -> list[FaceTrack]:
    """Join the fragments of one face (a face turning away and back, or moving fast, can start a new track): the
    strongest track absorbs weaker ones that pass `_same_face`; in frames both saw, the stronger one's box stays."""
    merged: list[FaceTrack] = []
    for track in sorted(tracks, key=lambda t: -sum(d.score for d in t.detections)):
        target = next((kept for kept in merged if _same_face(kept, track)), None)
        if target is None:
            merged.append(track)
            continue
        taken = target.frames
        target.detections = sorted(target.detections + [d for d in track.detections if d.frame not in taken],
                                   key=lambda d: d.frame)
    return merged


@dataclass
class FaceTracking:
    """What `track_faces` / `find_faces` found.

    `tracks`: every track, strongest first, boxes in full-size video pixels; `faces`: the tracks counted as faces
    (see the module docstring, step 4); `num_frames`, `fps`; `detection_frames` (frames the detector ran on);
    `max_faces_per_frame` (detections in one frame, false ones included); `frame_size` (width, height) of the
    video; `seconds` spent."""

    tracks: list[FaceTrack]
    faces: list[FaceTrack]
    num_frames: int
    fps: float
    detection_frames: int
    max_faces_per_frame: int
    frame_size: tuple[int, int] | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        where = ", ".join(f"x {t.mean_box[0]:.0f}-{t.mean_box[2]:.0f} ({100 * t.presence:.0f} %)"
                          for t in sorted(self.faces, key=lambda t: t.mean_box[0]))
        return (f"{len(self.faces)} face(s) in {self.num_frames} frames ({len(self.tracks)} track(s), at most "
                f"{self.max_faces_per_frame} per frame){': ' + where if where else ''}")

    def speakers(self, num_speakers: int) -> list[FaceTrack]:
        """The `num_speakers` most present faces (fewer if fewer were found), ordered left to right."""
        chosen = self.faces[:num_speakers]
        return sorted(chosen, key=lambda t: float(np.median((t.boxes[:, 0] + t.boxes[:, 2]) / 2)))


def track_faces(frames: Iterable[np.ndarray], fps: float = 25.0, want: int = 1, detect_every: int = 1,
                scale: float = 1.0, detector: FaceDetector | None = None, smooth_seconds: float = SMOOTH_SECONDS,
                min_presence: float = MIN_PRESENCE) -> FaceTracking:
    """Detect and track faces in uint8 frames, RGB [H, W, 3] or grayscale [H, W] (an iterable, consumed once;
    the skin test needs colour).

    `want`: how many faces are expected (the profile fallback runs in frames with fewer frontal faces);
    `detect_every`: run the detector on every n-th frame only (the others are interpolated); `scale`: the frames'
    size relative to the full-size video (boxes are divided by it).
    """
    if detect_every < 1:
        raise ValueError(f"detect_every must be at least 1, got {detect_every!r}")
    start = time.perf_counter()
    detector = detector or FaceDetector()
    tracks: list[FaceTrack] = []
    n, detection_frames, most = 0, 0, 0
    last_index = -1
    for n, frame in enumerate(frames):
        last_index = n
        if n % detect_every:
            continue
        rgb = None
        if frame.ndim == 3:
            import cv2

            rgb = frame if is_colour(frame) else None
            frame = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        found = detector.detect(frame, want)
        detection_frames += 1
        most = max(most, len(found))
        detections = [Detection(n, box / scale, score, kind, None if rgb is None else skin_fraction(rgb, box))
                      for box, score, kind in found]
        tracks = _associate(tracks, detections, fps)
    num_frames = last_index + 1
    smooth_frames = max(1, round(smooth_seconds * fps)) | 1  # odd: centred
    tracks = _merge_fragments(tracks)
    for track in tracks:
        track.finish(num_frames, smooth_frames, detection_frames)
    tracks.sort(key=lambda t: (-t.strength, -t.presence))
    faces = [t for t in tracks if t.presence >= min_presence and len(t.detections) >= 2
             and (t.skin is None or t.skin >= MIN_SKIN)]
    faces = [t for t in faces if not any(_below(t, other) for other in faces if other.strength > t.strength)]
    return FaceTracking(tracks, faces, num_frames, float(fps), detection_frames, most,
                        seconds=time.perf_counter() - start)


def find_faces(video_path, want: int = 1, fps: float = 25.0, max_side: int | None = DETECT_MAX_SIDE,
               detect_every: int = 1, **kwargs) -> FaceTracking:
    """`track_faces` on a video file, decoded at `fps` as frames at most `max_side` pixels on the longer side;
    boxes are in the full-size displayed video's pixels. Raises InputError for unreadable videos."""
    from avss.video.io import iter_frames, probe_video

    start = time.perf_counter()
    info = probe_video(video_path)
    frames = iter(iter_frames(video_path, fps=fps, max_side=max_side))  # RGB: the skin test needs colour
    first = next(frames, None)
    scale = first.shape[1] / info.width if first is not None else 1.0  # the decoded size is rounded: measure it
    result = track_faces(itertools.chain([first], frames) if first is not None else [], fps=fps, want=want,
                         detect_every=detect_every, scale=scale, **kwargs)
    result.frame_size = (info.width, info.height)
    result.seconds = time.perf_counter() - start
    return result
