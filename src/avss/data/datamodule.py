"""LightningDataModule wrapping any train/val/test datasets that yield avss item dicts."""
from __future__ import annotations

import math

import lightning as L
from torch.utils.data import DataLoader, Dataset

from avss.data.collate import RandomLengthCollate, collate_batch


class SeparationDataModule(L.LightningDataModule):
    def __init__(self, train: Dataset | None = None, val: Dataset | None = None, test: Dataset | None = None,
                 batch_size: int = 4, val_batch_size: int | None = None, num_workers: int = 0,
                 train_min_seconds: float | None = None):
        """`train_min_seconds`: cut each training batch to a random length from this up to the dataset's crop
        (avss.data.collate.RandomLengthCollate; needs a train set with `sample_rate`); None: full crops."""
        super().__init__()
        self.train_set, self.val_set, self.test_set = train, val, test
        self.batch_size, self.num_workers = batch_size, num_workers
        self.val_batch_size = val_batch_size or batch_size
        self.train_collate = collate_batch
        if train_min_seconds is not None:
            rate = getattr(train, "sample_rate", None)
            if not rate or train_min_seconds <= 0:
                raise ValueError(f"train_min_seconds={train_min_seconds!r} needs a positive number of seconds and a "
                                 "training set with a sample_rate")
            self.train_collate = RandomLengthCollate(round(train_min_seconds * rate))

    def _loader(self, dataset, batch_size, shuffle, collate=collate_batch):
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          collate_fn=collate, persistent_workers=False, drop_last=shuffle)

    def train_dataloader(self):
        world_size = self.trainer.world_size if self.trainer is not None else 1
        per_process = math.ceil(len(self.train_set) / world_size)  # Lightning's DistributedSampler pads to equal shares
        if per_process < self.batch_size:  # incomplete batches are dropped: no step at all
            raise ValueError(f"the training set has {len(self.train_set)} items, fewer than data.batch_size="
                             f"{self.batch_size} per process ({world_size} process(es)); add data or lower "
                             "data.batch_size")
        return self._loader(self.train_set, self.batch_size, shuffle=True, collate=self.train_collate)

    def val_dataloader(self):
        return self._loader(self.val_set, self.val_batch_size, shuffle=False) if self.val_set is not None else []

    def test_dataloader(self):
        return self._loader(self.test_set, self.val_batch_size, shuffle=False) if self.test_set is not None else []
