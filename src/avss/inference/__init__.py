"""Inference: separate arrays, files and folders with a trained `Separator`.

- `separate_array(model, mix, sample_rate, mouths=None, chunk_seconds=8.0, overlap_seconds=1.0, device="cpu",
  shifts=2, flip_sign=True, mixture_consistency=True, spectral_filter=0.7)` -> [n_out, L] at the input rate (chunked,
  level-normalised, speaker order kept across chunks, refined at test time: avss.inference.refine);
- `separate_file(model, path, mouths_paths=None, **kw)` -> ([n_out, L], rate);
- `run_directory(model, data_dir, save_dir, ...)` -> `Report` (writes save_dir/s1, save_dir/s2).
"""
from avss.inference.chunked import check_chunking, check_settings, separate_array, separate_file
from avss.inference.refine import check_refinement, match_tracks
from avss.inference.runner import Report, run_directory


__all__ = ["separate_array", "separate_file", "run_directory", "Report", "match_tracks",
           "check_chunking", "check_refinement", "check_settings"]
