from avss.io.errors import InputError
from avss.io.audio import load_audio, save_audio, resample, to_mono

__all__ = ["InputError", "load_audio", "save_audio", "resample", "to_mono"]
