import pytest
import torch

from avss.data.collate import RandomLengthCollate, collate_batch


def test_extra_per_item_tensors_are_stacked_and_audio_padded():
    items = [
        {"mix": torch.ones(10), "sources": torch.ones(2, 10), "enrollment": torch.full((2, 5), 1.0), "name": "a"},
        {"mix": torch.ones(8), "sources": torch.ones(2, 8), "enrollment": torch.full((2, 5), 2.0), "name": "b"},
    ]
    batch = collate_batch(items)
    assert batch["enrollment"].shape == (2, 2, 5) and float(batch["enrollment"][1, 0, 0]) == 2.0
    assert batch["mix"].shape == (2, 10) and float(batch["mix"][1, 8:].abs().sum()) == 0.0
    assert batch["lengths"].tolist() == [10, 8]


def _items(n_items=3, n=1000):
    torch.manual_seed(0)
    items = []
    for i in range(n_items):
        sources = torch.randn(2, n)
        items.append({"mix": sources.sum(0), "sources": sources, "name": str(i)})
    return items


def test_random_length_collate_cuts_mixture_and_sources_to_one_window():
    torch.manual_seed(1)
    items = _items()
    collate = RandomLengthCollate(200)
    lengths = set()
    for _ in range(20):
        batch = collate(items)
        length = batch["mix"].shape[-1]
        lengths.add(length)
        assert 200 <= length <= 1000 and batch["sources"].shape == (3, 2, length)
        torch.testing.assert_close(batch["sources"].sum(1), batch["mix"])
        assert batch["lengths"].tolist() == [length] * 3
        start = next(s for s in range(1000 - length + 1)
                     if torch.equal(items[0]["mix"][s:s + length], batch["mix"][0]))
        torch.testing.assert_close(batch["sources"][2], items[2]["sources"][:, start:start + length])
    assert len(lengths) > 10  # a new length per batch


def test_random_length_collate_avoids_windows_where_a_talker_is_silent():
    torch.manual_seed(2)
    sources = torch.zeros(2, 1000)
    sources[0] = torch.randn(1000)
    sources[1, 800:] = torch.randn(200)  # the second talker speaks only in the last fifth
    items = [{"mix": sources.sum(0), "sources": sources}]
    silent = 0
    for _ in range(50):
        batch = RandomLengthCollate(300, tries=8)(items)
        silent += int(batch["sources"][0, 1].abs().max() == 0)
    single = sum(int(RandomLengthCollate(300, tries=1)(items)["sources"][0, 1].abs().max() == 0) for _ in range(50))
    assert silent < single and silent <= 2


def test_random_length_collate_keeps_short_batches_and_refuses_mouths():
    items = _items(n=150)
    assert RandomLengthCollate(200)(items)["mix"].shape[-1] == 150
    with_mouths = [{**it, "mouths": torch.zeros(2, 4, 96, 96, dtype=torch.uint8)} for it in items]
    with pytest.raises(ValueError, match="audio only"):
        RandomLengthCollate(10)(with_mouths)
    with pytest.raises(ValueError, match="min_samples must be at least 1"):
        RandomLengthCollate(0)


def test_datamodule_cuts_training_batches_only():
    from avss.data.datamodule import SeparationDataModule

    class Rated(list):
        sample_rate = 1000

    dm = SeparationDataModule(Rated(_items(4)), Rated(_items(2)), batch_size=2, train_min_seconds=0.25)
    assert isinstance(dm.train_collate, RandomLengthCollate) and dm.train_collate.min_samples == 250
    assert next(iter(dm.val_dataloader()))["mix"].shape[-1] == 1000
    with pytest.raises(ValueError, match="train_min_seconds=0.25 needs"):
        SeparationDataModule(_items(4), None, train_min_seconds=0.25)
