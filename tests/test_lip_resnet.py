"""LRW ResNet-18 lip frontend: official key names and shapes, strict checkpoint loading, freezing, output shapes.

Official-format checkpoints are generated from the reference key list
(../shared/reference/lrw_resnet18_video_state_dict.json; those tests skip when it is absent).
"""
import json
from pathlib import Path

import pytest
import torch

from avss.models import AVConvTasNet, Separator
from avss.nn.lip_resnet import LRWResNet18Frontend, load_lrw_checkpoint
from avss.nn.visual import make_lip_frontend
from avss.utils.weight_files import skip_weight_files

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "lrw_resnet18_video_state_dict.json"
PARAMS = {"prelu": 11_186_688, "swish": 11_182_784}  # frontend + trunk, from the reference README
N_KEYS = {"prelu": 137, "swish": 120}
needs_reference = pytest.mark.skipif(not REFERENCE.is_file(), reason=f"{REFERENCE} not available")


@pytest.fixture(scope="module")
def reference():
    return json.loads(REFERENCE.read_text())


def official_state_dict(reference, activation: str, seed: int = 0) -> dict:
    """Every key of the official state dict (tcn.* head included) with its listed shape and dtype. Frontend and
    trunk tensors are random; the 25 M head values are one shared zero expanded to shape (keeps the file small)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for entry in reference["variants"][activation]["state_dict"]:
        shape, dtype = entry["shape"], getattr(torch, entry["dtype"])
        if entry["name"].startswith("tcn."):
            state[entry["name"]] = torch.zeros((), dtype=dtype).expand(shape)
        elif dtype == torch.int64:
            state[entry["name"]] = torch.randint(0, 1000, shape, generator=g)
        elif entry["name"].endswith("running_var"):
            state[entry["name"]] = torch.rand(shape, generator=g) + 0.5
        else:
            state[entry["name"]] = torch.randn(shape, generator=g) * 0.05
    return state


def save_official(path: Path, state: dict) -> Path:
    torch.save({"model_state_dict": state, "optimizer_state_dict": {}, "epoch_idx": 79, "best_prec": 0.879}, path)
    return path


@pytest.mark.parametrize("activation", ["prelu", "swish"])
def test_parameter_count(activation):
    frontend = LRWResNet18Frontend(activation=activation)
    assert sum(p.numel() for p in frontend.parameters()) == PARAMS[activation]
    assert len(frontend.state_dict()) == N_KEYS[activation]


@needs_reference
@pytest.mark.parametrize("activation", ["prelu", "swish"])
def test_names_shapes_and_dtypes_match_the_official_state_dict(reference, activation):
    variant = reference["variants"][activation]
    expected = {e["name"]: (tuple(e["shape"]), e["dtype"]) for e in variant["state_dict"]
                if e["kept_by_separation_models"]}
    own = {k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in
           LRWResNet18Frontend(activation=activation).state_dict().items()}
    assert own == expected
    assert variant["num_parameters_frontend_trunk"] == PARAMS[activation]


@needs_reference
@pytest.mark.parametrize("activation", ["prelu", "swish"])
def test_official_checkpoint_loads_strictly(reference, activation, tmp_path, one_thread):
    state = official_state_dict(reference, activation)
    assert any(k.startswith("tcn.") for k in state)
    path = save_official(tmp_path / "lrw_resnet18_mstcn.pth.tar", state)
    frontend = make_lip_frontend({"kind": "lrw_resnet18", "activation": activation, "checkpoint": str(path)}, 512)
    assert isinstance(frontend, LRWResNet18Frontend)
    loaded = frontend.state_dict()
    keys = ["frontend3D.0.weight", "frontend3D.1.running_var", "trunk.layer1.0.conv1.weight",
            "trunk.layer2.0.downsample.1.running_mean", "trunk.layer4.1.bn2.num_batches_tracked"]
    if activation == "prelu":
        keys += ["frontend3D.2.weight", "trunk.layer3.0.relu1.weight", "trunk.layer4.1.relu2.weight"]
    for key in keys:
        assert torch.equal(loaded[key], state[key]), key
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)
    out = frontend(torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8))
    assert out.shape == (2, 512, 3) and torch.isfinite(out).all()


@needs_reference
def test_module_prefix_is_stripped(reference, tmp_path):
    state = official_state_dict(reference, "swish", seed=1)
    path = save_official(tmp_path / "dp.pth.tar", {f"module.{k}": v for k, v in state.items()})
    frontend = load_lrw_checkpoint(LRWResNet18Frontend(activation="swish"), path)
    assert torch.equal(frontend.state_dict()["trunk.layer3.1.conv1.weight"], state["trunk.layer3.1.conv1.weight"])


@needs_reference
def test_activation_mismatch_is_one_clear_line(reference, tmp_path):
    prelu = save_official(tmp_path / "prelu.pth.tar", official_state_dict(reference, "prelu"))
    with pytest.raises(ValueError, match=r"checkpoint has PReLU weights \(frontend3D\.2\.weight\); build the "
                                         r"frontend with activation='prelu'") as info:
        LRWResNet18Frontend(activation="swish", checkpoint=str(prelu))
    assert "\n" not in str(info.value)
    swish = save_official(tmp_path / "swish.pth.tar", official_state_dict(reference, "swish"))
    with pytest.raises(ValueError, match="activation='swish'"):
        LRWResNet18Frontend(activation="prelu", checkpoint=str(swish))


def test_bad_checkpoint_files(tmp_path):
    frontend = LRWResNet18Frontend(activation="swish")
    with pytest.raises(FileNotFoundError, match="lip-reading checkpoint not found"):
        load_lrw_checkpoint(frontend, tmp_path / "missing.pth.tar")
    (tmp_path / "junk.pth.tar").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read the lip-reading checkpoint"):
        load_lrw_checkpoint(frontend, tmp_path / "junk.pth.tar")
    state = frontend.state_dict()
    torch.save(state, tmp_path / "plain.pth")  # a bare state dict: the official loaders reject it too
    with pytest.raises(ValueError, match="expected a dict with 'model_state_dict'"):
        load_lrw_checkpoint(frontend, tmp_path / "plain.pth")
    torch.save({"model_state_dict": {"tcn.x": torch.zeros(1)}}, tmp_path / "head.pth")
    with pytest.raises(ValueError, match=r"no frontend3D\.\* / trunk\.\* weights"):
        load_lrw_checkpoint(frontend, tmp_path / "head.pth")
    partial = {k: v for k, v in state.items() if not k.startswith("trunk.layer4.1.")}
    torch.save({"model_state_dict": partial}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match=r"missing \(e\.g\. trunk\.layer4\.1\."):
        load_lrw_checkpoint(frontend, tmp_path / "partial.pth")
    wrong = dict(state, **{"trunk.layer1.0.conv1.weight": torch.zeros(64, 64, 5, 5)})
    torch.save({"model_state_dict": wrong}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match=r"trunk\.layer1\.0\.conv1\.weight has shape \[64, 64, 5, 5\]"):
        load_lrw_checkpoint(frontend, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="unknown activation"):
        LRWResNet18Frontend(activation="relu")


def test_output_shapes_and_projection(one_thread):
    torch.manual_seed(0)
    mouths = torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8)
    frontend = LRWResNet18Frontend(activation="swish").eval()
    out = frontend(mouths)
    assert out.shape == (2, 512, 3)  # T preserved
    assert torch.allclose(frontend(mouths.float()), out)  # float frames in 0..255 are the same
    projected = LRWResNet18Frontend(emb_dim=24, activation="swish").eval()
    assert projected(mouths[:, :1]).shape == (2, 24, 1)
    assert all(p.requires_grad for p in projected.proj.parameters())


def test_frozen_trunk_gets_no_gradient_and_keeps_batchnorm_in_eval(one_thread):
    torch.manual_seed(0)
    frontend = LRWResNet18Frontend(emb_dim=16, activation="prelu")
    parent = torch.nn.Sequential(frontend).train()
    frozen = [p for n, p in frontend.named_parameters() if not n.startswith("proj.")]
    assert frozen and not any(p.requires_grad for p in frozen)
    norms = [m for m in frontend.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 1 + 2 * 2 * 4 + 3 and not any(m.training for m in norms)
    assert frontend.proj.training
    before = {k: v.clone() for k, v in frontend.state_dict().items() if not k.startswith("proj.")}
    parent(torch.randint(0, 256, (1, 3, 96, 96), dtype=torch.uint8)).square().mean().backward()
    assert frontend.proj.weight.grad is not None
    assert all(p.grad is None for p in frozen)
    after = frontend.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running statistics untouched

    trainable = LRWResNet18Frontend(activation="swish", freeze=False).train()
    assert all(p.requires_grad for p in trainable.parameters())
    assert all(m.training for m in trainable.modules())


def test_av_model_with_lrw_frontend_reloads_without_the_original_file(tmp_path, one_thread):
    source = LRWResNet18Frontend(activation="swish")
    path = tmp_path / "lrw.pth.tar"
    torch.save({"model_state_dict": source.state_dict()}, path)
    model = AVConvTasNet(n_filters=16, kernel_size=32, bottleneck=8, hidden=16, skip=8, blocks=2, repeats=2,
                         visual_dim=512, lip_frontend={"kind": "lrw_resnet18", "activation": "swish",
                                                      "checkpoint": str(path)})
    assert torch.equal(model.lip_frontend.trunk.layer2[0].conv1.weight, source.trunk.layer2[0].conv1.weight)
    model.save_pretrained(tmp_path / "av.pt")
    path.unlink()
    with pytest.raises(FileNotFoundError):  # building from the config alone still needs the file
        AVConvTasNet(**{k: v for k, v in model.config.items() if k != "_target_"})
    with skip_weight_files():
        AVConvTasNet(**{k: v for k, v in model.config.items() if k != "_target_"})
    loaded = Separator.from_pretrained(tmp_path / "av.pt")  # the weights travel in the avss checkpoint
    assert torch.equal(loaded.lip_frontend.frontend3D[0].weight, source.frontend3D[0].weight)
    mix = torch.randn(1, 1600)
    mouths = torch.randint(0, 256, (1, 3, 96, 96), dtype=torch.uint8)
    assert loaded(mix, mouths).shape == (1, 1, 1600)
