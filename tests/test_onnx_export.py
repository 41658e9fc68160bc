"""ONNX export: the exported core in ONNX Runtime matches PyTorch (1e-4), at lengths other than the traced one,
through separate_array and from a file alone."""
import numpy as np
import pytest
import torch

from avss.export import OnnxSeparator, export_onnx
from avss.inference import separate_array
from avss.models import AVConvTasNet, ConvTasNet, SuDoRMRF, TFMaskNet

pytestmark = pytest.mark.usefixtures("one_thread")


def models():
    torch.manual_seed(0)
    return {
        "convtasnet": ConvTasNet(sample_rate=16000, n_filters=32, kernel_size=32, bottleneck=16, hidden=32, skip=16,
                                 blocks=3, repeats=1),
        "tfmask_blstm": TFMaskNet(n_fft=256, hop=64, masker="blstm", dim=32, hidden=32, layers=2),
        "tfmask_tcn": TFMaskNet(n_fft=256, hop=64, masker="tcn", dim=32, hidden=64, layers=1, tcn_blocks=4),
        "sudormrf": SuDoRMRF(sample_rate=16000, n_filters=16, kernel_size=16, bottleneck=8, hidden=16, blocks=2,
                             depth=3),
    }


@pytest.mark.parametrize("name", ["convtasnet", "tfmask_blstm", "tfmask_tcn", "sudormrf"])
def test_onnx_matches_pytorch(tmp_path, name):
    model = models()[name].eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx", example_seconds=0.5)
    onnx_model = OnnxSeparator.load(path)
    assert onnx_model.sample_rate == model.sample_rate and onnx_model.n_src == 2
    g = torch.Generator().manual_seed(1)
    for length in (8000, 12345, 40000):  # the traced example was 8000 samples
        mix = 0.1 * torch.randn(2, length, generator=g)
        with torch.no_grad():
            expected = model(mix)
        torch.testing.assert_close(onnx_model(mix), expected, atol=1e-4, rtol=1e-4)


def test_onnx_model_runs_through_separate_array(tmp_path):
    model = models()["tfmask_blstm"].eval()
    onnx_model = OnnxSeparator.load(export_onnx(model, tmp_path / "m.onnx", example_seconds=0.5))
    mix = np.random.default_rng(0).standard_normal(44100 * 3).astype(np.float32) * 0.1
    a = separate_array(model, mix, 44100, chunk_seconds=1.0, overlap_seconds=0.25)
    b = separate_array(onnx_model, mix, 44100, chunk_seconds=1.0, overlap_seconds=0.25)
    assert b.shape == (2, 44100 * 3)
    np.testing.assert_allclose(b, a, atol=1e-4)


def test_export_refuses_audio_visual_models_and_foreign_files(tmp_path):
    av = AVConvTasNet(n_filters=16, kernel_size=32, bottleneck=8, hidden=16, skip=8, blocks=2, repeats=2,
                      visual_dim=8, lip_frontend={"kind": "small", "width": 4})
    with pytest.raises(NotImplementedError, match="audio-only"):
        export_onnx(av, tmp_path / "av.onnx")
    with pytest.raises(FileNotFoundError):
        OnnxSeparator.load(tmp_path / "missing.onnx")


def test_inference_entry_point_accepts_an_onnx_file(tmp_path):
    import soundfile as sf
    from omegaconf import OmegaConf

    from avss.inference.runner import main

    model = models()["convtasnet"].eval()
    path = export_onnx(model, tmp_path / "m.onnx", example_seconds=0.5)
    (tmp_path / "data" / "audio" / "mix").mkdir(parents=True)
    sf.write(tmp_path / "data" / "audio" / "mix" / "a_b.wav", 0.1 * np.random.default_rng(0).standard_normal(9000),
             16000)
    cfg = OmegaConf.create({"data_dir": str(tmp_path / "data"), "save_dir": str(tmp_path / "out"),
                            "checkpoint": str(path), "device": "cpu", "progress": False})
    assert main(cfg) == 0
    out, rate = sf.read(tmp_path / "out" / "s1" / "a_b.wav")
    assert rate == 16000 and out.shape == (9000,)
