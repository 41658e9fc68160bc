"""LightningDataModule wrapping any train/val/test datasets that yield avss item dicts."""
from __future__ import annotations

import math

import lightning as L
from torch.utils.data import DataLoader, Dataset

from avss.data.collate import collate_batch


class SeparationDataModule(L.LightningDataModule):
    def __init__(self, train: Dataset | None = None, val: Dataset | None = None, test: Dataset | None = None,
                 batch_size: int = 4, val_batch_size: int | None = None, num_workers: int = 0):
        super().__init__()
        self.train_set, self.val_set, self.test_set = train, val, test
        self.batch_size, self.num_workers = batch_size, num_workers
        self.val_batch_size = val_batch_size or batch_size

    def _loader(self, dataset, batch_size, shuffle):
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          collate_fn=collate_batch, persistent_workers=False, drop_last=shuffle)

    def train_dataloader(self):
        world_size = self.trainer.world_size if self.trainer is not None else 1
        per_process = math.ceil(len(self.train_set) / world_size)  # Lightning's DistributedSampler pads to equal shares
        if per_process < self.batch_size:  # incomplete batches are dropped: no step at all
            raise ValueError(f"the training set has {len(self.train_set)} items, fewer than data.batch_size="
                             f"{self.batch_size} per process ({world_size} process(es)); add data or lower "
                             "data.batch_size")
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self):
        return self._loader(self.val_set, self.val_batch_size, shuffle=False) if self.val_set is not None else []

    def test_dataloader(self):
        return self._loader(self.test_set, self.val_batch_size, shuffle=False) if self.test_set is not None else []
