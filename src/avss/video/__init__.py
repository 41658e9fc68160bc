"""Real videos: read frames and sound, separate the speakers of a video, write videos with each speaker's audio.

- `avss.video.io`: `read_video`, `iter_frames`, `probe_video`, `read_audio_track`, `write_video_with_audio` (PyAV);
- `avss.video.separate`: `separate_video(model, video_path, save_dir, num_speakers=2, ...)`, the plug points
  `find_speakers` (face tracking, not available yet) and `assign_estimates`, and the body of `separate_video.py`.
"""
from avss.video.io import (VideoClip, VideoInfo, iter_frames, probe_video, read_audio_track, read_video,
                           write_video_with_audio)
from avss.video.separate import Assignment, SpeakerTrack, assign_estimates, find_speakers, separate_video

__all__ = ["VideoClip", "VideoInfo", "iter_frames", "probe_video", "read_audio_track", "read_video",
           "write_video_with_audio", "separate_video", "SpeakerTrack", "Assignment", "find_speakers",
           "assign_estimates"]
