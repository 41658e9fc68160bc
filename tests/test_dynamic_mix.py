from pathlib import Path

import numpy as np
import pytest
import torch

from avss.data.corpora import load_corpus
from avss.data.dynamic_mix import DynamicMixDataset, split_speakers
from avss.data.synthetic_mouths import synthetic_mouth_stream


def make(tiny_corpus, tmp_path, **kw):
    corpora = [{"path": str(tiny_corpus), "speaker_regex": r"^(\d+)-", "n_val_speakers": 2,
                "cache_dir": str(tmp_path / "cache")}]
    return DynamicMixDataset(corpora, sample_rate=16000, segment=1.0, length=6, **kw)


def test_corpus_labels_and_cache(tiny_corpus, tmp_path):
    corpus = load_corpus(tiny_corpus, r"^(\d+)-", 8000, cache_dir=tmp_path / "cache")
    assert sorted(corpus.speakers) == ["10", "11", "12", "13"]
    assert all(len(u) == 2 and len(u[0]) == 12000 for u in corpus.speakers.values())  # 1.5 s at 8 kHz
    assert len(list((tmp_path / "cache").glob("corpus_*.npz"))) == 1
    again = load_corpus(tiny_corpus, r"^(\d+)-", 8000, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again.speakers["12"][1], corpus.speakers["12"][1])


def test_validation_speakers_are_held_out(tiny_corpus, tmp_path):
    corpus = load_corpus(tiny_corpus, r"^(\d+)-", 16000, cache_dir=tmp_path / "cache")
    train, val = split_speakers(corpus, 2, seed=0)
    assert len(val) == 2 and not set(train) & set(val)
    assert split_speakers(corpus, 2, seed=0) == (train, val)


def test_items_are_valid_mixtures(tiny_corpus, tmp_path):
    ds = make(tiny_corpus, tmp_path, mouths=True)
    item = ds[0]
    assert item["mix"].shape == (16000,) and item["sources"].shape == (2, 16000)
    torch.testing.assert_close(item["mix"], item["sources"].sum(0), atol=1e-5, rtol=0)
    assert item["mouths"].shape == (2, 25, 96, 96) and item["mouths"].dtype == torch.uint8
    rms = item["sources"].pow(2).mean(-1).sqrt()
    assert abs(20 * torch.log10(rms[0] / rms[1])) <= 5.0 + 1e-3
    s1, s2 = item["name"].split("_")[1:]
    assert s1 != s2


def test_validation_is_fixed_and_training_varies(tiny_corpus, tmp_path):
    val = make(tiny_corpus, tmp_path, split="val")
    torch.testing.assert_close(val[3]["mix"], val[3]["mix"])
    train = make(tiny_corpus, tmp_path)
    assert not torch.equal(train[0]["mix"], train[0]["mix"])  # a fresh mixture on every draw
    with pytest.raises(ValueError, match="split"):
        make(tiny_corpus, tmp_path, split="test")


def test_synthetic_mouth_follows_its_own_source():
    rng = np.random.default_rng(0)
    sr = 16000
    syllables = np.repeat(rng.random(20) > 0.5, 5)  # speech on/off in 200 ms syllables, 100 video frames
    gate = np.repeat(syllables, sr // 25).astype(np.float32)
    audio = rng.standard_normal(gate.size).astype(np.float32) * gate
    frames = synthetic_mouth_stream(audio, sr, rng, max_lag_frames=0)
    dark_area = (frames < 53).mean(axis=(1, 2))  # the mouth cavity (grey <= 50) shows when it opens
    assert np.corrcoef(dark_area, gate[:: sr // 25])[0, 1] > 0.8


def test_dynamic_mix_colours_each_talker_and_keeps_the_sum(tiny_corpus, tmp_path):
    plain = make(tiny_corpus, tmp_path, split="val")[0]
    coloured = make(tiny_corpus, tmp_path, split="val", coloration_prob=1.0)[0]
    assert coloured["name"] == plain["name"]  # same talkers, crops and levels: only their tone differs
    assert not torch.allclose(coloured["sources"], plain["sources"], atol=1e-3)
    torch.testing.assert_close(coloured["sources"].pow(2).mean(-1), plain["sources"].pow(2).mean(-1), rtol=1e-3, atol=0)
    torch.testing.assert_close(coloured["mix"], coloured["sources"].sum(0), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="coloration_prob"):
        make(tiny_corpus, tmp_path, coloration_prob=1.5)


def test_dynamic_mix_shifts_formants_of_each_talker_and_keeps_the_sum(tiny_corpus, tmp_path):
    plain = make(tiny_corpus, tmp_path, split="val")[0]
    shifted = make(tiny_corpus, tmp_path, split="val", formant_shift=0.2)[0]
    assert shifted["name"] == plain["name"]  # same talkers: the shift is drawn after them
    assert not torch.allclose(shifted["sources"], plain["sources"], atol=1e-3)
    torch.testing.assert_close(shifted["mix"], shifted["sources"].sum(0), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="formant_shift"):
        make(tiny_corpus, tmp_path, formant_shift=0.6)


def test_train_and_validation_sets_with_different_item_seeds_hold_out_the_same_speakers(tiny_corpus, tmp_path):
    train = make(tiny_corpus, tmp_path, split="train", seed=0)
    for val_seed in (0, 1234, 7):
        val = make(tiny_corpus, tmp_path, split="val", seed=val_seed)
        assert not set(train.pools[0].speakers) & set(val.pools[0].speakers)
        assert len(train.pools[0].speakers) + len(val.pools[0].speakers) == 4
    corpus = load_corpus(tiny_corpus, r"^(\d+)-", 16000, cache_dir=tmp_path / "cache")
    moved = make(tiny_corpus, tmp_path, split="val", seed=1234, split_seed=5)
    assert sorted(moved.pools[0].speakers) == split_speakers(corpus, 2, seed=5)[1]


def test_shipped_configs_validate_on_speakers_the_training_set_never_draws():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[1] / "configs"), version_base=None):
        cfg = compose("train", overrides=["experiment=sudormrf_small_dm"])
    assert cfg.data.val.split_seed == cfg.data.train.split_seed and cfg.data.val.seed != cfg.data.train.seed
