"""Mouth regions of interest from face boxes, without facial landmarks: uint8 [T, 96, 96] grayscale at 25 fps.

Geometry (`MOUTH_CENTRE`, `MOUTH_SIDE`). The usual lip-reading preprocessing (mpc001's, see
`../shared/reference/README.md` section 2) needs 68 facial landmarks per frame: it smooths them over 12 frames,
maps the eye corners and nose (and mouth corners) onto a 256x256 *mean face* with a similarity transform and
cuts a 96x96 square centred on the mean of the 20 mouth landmarks. We have no landmark detector, only Haar face
boxes, so we cut the *same region* relative to the box. In the mean face (`20words_mean_face.npy`) the eye
centres are d = 54.3 px apart, the mouth centre lies 1.18 d below their midpoint (horizontally on it) and the
96-px crop is 1.77 d wide. On the 11 GRID clips of `../shared/data/av/grid` (75 frames) and four clips of
`../shared/data/av/faces` (35 frames), OpenCV's eye cascade inside the frontal Haar box put the eye centres at
0.39 h with d = 0.33 w (medians), which gives a crop centred at (0.49 w, 0.78 h), 0.59 w per side. We use
(0.50 w, 0.78 h) and 0.59 w: a documented equivalent of the mean-face crop for frontal faces (same scale and
position; head roll is not undone, and a face box smoothed over 0.5 s, not landmarks over 12 frames, places
it). Check: in these crops the lip line (darkest row of the clip's mean crop) lies at rows 40-54 of 96 (median 49).
The crop is resized to 96x96 (area interpolation when shrinking); pixels outside the frame repeat its edge.

`contact_sheet(mouths, path)` saves a grid of crops over time as a PNG to check the geometry by eye.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from avss.data.mouths import MOUTH_SIZE

MOUTH_CENTRE = (0.50, 0.78)  # mouth centre as fractions of the face box's width and height (from x0, y0)
MOUTH_SIDE = 0.59  # side of the square mouth crop, as a fraction of the face box's width


def mouth_box(face_box, centre: tuple[float, float] = MOUTH_CENTRE, side: float = MOUTH_SIDE) -> np.ndarray:
    """The square mouth crop (x0, y0, x1, y1) for a face box (x0, y0, x1, y1); works on [..., 4] arrays too."""
    face_box = np.asarray(face_box, dtype=np.float64)
    width = face_box[..., 2] - face_box[..., 0]
    height = face_box[..., 3] - face_box[..., 1]
    cx = face_box[..., 0] + centre[0] * width
    cy = face_box[..., 1] + centre[1] * height
    half = side * width / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=-1)


def crop_square(gray: np.ndarray, box, size: int = MOUTH_SIZE) -> np.ndarray:
    """Cut the square `box` (x0, y0, x1, y1; sub-pixel) out of a grayscale frame and resize it to size x size.

    Pixels outside the frame repeat the nearest edge pixel."""
    import cv2

    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(2, int(round(x1 - x0)))
    centre = ((x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5)  # getRectSubPix: pixel centres are at integers
    patch = cv2.getRectSubPix(np.ascontiguousarray(gray), (side, side), centre)
    interpolation = cv2.INTER_AREA if side >= size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interpolation)


def crop_mouths(frames: Iterable[np.ndarray], face_boxes: Sequence[np.ndarray], scale: float = 1.0,
                size: int = MOUTH_SIZE) -> list[np.ndarray]:
    """Mouth crops for several faces in one pass over grayscale frames [H, W].

    `face_boxes`: one float [T, 4] array per face, in full-size pixels; `scale`: the frames' size relative to the
    full size. Frame k uses row min(k, T-1) of each face's boxes. Returns one uint8 [n_frames, size, size] array
    per face."""
    import cv2

    mouth_boxes = [mouth_box(np.asarray(b, dtype=np.float64)) * scale for b in face_boxes]
    out: list[list[np.ndarray]] = [[] for _ in mouth_boxes]
    for k, frame in enumerate(frames):
        if frame.ndim == 3:
            frame = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        for face, boxes in enumerate(mouth_boxes):
            out[face].append(crop_square(frame, boxes[min(k, len(boxes) - 1)], size))
    empty = np.zeros((0, size, size), np.uint8)
    return [np.stack(crops).astype(np.uint8) if crops else empty for crops in out]


def contact_sheet(mouths: np.ndarray, path, rows: int = 4, cols: int = 8, tile: int = MOUTH_SIZE) -> Path:
    """Save `rows` x `cols` crops evenly spaced in time from uint8 [T, H, W] frames as one PNG, each tile
    labelled with its frame number; returns the path."""
    import cv2

    mouths = np.asarray(mouths)
    if mouths.ndim != 3 or mouths.shape[0] == 0:
        raise ValueError(f"mouths must be [T, H, W] with T > 0, got shape {list(mouths.shape)}")
    count = rows * cols
    picks = np.linspace(0, mouths.shape[0] - 1, count).round().astype(int)
    sheet = np.full((rows * (tile + 2), cols * (tile + 2)), 255, np.uint8)
    for i, k in enumerate(picks):
        r, c = divmod(i, cols)
        image = cv2.resize(np.ascontiguousarray(mouths[k]), (tile, tile), interpolation=cv2.INTER_AREA)
        cv2.putText(image, str(int(k)), (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, 255, 1, cv2.LINE_AA)
        y, x = r * (tile + 2) + 1, c * (tile + 2) + 1
        sheet[y:y + tile, x:x + tile] = image
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        raise OSError(f"cannot write {path}")
    return path


def mouths_from_video(video_path, face_boxes: Sequence[np.ndarray], frame_size: tuple[int, int],
                      fps: float = 25.0, size: int = MOUTH_SIZE) -> list[np.ndarray]:
    """`crop_mouths` on a video file: one pass over its grayscale frames at `fps`.

    `face_boxes`: float [T, 4] per face in full-size pixels of the displayed video of `frame_size` (width, height).
    Frames are decoded only as large as needed for the smallest mouth crop to keep about twice `size` pixels per
    side (full size for faces up to ~330 px wide)."""
    import itertools

    from avss.video.io import iter_frames

    width, height = frame_size
    if not face_boxes:
        return []
    smallest = min(float(np.median(mouth_box(np.asarray(b))[:, 2] - mouth_box(np.asarray(b))[:, 0]))
                   for b in face_boxes)
    shrink = min(1.0, 2 * size / max(smallest, 1.0))
    max_side = None if shrink >= 1.0 else max(size, int(np.ceil(max(width, height) * shrink)))
    frames = iter(iter_frames(video_path, fps=fps, max_side=max_side, gray=True))
    first = next(frames, None)
    if first is None:
        return [np.zeros((0, size, size), np.uint8) for _ in face_boxes]
    scale = first.shape[1] / width  # the decoded size is rounded: measure it
    return crop_mouths(itertools.chain([first], frames), face_boxes, scale=scale, size=size)
