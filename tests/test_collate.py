import torch

from avss.data.collate import collate_batch


def test_extra_per_item_tensors_are_stacked_and_audio_padded():
    items = [
        {"mix": torch.ones(10), "sources": torch.ones(2, 10), "enrollment": torch.full((2, 5), 1.0), "name": "a"},
        {"mix": torch.ones(8), "sources": torch.ones(2, 8), "enrollment": torch.full((2, 5), 2.0), "name": "b"},
    ]
    batch = collate_batch(items)
    assert batch["enrollment"].shape == (2, 2, 5) and float(batch["enrollment"][1, 0, 0]) == 2.0
    assert batch["mix"].shape == (2, 10) and float(batch["mix"][1, 8:].abs().sum()) == 0.0
    assert batch["lengths"].tolist() == [10, 8]
