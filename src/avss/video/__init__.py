"""Real videos: read frames and sound, separate the speakers of a video, write videos with each speaker's audio.

- `avss.video.faces`, `avss.video.mouth_roi`, `avss.video.sync`: Haar-cascade face tracks, mouth crops, synchrony;
- `avss.video.io`: `read_video`, `iter_frames`, `probe_video`, `read_audio_track`, `write_video_with_audio` (PyAV);
- `avss.video.separate`: `separate_video(model, video_path, save_dir, num_speakers=2, ...)`, the plug points
  `find_speakers` (face detection, tracking and mouth crops) and `assign_estimates` (voice-to-face by
  audio-visual synchrony), and the body of `separate_video.py`.
"""
from avss.video.io import (VideoClip, VideoInfo, iter_frames, probe_video, read_audio_track, read_video,
                           write_video_with_audio)
from avss.video.separate import Assignment, SpeakerTrack, assign_estimates, find_speakers, separate_video

__all__ = ["VideoClip", "VideoInfo", "iter_frames", "probe_video", "read_audio_track", "read_video",
           "write_video_with_audio", "separate_video", "SpeakerTrack", "Assignment", "find_speakers",
           "assign_estimates"]
