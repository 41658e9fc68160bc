"""scripts/oracle_masks.py: ideal masks separate disjoint sources; an 8-kHz round trip caps wide-band sources."""
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from conftest import load_script

REPO = Path(__file__).resolve().parents[1]
SR = 16000


def tone(freq, seconds=1.0, level=0.3):
    return (level * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def test_masks_separate_sources_in_disjoint_bands_and_8k_caps_the_high_one():
    script = load_script("oracle_masks")
    low, high = torch.from_numpy(tone(440.0)), torch.from_numpy(tone(6000.0))
    refs = torch.stack([low, high])
    mix = refs.sum(0)
    est = script.oracle_estimates(mix, refs, SR, 512, 128)
    for method in ("irm", "ibm", "wiener"):
        assert script.si_snr_improvement(est[method], refs, mix) > 25, method
    # 440 Hz survives 8 kHz, 6 kHz does not: the perfect 8-kHz estimate of the high source is ~silence
    rms = est["perfect_8k"].pow(2).mean(-1).sqrt()
    assert rms[1] < 0.005 and abs(rms[0] - 0.3 / np.sqrt(2)) < 0.01


def test_script_scores_a_course_layout_set_and_skips_mixtures_without_references(tmp_path, capsys):
    audio = tmp_path / "set" / "audio"
    for folder in ("mix", "s1", "s2"):
        (audio / folder).mkdir(parents=True)
    for name, (f1, f2) in {"a": (300.0, 2000.0), "b": (500.0, 3000.0), "c": (700.0, 1500.0)}.items():
        s1, s2 = tone(f1), tone(f2)
        sf.write(audio / "mix" / f"{name}.wav", s1 + s2, SR)
        if name != "c":
            sf.write(audio / "s1" / f"{name}.wav", s1, SR)
            sf.write(audio / "s2" / f"{name}.wav", s2, SR)
    out = tmp_path / "oracle.json"
    assert load_script("oracle_masks").main([str(tmp_path / "set"), "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["n"] == 2 and summary["skipped_without_refs"] == 1 and summary["sample_rate"] == SR
    assert summary["si_snri_db"]["ibm"] > 20 and summary["si_snri_db"]["perfect_8k"] > 20


def test_script_refuses_a_folder_without_the_course_layout(tmp_path, capsys):
    assert load_script("oracle_masks").main([str(tmp_path)]) != 0
    assert str(tmp_path) in capsys.readouterr().err
