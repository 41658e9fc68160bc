"""RTFS-Net: STFT codec, SRU, S3 masking, shapes, audio-visual behaviour, persistence, a tiny overfit, and the
full configs' size and cost."""
import functools
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from avss.models.base import Separator, build_from_config
from avss.models.rtfsnet import RTFSNet, SpectralSourceSeparation
from avss.nn.norms import GlobalLayerNorm
from avss.nn.rtfs_blocks import SRU, AxisRNN, GlobalNorm
from avss.nn.stft import ISTFTDecoder, STFTEncoder
from avss.utils.complexity import count_macs, macs_breakdown, param_breakdown
from conftest import overfit_extraction

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "model"
SR = 16000


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**kw):
    args = dict(n_fft=64, hop=32, enc_channels=16, channels=16, hidden=8, repeats=2, rnn_hidden=8, rnn_layers=1,
                unfold=4, att_heads=2, att_qk_dim=2, visual_dim=8, video_channels=8, video_hidden=8, video_depth=2,
                video_heads=2, fusion_heads=2, lip_frontend={"kind": "small", "width": 4})
    args.update(kw)
    return RTFSNet(**args)


def cached(batch, samples, dim=8, seed=0):
    """Precomputed lip embeddings [B, Tv, D] (25 fps), which bypass the lip frontend."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, max(1, round(25 * samples / SR)), dim, generator=g)


# ---- parts -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [1, 100, 129, 1000, 4001])
def test_stft_codec_reconstructs_and_keeps_length(length):
    enc, dec = STFTEncoder(256, 128), ISTFTDecoder(256, 128)
    wav = torch.randn(2, length)
    spec = enc(wav)
    assert spec.shape == (2, 2, 129, 1 + length // 128)
    torch.testing.assert_close(dec(spec, length), wav, atol=1e-5, rtol=0)
    assert enc(wav.view(2, 1, length)).shape == (2, 1, 2, 129, 1 + length // 128)  # leading axes are kept
    assert dec(spec, length + 500)[:, length + 300:].abs().max() == 0  # past the last frame: silence


def test_global_norm_is_gln_on_2d_maps():
    torch.manual_seed(0)
    norm = GlobalNorm(6)
    with torch.no_grad():
        norm.norm.weight.uniform_(0.5, 2.0)
        norm.norm.bias.normal_()
    x = 3 * torch.randn(2, 6, 5, 7) + 1
    reference = GlobalLayerNorm(6)
    reference.load_state_dict(norm.norm.state_dict())
    torch.testing.assert_close(norm(x), reference(x.flatten(2)).view_as(x), atol=1e-5, rtol=1e-5)


def test_sru_directions_see_only_their_side():
    torch.manual_seed(0)
    sru = SRU(6, 4, num_layers=1, bidirectional=True)  # one layer: stacked layers mix the two directions
    x = torch.randn(3, 10, 6)
    y = sru(x)
    assert y.shape == (3, 10, 8)
    x2 = x.clone()
    x2[:, 6:] += 1.0  # change the future only: forward half before t=6 is unchanged, backward half changes
    y2 = sru(x2)
    torch.testing.assert_close(y2[:, :6, :4], y[:, :6, :4])
    assert not torch.allclose(y2[:, :6, 4:], y[:, :6, 4:])
    x3 = x.clone()
    x3[:, :4] += 1.0  # change the past only: backward half from t=4 on is unchanged
    torch.testing.assert_close(sru(x3)[:, 4:, 4:], y[:, 4:, 4:])


@pytest.mark.parametrize("rnn", ["sru", "gru", "lstm"])
@pytest.mark.parametrize("axis,length", [("freq", 9), ("time", 3)])  # 3 < unfold: padded internally
def test_axis_rnn_keeps_shape(rnn, axis, length):
    layer = AxisRNN(8, 4, 2, kernel=4, axis=axis, rnn=rnn)
    x = torch.randn(2, 8, length if axis == "time" else 5, length if axis == "freq" else 5)
    assert layer(x).shape == x.shape


def test_s3_is_a_complex_mask_on_the_embedding():
    torch.manual_seed(0)
    s3 = SpectralSourceSeparation(channels=6, enc_channels=8)
    features, embedding = torch.randn(2, 6, 5, 3), torch.randn(2, 8, 5, 3)
    mask = s3.mask(features)
    expected = torch.complex(*mask.chunk(2, dim=1)) * torch.complex(*embedding.chunk(2, dim=1))
    out = s3(features, embedding)
    torch.testing.assert_close(out, torch.cat([expected.real, expected.imag], dim=1))


# ---- model -------------------------------------------------------------------------------------------------------
def test_forward_backward_reaches_every_parameter():
    torch.manual_seed(0)
    model = tiny()
    mix = torch.randn(2, 4000)
    out = model(mix, torch.randint(0, 256, (2, 7, 96, 96), dtype=torch.uint8))  # raw mouths -> lip frontend
    assert out.shape == (2, 1, 4000) and torch.isfinite(out).all()
    out.pow(2).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing


@pytest.mark.parametrize("length", [1, 7, 333, 4001])
def test_output_length_equals_input_length(length):
    model = tiny().eval()
    with torch.no_grad():
        out = model(torch.randn(2, length), cached(2, length))
        assert out.shape == (2, 1, length) and torch.isfinite(out).all()
        assert model(torch.randn(2, 1, length), cached(2, length)).shape == (2, 1, length)  # [B, 1, L] accepted


def test_needs_mouths_and_uses_them():
    torch.manual_seed(0)
    model = tiny().eval()
    mix = torch.randn(1, 4000)
    with pytest.raises(ValueError, match="mouth"):
        model(mix)
    with torch.no_grad():
        assert not torch.allclose(model(mix, cached(1, 4000, seed=1)), model(mix, cached(1, 4000, seed=2)))


def test_block_is_shared_so_size_does_not_depend_on_repeats():
    assert param_breakdown(tiny(repeats=1)) == param_breakdown(tiny(repeats=5))


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="rnn"):
        tiny(rnn="transformer")
    with pytest.raises(ValueError, match="repeats"):
        tiny(repeats=0)


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = tiny(rnn="gru").eval()
    model.save_pretrained(tmp_path / "rtfs.pt", note="test")
    loaded = Separator.from_pretrained(tmp_path / "rtfs.pt")
    assert type(loaded) is RTFSNet and loaded.config == model.config
    assert loaded.pretrained_info == {"note": "test"}
    mix, vis = torch.randn(1, 3001), cached(1, 3001)
    with torch.no_grad():
        torch.testing.assert_close(loaded(mix, vis), model(mix, vis))


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = tiny()
    before, mixture, after = overfit_extraction(model, 50, cue_for=lambda mix: cached(2, mix.shape[-1], seed=5))
    assert after > before + 5.0 and after > mixture + 5.0, (before, mixture, after)


# ---- the paper's configurations -------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _full(name):
    return build_from_config(OmegaConf.to_container(OmegaConf.load(CONFIGS / f"{name}.yaml"))).eval()


def test_full_configs_have_the_published_size():
    sizes = {r: param_breakdown(_full(f"rtfsnet_{r}"))["separator"] for r in (4, 6, 12)}
    assert {_full(f"rtfsnet_{r}").repeats for r in (4, 6, 12)} == {4, 6, 12}
    assert len(set(sizes.values())) == 1, sizes  # one shared RTFS block
    # target 0.74 M (lip frontend excluded), within 10 %
    assert abs(sizes[4] - 0.74e6) / 0.74e6 < 0.10, sizes


def test_shape_only_mac_count_equals_a_real_count():
    """The meta-device count skips the SRU's elementwise recurrence and torch.istft, which cost no MACs."""
    model = tiny().eval()
    mix, vis = torch.randn(1, 4000), cached(1, 4000)
    assert count_macs(model, mix, vis) == count_macs(model, mix, vis, meta=False) > 0


def test_full_configs_have_the_published_cost():
    """Targets (authors' model under torch.utils.flop_counter, 2 s at 16 kHz, batch 1, lip frontend excluded):
    21.9 G MACs at R=4 and 56.7 G at R=12, within 10 %. R=4 is counted whole; R=12 adds 8 counted applications of
    the shared block on the R=4 count (the model applies that one block R times to same-shaped maps)."""
    model = _full("rtfsnet_4")
    mix, vis = torch.randn(1, 2 * SR), torch.randn(1, 50, 512)
    macs4 = macs_breakdown(model, mix, vis).separator
    assert abs(macs4 - 21.9e9) / 21.9e9 < 0.10, macs4
    frames = model.stft.n_frames(2 * SR)
    block = macs_breakdown(model.rtfs_block, torch.randn(1, 256, frames, 129)).total
    macs12 = macs4 + 8 * block
    assert abs(macs12 - 56.7e9) / 56.7e9 < 0.10, macs12
