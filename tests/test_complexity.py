"""MACs and parameter counts (avss.utils.complexity) against hand-derived values."""
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from avss.models import AVConvTasNet, ConvTasNet
from avss.models.base import build_from_config
from avss.utils.complexity import count_macs, count_params, macs_breakdown, param_breakdown, recurrent_macs

ROOT = Path(__file__).resolve().parents[1]


def counter_only_macs(module, *inputs) -> float:
    """What FlopCounterMode alone reports (real CPU pass), as MACs."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return counter.get_total_flops() / 2


def test_conv1d_macs():
    conv = nn.Conv1d(3, 8, 5, stride=2, padding=1)
    out_len = (100 + 2 * 1 - 5) // 2 + 1  # 49
    assert count_macs(conv, torch.randn(2, 3, 100)) == 2 * 8 * out_len * 3 * 5  # batch * C_out * T_out * C_in * K
    grouped = nn.Conv1d(8, 8, 3, groups=4, padding=1)  # each output channel sees 8/4 inputs
    assert count_macs(grouped, torch.randn(1, 8, 50)) == 8 * 50 * 2 * 3


def test_linear_macs():
    assert count_macs(nn.Linear(16, 32), torch.randn(4, 10, 16)) == 4 * 10 * 16 * 32


def test_lstm_macs_hook_needed_and_not_double_counted():
    lstm = nn.LSTM(10, 20, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(2, 50, 10)
    # per step and direction: 4 gates * h * (input + h); layer 1 input = 2 directions * h
    per_step = 4 * 20 * (10 + 20) + 4 * 20 * (2 * 20 + 20)
    expected = per_step * 2 * 2 * 50  # directions * batch * T
    assert expected == 1_440_000
    assert counter_only_macs(lstm, x) < expected  # the oneDNN LSTM kernel is invisible to the flop counter
    assert count_macs(lstm, x) == expected
    assert count_macs(lstm, x, meta=False) == expected


def test_lstm_with_projection_is_counted_once():
    # With proj_size the CPU LSTM is decomposed into mm calls that FlopCounterMode does see: the analytic
    # figure must replace them, not be added on top.
    lstm = nn.LSTM(10, 20, num_layers=2, bidirectional=True, batch_first=True, proj_size=5)
    x = torch.randn(2, 50, 10)
    per_step = 2 * (4 * 20 * (10 + 5) + 20 * 5)  # layer 1 input = 2 directions * 5 = 10 as well
    expected = per_step * 2 * 2 * 50
    with pytest.warns(UserWarning, match="projections"):
        seen = counter_only_macs(lstm, x)
    assert seen == expected  # this kernel is fully visible to the counter...
    assert count_macs(lstm, x, meta=False) == expected  # ...and still counted once


def test_gru_and_rnn_macs_not_double_counted():
    gru = nn.GRU(8, 12, batch_first=True)
    x = torch.randn(3, 20, 8)
    expected = 3 * 12 * (8 + 12) * 3 * 20  # 3 gates * h * (input + h) * batch * T
    assert counter_only_macs(gru, x) <= expected
    assert count_macs(gru, x) == expected
    assert count_macs(gru, x, meta=False) == expected
    rnn = nn.RNN(8, 12, num_layers=2)
    assert count_macs(rnn, torch.randn(20, 3, 8)) == (12 * (8 + 12) + 12 * (12 + 12)) * 20 * 3
    assert count_macs(rnn, torch.randn(20, 8)) == (12 * (8 + 12) + 12 * (12 + 12)) * 20  # unbatched


def test_recurrent_layer_inside_a_model_adds_to_the_rest():
    model = nn.Sequential(nn.Linear(4, 8), nn.LSTM(8, 6, batch_first=True))
    x = torch.randn(2, 7, 4)
    assert count_macs(model, x) == 2 * 7 * 4 * 8 + recurrent_macs(model[1], 2 * 7)
    packed = nn.utils.rnn.pack_padded_sequence(torch.randn(2, 7, 8), torch.tensor([7, 3]), batch_first=True)
    assert count_macs(model[1], packed, meta=False) == 4 * 6 * (8 + 6) * (7 + 3)  # only the real steps


def test_meta_count_equals_real_count():
    model = ConvTasNet(n_filters=32, kernel_size=8, bottleneck=16, hidden=32, skip=16, blocks=2, repeats=1).eval()
    x = torch.randn(1, 800)
    assert count_macs(model, x) == count_macs(model, x, meta=False) > 0


def test_frontend_macs_and_params_are_reported_apart():
    model = AVConvTasNet(n_filters=32, kernel_size=16, bottleneck=16, hidden=32, skip=16, blocks=2, repeats=2,
                         visual_dim=16, lip_frontend={"kind": "small", "width": 4}).eval()
    mix, mouths = torch.randn(1, 1600), torch.randint(0, 256, (1, 3, 96, 96), dtype=torch.uint8)
    report = macs_breakdown(model, mix, mouths)
    frontend_alone = count_macs(model.lip_frontend, mouths)
    assert report.frontend == frontend_alone > 0
    assert report.by_frontend == {"lip_frontend": frontend_alone}
    assert report.separator == report.total - report.frontend
    assert report.separator == pytest.approx(count_macs(model, mix, model.visual_features(mouths).transpose(1, 2)))
    params = param_breakdown(model)
    assert params["frontend"] == count_params(model.lip_frontend) > 0
    assert params["separator"] + params["frontend"] == params["total"] == count_params(model)


def paper_convtasnet():
    return build_from_config(OmegaConf.to_container(OmegaConf.load(ROOT / "configs/model/convtasnet.yaml")))


def test_convtasnet_paper_config_params_and_macs():
    model = paper_convtasnet().eval()
    assert count_params(model) == pytest.approx(5.05e6, rel=0.01)
    assert param_breakdown(model) == {"total": count_params(model), "separator": count_params(model), "frontend": 0}
    # Hand derivation, 1 s at 8 kHz, N=512 filters of L=16 samples, hop 8: T = (8000 - 16) / 8 + 1 = 999 frames.
    # Weight MACs only (norms, PReLU, sigmoid, masking and bias adds are not counted), per frame:
    n, length, b, h, sc, p, x, r, s = 512, 16, 128, 512, 128, 3, 8, 3, 2
    frames = (8000 - length) // (length // 2) + 1
    per_frame = (
        n * length  # encoder Conv1d(1, N, L)
        + n * b  # bottleneck 1x1 conv N -> B
        + x * r * (b * h + h * p + h * b + h * sc)  # each block: 1x1 B->H, depthwise P taps, residual H->B, skip H->Sc
        + sc * s * n  # mask head 1x1 Sc -> S*N
        + s * n * length  # decoder ConvTranspose1d(N, 1, L) on each of the S masked representations
    )
    expected = per_frame * frames  # 4,971,663,360: ~4.97 GMACs per second of 8 kHz audio
    assert count_macs(model, torch.randn(1, 8000)) == pytest.approx(expected, rel=1e-3)


def test_fvcore_cross_check():
    fvcore = pytest.importorskip("fvcore.nn")
    model = ConvTasNet(n_filters=64, kernel_size=16, bottleneck=32, hidden=64, skip=32, blocks=3, repeats=2).eval()
    x = torch.randn(1, 2000)
    analysis = fvcore.FlopCountAnalysis(model, (x,))  # fvcore's "flops" are MACs
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    # fvcore traces the graph and drops the last block's residual 1x1 conv (its output is never used);
    # eager PyTorch still computes it, and so does count_macs.
    frames = (2000 - 16) // 8 + 1
    dead_residual = 64 * 32 * frames
    norms = analysis.by_operator().get("group_norm", 0)  # not MACs here; fvcore charges 5 per normalised element
    assert count_macs(model, x) == analysis.total() - norms + dead_residual


def test_recurrent_frontend_is_attributed_to_the_frontend():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.visual_frontend = nn.GRU(8, 12, batch_first=True)
            self.out = nn.Linear(12, 3)

        def forward(self, x):
            return self.out(self.visual_frontend(input=x)[0])  # keyword input is seen too

    report = macs_breakdown(Tiny(), torch.randn(2, 5, 8))
    assert report.frontend == 3 * 12 * (8 + 12) * 2 * 5
    assert report.separator == 2 * 5 * 12 * 3
