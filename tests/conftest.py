import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch


SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str):
    """Import scripts/<name>.py (the scripts are not a package) as a module, to test its functions."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def speechlike(seconds: float, sample_rate: int, seed: int, f0: float = 140.0) -> np.ndarray:
    """A voiced-speech-like test signal: harmonics of a wobbling f0 under a syllabic (4 Hz) on/off envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f = f0 * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f) / sample_rate
    x = sum(np.sin(k * phase + rng.uniform(0, 6.28)) / k for k in range(1, 12))
    env = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6.28)), 0, None) ** 0.5
    return (0.1 * x * env + 0.002 * rng.standard_normal(t.size)).astype(np.float32)


def overfit_extraction(model, steps: int, cue_for=lambda mix: None, lr: float = 5e-3):
    """Train an extraction model `steps` Adam steps on one fixed batch of two 0.25-s speech-like mixtures
    (target = the first source of each); returns SI-SNR (before, of the mixture, after) in dB."""
    from avss.losses import si_snr

    s1 = np.stack([speechlike(0.25, 16000, seed=1, f0=110), speechlike(0.25, 16000, seed=3, f0=210)])
    s2 = np.stack([speechlike(0.25, 16000, seed=2, f0=180), speechlike(0.25, 16000, seed=4, f0=120)])
    target, mix = torch.from_numpy(s1), torch.from_numpy(s1 + s2)
    cue = cue_for(mix)
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def score():
        with torch.no_grad():
            return si_snr(model(mix, cue)[:, 0], target).mean().item()

    before, mixture = score(), si_snr(mix, target).mean().item()
    for _ in range(steps):
        opt.zero_grad()
        (-si_snr(model(mix, cue)[:, 0], target).mean()).backward()
        opt.step()
    return before, mixture, score()


def overfit_separation(model, steps: int = 150, lr: float = 3e-3):
    """Train a 2-speaker separation model `steps` Adam steps on one fixed batch of two 0.5-s speech-like mixtures
    with the PIT SI-SNR loss; returns PIT SI-SNR (before, of the mixture, after) in dB."""
    from avss.losses import SeparationLoss, si_snr

    sources = torch.from_numpy(np.stack([
        np.stack([speechlike(0.5, 16000, seed=1, f0=110), speechlike(0.5, 16000, seed=2, f0=220)]),
        np.stack([speechlike(0.5, 16000, seed=3, f0=180), speechlike(0.5, 16000, seed=4, f0=95)]),
    ]))  # [B=2, S=2, L]
    mix = sources.sum(1)
    loss_fn = SeparationLoss()
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def score():
        with torch.no_grad():
            return -loss_fn(model(mix), sources)[0].item()

    flat = sources.reshape(-1, mix.shape[-1])
    before, mixture = score(), si_snr(mix[:, None].expand_as(sources).reshape(-1, mix.shape[-1]), flat).mean().item()
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(mix), sources)[0].backward()
        opt.step()
    return before, mixture, score()


@pytest.fixture
def tiny_corpus(tmp_path):
    """A speaker-labelled corpus: 4 speakers x 2 utterances of 1.5 s at 16 kHz, named `<spk>-<n>.wav`."""
    root = tmp_path / "corpus"
    root.mkdir()
    for s in range(4):
        for u in range(2):
            sf.write(root / f"{s + 10}-{u}.wav", speechlike(1.5, 16000, seed=10 * s + u, f0=100 + 30 * s), 16000)
    return root


@pytest.fixture
def one_thread():
    """Tiny models run many small ops: one torch thread is faster, and much faster on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_export_split_and_round_trip(model, tmp_path, mix: torch.Tensor):
    """The model's export split (prepare -> core -> finish) reproduces its forward pass, and a saved checkpoint
    loads with one line into a model that gives the same tracks; returns the loaded model."""
    from avss.models import Separator

    prepare, core, finish = model.export_parts()
    inputs, state = prepare(mix)
    torch.testing.assert_close(finish(core(*inputs), state), model(mix))
    model.save_pretrained(tmp_path / "model.pt")
    loaded = Separator.from_pretrained(tmp_path / "model.pt")
    torch.testing.assert_close(loaded(mix), model(mix))
    return loaded
