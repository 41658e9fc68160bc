"""run_directory and inference.py on tiny generated folders with tiny untrained checkpoints."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from omegaconf import OmegaConf

from avss.inference import run_directory, separate_file
from avss.inference.runner import main as inference_main
from avss.models.base import Separator
from avss.models.convtasnet import ConvTasNet

ROOT = Path(__file__).resolve().parents[1]
SR = 16000


def tiny_convtasnet():
    torch.manual_seed(0)
    return ConvTasNet(n_src=2, sample_rate=SR, n_filters=16, kernel_size=16, bottleneck=8, hidden=16, skip=8,
                      blocks=2, repeats=1).eval()


class MouthGain(Separator):
    """Fake extraction model: output = mix * mean mouth brightness / 255."""

    needs_visual = True
    task = "extraction"

    def __init__(self, sample_rate: int = SR):
        super().__init__()
        self.sample_rate, self.n_src = sample_rate, 1

    def forward(self, mix, mouths=None):
        return (mix * (mouths.float().mean(dim=(1, 2, 3)) / 255.0)[:, None]).unsqueeze(1)


def tone(n, freq, rate, amp=0.2):
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.float32)


def make_dir(root: Path, good=(("a_b", 8000, 4001),), corrupt=("c_d",), mouths=()):
    mix_dir = root / "audio" / "mix"
    mix_dir.mkdir(parents=True)
    for name, rate, n in good:
        sf.write(mix_dir / f"{name}.wav", tone(n, 300, rate) + tone(n, 1100, rate, 0.1), rate)
    for name in corrupt:
        (mix_dir / f"{name}.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot audio at all" * 4)
    for spk, value in mouths:
        (root / "mouths").mkdir(exist_ok=True)
        np.savez(root / "mouths" / f"{spk}.npz", data=np.full((30, 96, 96), value, np.uint8))
    return root


def lines_with(text, needle):
    return [line for line in text.splitlines() if needle in line]


def test_run_directory_writes_good_and_reports_corrupt(tmp_path, capsys):
    data = make_dir(tmp_path / "data")
    out = tmp_path / "out"
    report = run_directory(tiny_convtasnet(), data, out, chunk_seconds=0.2, overlap_seconds=0.05, progress=True)
    err = capsys.readouterr().err
    corrupt = str(data / "audio" / "mix" / "c_d.wav")
    assert report.done == [str(data / "audio" / "mix" / "a_b.wav")]
    assert [path for path, _ in report.failed] == [corrupt]
    error_lines = lines_with(err, corrupt)
    assert len(error_lines) == 1 and error_lines[0].strip().startswith(corrupt + ": "), err
    assert "Traceback" not in err
    for track in ("s1", "s2"):
        info = sf.info(str(out / track / "a_b.wav"))
        assert (info.samplerate, info.frames, info.subtype) == (8000, 4001, "PCM_16")
        assert not (out / track / "c_d.wav").exists()
        assert sorted(p.name for p in (out / track).iterdir()) == ["a_b.wav"]  # no temporary leftovers


def test_av_model_order_and_missing_mouth_file(tmp_path, capsys):
    data = make_dir(tmp_path / "data", good=(("spkB_spkA", SR, 8000), ("spkC_spkD", SR, 8000)), corrupt=(),
                    mouths=(("spkA", 51), ("spkB", 204), ("spkC", 100)))
    out = tmp_path / "out"
    report = run_directory(MouthGain(), data, out, chunk_seconds=0.2, overlap_seconds=0.04, progress=False)
    err = capsys.readouterr().err
    missing_mix = str(data / "audio" / "mix" / "spkC_spkD.wav")
    assert [path for path, _ in report.failed] == [missing_mix]
    error_lines = lines_with(err, missing_mix)
    assert len(error_lines) == 1 and "mouths/spkD.npz" in error_lines[0] and "audio-only" in error_lines[0], err
    assert not (out / "s1" / "spkC_spkD.wav").exists() and not (out / "s2" / "spkC_spkD.wav").exists()
    mix, _ = sf.read(data / "audio" / "mix" / "spkB_spkA.wav", dtype="float32")
    s1, _ = sf.read(out / "s1" / "spkB_spkA.wav", dtype="float32")
    s2, _ = sf.read(out / "s2" / "spkB_spkA.wav", dtype="float32")
    # s1 is the first ID of the name (spkB, brightness 204 -> gain 0.8), s2 is spkA (gain 0.2)
    np.testing.assert_allclose(s1, 0.8 * mix, atol=2e-4)
    np.testing.assert_allclose(s2, 0.2 * mix, atol=2e-4)


def test_separate_file_with_mouths(tmp_path):
    data = make_dir(tmp_path / "data", good=(("x_y", 8000, 3333),), corrupt=(), mouths=(("x", 255), ("y", 0)))
    est, rate = separate_file(MouthGain(), data / "audio" / "mix" / "x_y.wav",
                              [data / "mouths" / "y.npz", data / "mouths" / "x.npz"])
    assert rate == 8000 and est.shape == (2, 3333)
    assert np.abs(est[0]).max() == 0 and np.abs(est[1]).max() > 0.1


def run_script(cwd, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(ROOT / "inference.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


def test_inference_script_end_to_end(tmp_path):
    tiny_convtasnet().save_pretrained(tmp_path / "ckpt" / "tiny.pt", note="untrained test model")
    make_dir(tmp_path / "good", good=(("a_b", 8000, 4001), ("e_f", 22050, 5001)), corrupt=())
    ok = run_script(tmp_path, "data_dir=good", "save_dir=sep", "checkpoint=ckpt/tiny.pt", "chunk_seconds=0.2",
                    "overlap_seconds=0.05")
    assert ok.returncode == 0, ok.stderr
    assert "separated 2 mixtures into" in ok.stdout and "s1/, s2/" in ok.stdout
    for name, rate, n in (("a_b", 8000, 4001), ("e_f", 22050, 5001)):
        for track in ("s1", "s2"):
            info = sf.info(str(tmp_path / "sep" / track / f"{name}.wav"))
            assert (info.samplerate, info.frames) == (rate, n)
    assert not (tmp_path / "outputs").exists() and not (tmp_path / ".hydra").exists()

    data = make_dir(tmp_path / "mixed", corrupt=("c_d",))
    bad = run_script(tmp_path, f"data_dir={data}", f"save_dir={tmp_path / 'sep2'}",
                     f"checkpoint={tmp_path / 'ckpt' / 'tiny.pt'}", "device=cuda")
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    corrupt = str(data / "audio" / "mix" / "c_d.wav")
    assert len(lines_with(bad.stderr, corrupt)) == 1, bad.stderr
    assert "1 failed" in bad.stderr
    if not torch.cuda.is_available():
        assert "CUDA is not available" in bad.stderr
    assert (tmp_path / "sep2" / "s1" / "a_b.wav").is_file()
    assert not (tmp_path / "sep2" / "s1" / "c_d.wav").exists()


def test_missing_checkpoint_or_data_dir_exit_2(tmp_path, capsys):
    tiny_convtasnet().save_pretrained(tmp_path / "tiny.pt")
    make_dir(tmp_path / "data", corrupt=())
    base = {"data_dir": str(tmp_path / "data"), "save_dir": str(tmp_path / "out"),
            "checkpoint": str(tmp_path / "tiny.pt"), "device": "cpu", "chunk_seconds": 8.0,
            "overlap_seconds": 1.0, "progress": False}
    cases = {"checkpoint": str(tmp_path / "nope.pt"), "data_dir": str(tmp_path / "nodata")}
    for key, value in cases.items():
        code = inference_main(OmegaConf.create({**base, key: value}))
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and value in err, err
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    assert inference_main(OmegaConf.create({**base, "checkpoint": str(tmp_path / "garbage.pt")})) == 2
    assert "cannot load" in capsys.readouterr().err
    assert inference_main(OmegaConf.create({**base, "overlap_seconds": 9.0})) == 2
    assert "overlap_seconds" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert inference_main(OmegaConf.create(base)) == 0
    assert (tmp_path / "out" / "s2" / "a_b.wav").is_file()


def test_voiceprint_model_reads_enrolments_and_reports_each_bad_file(tmp_path, capsys):
    """LiMuSE-style folder: 2-channel mixtures, mouths, and per speaker an enrolment utterance or a voiceprint."""
    from test_limuse import TINY

    from avss.models.limuse import LiMuSE

    torch.manual_seed(0)
    model = LiMuSE(**TINY).eval()
    data = tmp_path / "data"
    (data / "audio" / "mix").mkdir(parents=True)
    (data / "enrollment").mkdir()
    stereo = np.stack([tone(8000, 300, SR), tone(8000, 310, SR)], axis=1)  # [L, 2]
    for name in ("a_b", "c_d", "a_x", "c_w"):
        sf.write(data / "audio" / "mix" / f"{name}.wav", stereo, SR)
    sf.write(data / "audio" / "mix" / "mono_b.wav", tone(8000, 300, SR), SR)
    for spk, value in (("a", 40), ("b", 200), ("c", 90), ("d", 150), ("x", 10), ("mono", 70)):
        (data / "mouths").mkdir(exist_ok=True)
        np.savez(data / "mouths" / f"{spk}.npz", data=np.full((20, 96, 96), value, np.uint8))
    sf.write(data / "enrollment" / "a.wav", tone(16000, 200, SR), SR)
    sf.write(data / "enrollment" / "b.flac", tone(24000, 500, 24000), 24000)
    sf.write(data / "enrollment" / "mono.wav", tone(16000, 250, SR), SR)
    np.save(data / "enrollment" / "c.npy", np.linspace(-1, 1, 16, dtype=np.float32))
    np.save(data / "enrollment" / "d.npy", np.ones(16, np.float32))
    np.save(data / "enrollment" / "w.npy", np.ones(10, np.float32))  # wrong size
    np.savez(data / "mouths" / "w.npz", data=np.full((20, 96, 96), 60, np.uint8))

    report = run_directory(model, data, tmp_path / "out", chunk_seconds=None, progress=False)
    err = capsys.readouterr().err
    assert sorted(Path(p).stem for p in report.done) == ["a_b", "c_d"]
    assert sorted(Path(p).stem for p, _ in report.failed) == ["a_x", "c_w", "mono_b"]
    assert len(lines_with(err, "w.npy: voiceprint has 10 values; LiMuSE needs 16")) == 1
    assert len(lines_with(err, "a_x.wav: missing enrolment file")) == 1 and "enrollment/x.*" in err
    assert len(lines_with(err, "mono_b.wav: has 1 audio channel(s); LiMuSE needs 2")) == 1
    assert "Traceback" not in err
    s1, _ = sf.read(tmp_path / "out" / "s1" / "c_d.wav")
    s2, _ = sf.read(tmp_path / "out" / "s2" / "c_d.wav")
    assert s1.shape == (8000,) and not np.allclose(s1, s2, atol=1e-4)


def test_enrolment_k_conditions_output_k():
    from test_limuse import TINY

    from avss.inference import separate_array
    from avss.models.limuse import LiMuSE

    torch.manual_seed(0)
    model = LiMuSE(**TINY).eval()
    mix = np.stack([tone(6000, 300, SR), tone(6000, 420, SR)])
    mouths = [np.full((10, 96, 96), 100, np.uint8)] * 2  # same mouths: only the voiceprints differ
    prints = [np.linspace(-1, 1, 16, dtype=np.float32), np.ones(16, np.float32)]
    out = separate_array(model, mix, SR, mouths=mouths, enrollment=prints, chunk_seconds=None)
    swapped = separate_array(model, mix, SR, mouths=mouths, enrollment=prints[::-1], chunk_seconds=None)
    assert not np.allclose(out[0], out[1], atol=1e-5)
    np.testing.assert_allclose(swapped, out[::-1], atol=1e-5)
    wave = separate_array(model, mix, SR, mouths=mouths, enrollment=[tone(16000, 200, SR)] * 2, chunk_seconds=None)
    assert wave.shape == (2, 6000) and np.isfinite(wave).all()
    with pytest.raises(ValueError, match="needs one enrolment per target speaker"):
        separate_array(model, mix, SR, mouths=mouths, chunk_seconds=None)


def test_refinement_settings_reach_the_separation_and_bad_ones_exit_2(tmp_path, capsys):
    tiny_convtasnet().save_pretrained(tmp_path / "tiny.pt")
    make_dir(tmp_path / "data", good=(("a_b", 16000, 8001),), corrupt=())  # the model's rate: no resampling
    base = {"data_dir": str(tmp_path / "data"), "checkpoint": str(tmp_path / "tiny.pt"), "progress": False,
            "chunk_seconds": None}
    for bad, named in (({"shifts": 0}, "shifts"), ({"flip_sign": "maybe"}, "flip_sign"), ({"shift": 2}, "shift"),
                       ({"spectral_filter": 2.0}, "spectral_filter")):
        code = inference_main(OmegaConf.create({**base, "save_dir": str(tmp_path / "bad"), "refinement": bad}))
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and named in err, err
    assert not (tmp_path / "bad").exists()
    outputs = {}
    one_pass = {"shifts": 1, "flip_sign": False, "spectral_filter": 0.0}
    for name, refinement in (("plain", {**one_pass, "mixture_consistency": False}),
                             ("consistent", {**one_pass, "mixture_consistency": True})):
        cfg = OmegaConf.create({**base, "save_dir": str(tmp_path / name), "refinement": refinement})
        assert inference_main(cfg) == 0
        outputs[name] = [sf.read(str(tmp_path / name / t / "a_b.wav"))[0] for t in ("s1", "s2")]
    mix, _ = sf.read(str(tmp_path / "data" / "audio" / "mix" / "a_b.wav"))
    residual = lambda tracks: np.abs(mix - tracks[0] - tracks[1]).max()  # noqa: E731
    assert residual(outputs["consistent"]) < 1e-3 < residual(outputs["plain"])  # 16-bit files: 3e-5 steps
