"""A stack of residual bidirectional LSTM layers over a frame sequence [B, T, D] -> [B, T, D]."""
from __future__ import annotations

import torch
from torch import nn


class ResidualBLSTM(nn.Module):
    """x + Linear(BLSTM(x)), then LayerNorm: each layer refines the features instead of replacing them, which
    keeps deep stacks trainable at high learning rates."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.rnn = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * hidden, dim)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.norm(x + self.dropout(self.proj(out)))


class ResidualBLSTMStack(nn.Sequential):
    def __init__(self, dim: int, hidden: int, layers: int, dropout: float = 0.0):
        super().__init__(*(ResidualBLSTM(dim, hidden, dropout) for _ in range(layers)))
