"""Datasets (course layout, LRS2-2Mix, dynamic mixing), batching and the Lightning data module."""
from avss.data.collate import collate_batch
from avss.data.custom_dir import CustomDirDataset, MixEntry, MixtureDataset, resolve_speakers, scan_custom_dir
from avss.data.lrs2_mix import LRS2MixDataset, parse_lrs2_name, scan_lrs2_mix
from avss.data.mouths import load_mouths, match_frames, num_frames

__all__ = ["collate_batch", "CustomDirDataset", "MixEntry", "MixtureDataset", "scan_custom_dir",
           "resolve_speakers", "LRS2MixDataset", "parse_lrs2_name", "scan_lrs2_mix",
           "load_mouths", "match_frames", "num_frames"]
