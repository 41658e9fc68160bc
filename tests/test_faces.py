"""Face detection, tracking and mouth crops on small generated videos of drawn faces."""
import numpy as np
import pytest

from avss.video.faces import FaceDetector, find_faces, iou, is_colour, skin_fraction, smooth, track_faces
from avss.video.io import write_video_with_audio
from avss.video.mouth_roi import contact_sheet, crop_square, mouth_box, mouths_from_video

FPS, RATE = 25, 16000
WIDTH, HEIGHT = 160, 120


def voice(seconds: float, f0: float, syllable_hz: float, phase: float, seed: int) -> np.ndarray:
    """A voiced test signal: harmonics of a wobbling f0 under an on/off envelope at `syllable_hz`."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f = f0 * (1 + 0.05 * np.sin(2 * np.pi * 1.3 * t))
    harmonics = sum(np.sin(k * 2 * np.pi * np.cumsum(f) / RATE + rng.uniform(0, 6.28)) / k for k in range(1, 10))
    envelope = np.clip(np.sin(2 * np.pi * syllable_hz * t + phase), 0, None) ** 0.7
    return (0.1 * harmonics * envelope + 0.001 * rng.standard_normal(t.size)).astype(np.float32)


def openings(audio: np.ndarray, frames: int) -> np.ndarray:
    """Mouth opening 0..1 per video frame: the RMS of the audio the frame covers, relative to the loudest frame."""
    hop = RATE // FPS
    rms = np.array([np.sqrt(np.mean(audio[k * hop:(k + 1) * hop] ** 2)) if k * hop < audio.size else 0.0
                    for k in range(frames)])
    return rms / max(rms.max(), 1e-9)


def draw_face(image: np.ndarray, cx: int, cy: int, width: int, opening: float, skin=(190, 150, 125)) -> None:
    """A cartoon face Haar cascades accept: skin ellipse, dark eyes under brows, a nose line, and a dark mouth
    ellipse whose height follows `opening` (0 closed .. 1 wide open)."""
    import cv2

    height = int(width * 1.3)
    cv2.ellipse(image, (cx, cy), (width // 2, height // 2), 0, 0, 360, skin, -1)
    eye_dx, eye_y = int(width * 0.2), cy - int(height * 0.1)
    for side in (-1, 1):
        cv2.ellipse(image, (cx + side * eye_dx, eye_y), (int(width * 0.1), int(width * 0.05)), 0, 0, 360,
                    (40, 40, 40), -1)
        brow_y = eye_y - int(width * 0.12)
        brow = int(width * 0.12)
        cv2.line(image, (cx + side * eye_dx - brow, brow_y), (cx + side * eye_dx + brow, brow_y), (60, 50, 40),
                 max(1, width // 25))
    cv2.line(image, (cx, eye_y + int(width * 0.05)), (cx, cy + int(height * 0.12)), (150, 120, 100),
             max(1, width // 20))
    mouth_height = max(1, int(round(width * 0.02 + width * 0.12 * opening)))
    cv2.ellipse(image, (cx, cy + int(height * 0.27)), (int(width * 0.18), mouth_height), 0, 0, 360, (60, 20, 20), -1)


def make_face_video(path, voices, seconds: float, size=(WIDTH, HEIGHT), face_width: int = 50, drift: float = 0.0):
    """An mp4 with one drawn face per voice, side by side (left = voices[0]), each mouth following its own voice;
    the audio is their sum. `drift`: the faces move this many pixels per second to the right. Returns the mix."""
    import cv2

    width, height = size
    frames = round(seconds * FPS)
    opens = [openings(v, frames) for v in voices]
    skins = [(190, 150, 125), (205, 170, 150), (180, 140, 110)]
    video = []
    for k in range(frames):
        image = np.full((height, width, 3), (90, 140, 200), np.uint8)
        for i, o in enumerate(opens):
            cx = int(width * (2 * i + 1) / (2 * len(voices)) + drift * k / FPS)
            draw_face(image, cx, height // 2, face_width, float(o[k]), skins[i % len(skins)])
        video.append(cv2.GaussianBlur(image, (3, 3), 0))
    mix = np.sum(voices, axis=0).astype(np.float32)
    write_video_with_audio(path, np.stack(video), FPS, mix, RATE)
    return mix


def two_voices(seconds: float = 2.4):
    """Two different voices: low and slow (2.5 syllables/s) on the left, high and fast (4.5/s) on the right."""
    return [voice(seconds, 110.0, 2.5, 0.0, seed=1), voice(seconds, 210.0, 4.5, 1.0, seed=2)]


# --------------------------------------------------------------------------------------------- unit tests
def test_box_helpers():
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0 and iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert abs(iou([0, 0, 10, 10], [5, 0, 15, 10]) - 1 / 3) < 1e-9
    x = np.array([0.0, 0, 0, 9, 0, 0, 0])
    y = smooth(x, 3)
    assert y[3] == 3.0 and y[2] == 3.0 and y[0] == 0.0 and y[-1] == 0.0  # centred, shrinking at the ends
    assert np.allclose(smooth(np.arange(10.0), 5), np.arange(10.0))  # a straight line passes unchanged
    box = mouth_box([100, 50, 200, 150])
    assert np.allclose(box, [100 + 50 - 29.5, 50 + 78 - 29.5, 150 + 29.5, 128 + 29.5])


def test_crop_square_is_sub_pixel_and_replicates_borders():
    gray = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))  # brightness = 4 * column
    crop = crop_square(gray, (10, 10, 30, 30), size=20)
    assert crop.shape == (20, 20) and crop.dtype == np.uint8
    assert abs(int(crop[5, 0]) - 40) <= 2 and abs(int(crop[5, -1]) - 116) <= 2
    edge = crop_square(gray, (-20, -20, 20, 20), size=40)  # half outside: the edge column repeats
    assert (edge[:, :20] == gray[0, 0]).all()


def test_detects_and_tracks_two_drawn_faces_left_to_right(tmp_path):
    seconds = 2.0
    voices = two_voices(seconds)
    make_face_video(tmp_path / "two.mp4", voices, seconds, drift=3.0)
    result = find_faces(tmp_path / "two.mp4", want=2, detect_every=2)
    assert len(result.faces) == 2 and result.num_frames == 50 and result.frame_size == (WIDTH, HEIGHT)
    assert result.faces[0].presence > 0.9 and result.faces[1].presence > 0.9
    left, right = result.speakers(2)
    for track, centre in ((left, WIDTH / 4), (right, 3 * WIDTH / 4)):
        assert track.boxes.shape == (50, 4)
        middle = (track.boxes[:, 0] + track.boxes[:, 2]) / 2
        drift = centre + 3.0 * np.arange(50) / FPS
        assert np.abs(middle - drift).max() < 4, (middle, drift)  # follows the moving face, frame by frame
        assert 45 < np.median(track.boxes[:, 2] - track.boxes[:, 0]) < 80
    assert "2 face(s) in 50 frames" in result.summary()

    mouths = mouths_from_video(tmp_path / "two.mp4", [left.boxes, right.boxes], result.frame_size)
    assert [m.shape for m in mouths] == [(50, 96, 96)] * 2 and all(m.dtype == np.uint8 for m in mouths)
    # the dark drawn mouth sits in the middle of the crop, skin around it
    centre = mouths[0][:, 40:56, 36:60].astype(float).mean()
    assert centre < mouths[0][:, :, :12].astype(float).mean() - 20
    sheet = contact_sheet(mouths[1], tmp_path / "sheet.png", rows=2, cols=4)
    assert sheet.is_file() and sheet.stat().st_size > 1000


def test_tracking_bridges_missed_detections_and_ignores_empty_frames():
    class Flaky(FaceDetector):
        """Finds one face at a fixed place except in frames 4-9, plus a one-frame false detection."""

        def __init__(self):
            self.k = -1

        def detect(self, gray, want=1):
            self.k += 1
            found = [] if 4 <= self.k <= 9 else [(np.array([20.0 + self.k, 10, 60 + self.k, 50]), 20.0, "frontal")]
            if self.k == 12:
                found.append((np.array([100.0, 10, 140, 50]), 5.0, "frontal"))
            return found

    frames = [np.zeros((60, 160), np.uint8)] * 20
    result = track_faces(frames, want=1, detector=Flaky(), smooth_seconds=0.0)
    assert len(result.tracks) == 2 and len(result.faces) == 1 and result.max_faces_per_frame == 2
    face = result.faces[0]
    assert abs(face.presence - 14 / 20) < 1e-9
    assert np.allclose(face.boxes[:, 0], 20 + np.arange(20))  # gap 4-9 interpolated linearly

    nothing = track_faces([np.zeros((60, 160), np.uint8)] * 5)  # a blank video: no faces, no tracks
    assert nothing.faces == [] and nothing.tracks == [] and nothing.num_frames == 5
    with pytest.raises(ValueError, match="detect_every"):
        track_faces([], detect_every=0)


def test_skin_and_neck_filters_drop_false_faces():
    frame = np.full((120, 200, 3), (90, 140, 200), np.uint8)  # blue background
    frame[10:60, 10:60] = (190, 150, 125)  # a skin-toned square
    frame[10:60, 120:170] = (200, 200, 200)  # grey "window blind"
    assert is_colour(frame) and not is_colour(np.repeat(frame[..., :1], 3, axis=-1))
    assert skin_fraction(frame, (10, 10, 60, 60)) == 1.0 and skin_fraction(frame, (120, 10, 170, 60)) == 0.0

    class Fixed(FaceDetector):
        """Every frame: a face, a grey false face, and a box on the face's neck."""

        def __init__(self):
            pass

        def detect(self, gray, want=1):
            return [(np.array([10.0, 10, 60, 60]), 30.0, "frontal"), (np.array([120.0, 10, 170, 60]), 8.0, "frontal"),
                    (np.array([15.0, 62, 55, 102]), 6.0, "frontal")]

    neck = frame.copy()
    neck[62:102, 15:55] = (185, 145, 120)
    result = track_faces([neck] * 6, detector=Fixed())
    assert len(result.tracks) == 3 and len(result.faces) == 1 and result.faces[0].mean_box[0] == 10
    gray = track_faces([neck[..., 1]] * 6, detector=Fixed())  # no colour: the grey box cannot be ruled out
    assert len(gray.faces) == 2
