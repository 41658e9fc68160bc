import types

import numpy as np
import pytest
import torch

from avss.losses import si_snr
from avss.models.base import Separator
from avss.models.limuse import AUXILIARY, LiMuSE
from avss.nn.group_comm import ContextCodec, GroupCommTCN
from avss.nn.quantization import SoftStaircase, fake_quantize, load_quantized, quantized_layers
from avss.training.module import SeparationTask
from avss.training.quantization import InitFromFloat, RaiseTemperature
from avss.utils.complexity import FRONTEND_NAMES, macs_breakdown, param_breakdown
from conftest import speechlike

TINY = dict(n_filters=16, kernel_size=16, groups=4, context=8, audio_hidden=32, audio_layers=2, audio_stacks=1,
            fusion_hidden=96, fusion_layers=2, codec_hidden=16, codec_layers=1, visual_dim=8, voiceprint_dim=16,
            lip_frontend={"kind": "small", "width": 4},
            speaker_encoder={"channels": 8, "window": 64, "hop": 32, "dilations": [1]})
QUANT = {"weight_bits": 3, "act_bits": 8}


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**kw):
    return LiMuSE(**{**TINY, **kw})


def inputs(batch=2, length=4000, frames=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 2, length, generator=g), torch.randn(batch, frames, 8, generator=g),
            torch.randn(batch, 2400, generator=g))


@pytest.mark.parametrize("length", [1, 7, 333, 4001])
def test_output_length_and_backward(length):
    torch.manual_seed(0)
    model = tiny()
    mix = torch.randn(2, 2, length)
    mouths = torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8)
    out = model(mix, mouths, enrollment=torch.randn(2, 3000))
    assert out.shape == (2, 1, length) and torch.isfinite(out).all()
    if length == 4001:
        out.pow(2).mean().backward()
        for part in ("lip_frontend", "speaker_encoder", "encoder", "masker", "decoder"):
            grads = [p.grad for p in getattr(model, part).parameters()]
            assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0, part


def test_cues_are_used_and_checked():
    torch.manual_seed(0)
    model = tiny().eval()
    mix, visual, wav = inputs()
    emb = torch.randn(2, 16)
    with torch.no_grad():
        base = model(mix, visual, enrollment=wav)
        assert not torch.allclose(base, model(mix, visual.flip(1), enrollment=wav))
        assert not torch.allclose(base, model(mix, visual, enrollment=wav.flip(0)))
        # a [B, voiceprint_dim] embedding is used as is; a waveform goes through the speaker encoder
        calls = []
        model.speaker_encoder.register_forward_hook(lambda *args: calls.append(1))
        with_embedding = model(mix, visual, enrollment=emb)
        assert not calls
        torch.testing.assert_close(model(mix, visual, enrollment=model.speaker_encoder(wav)), base)
        assert not torch.allclose(with_embedding, base)
    with pytest.raises(ValueError, match="enrol"):
        model(mix, visual)
    with pytest.raises(ValueError, match="2-channel"):
        model(mix[:, 0], visual, enrollment=emb)
    with pytest.raises(ValueError, match="mouth"):
        model(mix, None, enrollment=emb)
    no_encoder = tiny(speaker_encoder={"kind": "none"})
    assert no_encoder(mix, visual, enrollment=emb).shape == (2, 1, 4000)
    with pytest.raises(ValueError, match="no speaker encoder"):
        no_encoder(mix, visual, enrollment=wav)


def test_context_codec_and_group_tcn_shapes():
    torch.manual_seed(0)
    tcn = GroupCommTCN(12, 24, groups=3, layers=2)
    codec = ContextCodec(tcn, 12, 12, groups=3, context=8)
    for t in (1, 8, 9, 50):
        x = torch.randn(2, 12, t)
        assert codec(x).shape == x.shape and tcn(x).shape == x.shape
    # the groups exchange information (TAC): changing one group's input changes the others' outputs
    x = torch.randn(1, 12, 20)
    y = x.clone()
    y[:, :4] += 1.0
    assert not torch.allclose(tcn(x)[:, 4:], tcn(y)[:, 4:])
    with pytest.raises(ValueError, match="divisible"):
        GroupCommTCN(10, 24, groups=3, layers=1)


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    mix, visual, wav = inputs()
    for kw in ({}, {"quantize": QUANT}):
        model = tiny(**kw)
        model(mix, visual, enrollment=wav)  # initialises the quantiser scales
        model.eval()
        model.save_pretrained(tmp_path / "m.pt")
        loaded = Separator.from_pretrained(tmp_path / "m.pt")
        assert type(loaded) is LiMuSE and loaded.config == model.config
        with torch.no_grad():
            torch.testing.assert_close(loaded(mix, visual, enrollment=wav), model(mix, visual, enrollment=wav))


def test_training_task_feeds_enrollment_per_speaker():
    torch.manual_seed(0)
    task = SeparationTask(tiny())
    batch = {"mix": torch.randn(2, 2, 3000), "sources": torch.randn(2, 2, 3000),
             "mouths": torch.randint(0, 256, (2, 2, 5, 96, 96), dtype=torch.uint8),
             "enrollment": torch.randn(2, 2, 2000)}
    mix, extra, target = task.prepare(batch)
    assert mix.shape == (4, 2, 3000) and extra["enrollment"].shape == (4, 2000) and target.shape == (4, 1, 3000)
    assert torch.isfinite(task.training_step(batch, 0))


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    sr, n = 16000, 4000
    a, b = (torch.from_numpy(speechlike(n / sr, sr, seed=s, f0=f)) for s, f in ((1, 110), (2, 210)))
    target = torch.stack([a, b]).unsqueeze(1)  # extract each of the two talkers
    mix = torch.stack([a + b, 0.9 * a + 1.1 * b]).expand(2, 2, n)
    g = torch.Generator().manual_seed(0)
    visual = torch.randn(2, 10, 8, generator=g)
    enrollment = torch.stack([torch.from_numpy(speechlike(0.2, sr, seed=s, f0=f)) for s, f in ((3, 110), (4, 210))])
    model = tiny()
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)

    def score():
        with torch.no_grad():
            return float(si_snr(model(mix, visual, enrollment=enrollment), target).mean())

    start, mixture = score(), float(si_snr(mix[:, :1], target).mean())
    for _ in range(200):
        opt.zero_grad()
        (-si_snr(model(mix, visual, enrollment=enrollment), target).mean()).backward()
        opt.step()
    final = score()
    assert final > start + 5.0 and final > mixture + 3.0, (start, mixture, final)


# ---- quantisation ----------------------------------------------------------------------------------------
def test_fake_quantize_rounds_with_straight_through_gradient():
    x = torch.linspace(-1, 3, 1000, requires_grad=True)
    q = fake_quantize(x, 8)
    assert (q - x).abs().max() <= 4 / 255 / 2 + 1e-6 and len(torch.unique(q.detach())) <= 256
    q.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))


def test_soft_staircase_approaches_the_hard_one():
    torch.manual_seed(0)
    w = torch.randn(500, requires_grad=True)
    quant = SoftStaircase(3)
    hard = quant.eval()(w)
    levels = torch.unique(torch.round(hard / quant.scale).detach())
    assert len(levels) <= 7 and levels.abs().max() <= 3  # 3 bits: codes -3..3
    quant.train()
    gaps = []
    for t in (1.0, 10.0, 200.0):
        quant.temperature.fill_(t)
        gaps.append(float((quant(w) - hard).abs().mean().detach()))
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.01 * float(quant.scale.detach())
    quant.temperature.fill_(5.0)
    quant(w).pow(2).sum().backward()
    assert w.grad.abs().sum() > 0 and quant.scale.grad is not None and quant.scale.grad != 0


def test_quantised_export_round_trip_and_size(tmp_path):
    torch.manual_seed(0)
    mix, visual, wav = inputs()
    model = tiny(quantize=QUANT)
    model(mix, visual, enrollment=wav)
    model.eval()
    assert "encoder.conv" in quantized_layers(model) and not any(
        name.startswith(AUXILIARY) for name in quantized_layers(model))
    sizes = model.save_quantized(tmp_path / "q.npz")
    assert sizes["payload_bytes"] < sizes["float32_bytes"] / 5
    fresh = tiny(quantize=QUANT).eval()
    load_quantized(fresh, tmp_path / "q.npz")
    for part in AUXILIARY:  # not part of the quantised export
        getattr(fresh, part).load_state_dict(getattr(model, part).state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh(mix, visual, enrollment=wav), model(mix, visual, enrollment=wav))
    with pytest.raises(ValueError, match="quantisation-aware"):
        tiny().save_quantized(tmp_path / "f.npz")


def test_qat_callbacks(tmp_path):
    torch.manual_seed(0)
    float_model = tiny()
    float_model.save_pretrained(tmp_path / "best_model.pt")
    task = SeparationTask(tiny(quantize=QUANT))
    InitFromFloat(str(tmp_path / "best_model.pt")).setup(None, task, "fit")
    layer = task.model.masker.mask
    torch.testing.assert_close(layer.weight, float_model.masker.mask.weight)
    assert bool(layer.weight_quant.initialized)
    logged = {}
    task.log = lambda name, value, **kw: logged.update({name: value})
    callback = RaiseTemperature(start=5.0, factor=2.0, max_temperature=30.0)
    for epoch, expected in ((0, 5.0), (1, 10.0), (3, 30.0)):
        callback.on_train_epoch_start(types.SimpleNamespace(current_epoch=epoch), task)
        assert float(layer.weight_quant.temperature) == expected == logged["quant/temperature"]
    with pytest.raises(FileNotFoundError):
        InitFromFloat(str(tmp_path / "missing.pt")).setup(None, task, "fit")


# ---- the paper's configurations --------------------------------------------------------------------------
@pytest.mark.parametrize("groups, params, macs", [(16, 1.12e6, 6.99e9), (32, 0.41e6, 3.46e9)])
def test_full_size_complexity_matches_the_paper(groups, params, macs):
    """3 s of 2-channel 16 kHz audio, lip frontend and speaker encoder excluded (a voiceprint embedding is
    given): within 10% of the authors' model (K=16: 1.12 M / 6.99 G MACs, K=32: 0.41 M / 3.46 G)."""
    model = LiMuSE(groups=groups)
    counted = param_breakdown(model, names=FRONTEND_NAMES + ("speaker_encoder",))["separator"]
    report = macs_breakdown(model, torch.randn(1, 2, 48000), torch.randn(1, 75, 512), enrollment=torch.randn(1, 512))
    assert counted == pytest.approx(params, rel=0.1)
    assert report.separator == pytest.approx(macs, rel=0.1)
