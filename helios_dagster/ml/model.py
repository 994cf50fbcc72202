"""The Helios network: per-timeframe LSTM -> GRU encoders, attention across the three
timeframe tokens, a dense head with class probabilities and a trained confidence.

Input: `features` and `mask`, both (batch, timeframes, window, 30): the last `window`
feature vectors, split into timeframe blocks; `mask` is 1 where a value is valid. Input
normalisation (mean / std of valid training values) is a buffer of the model, so it is part
of the exported ONNX graph. The attention runs over three tokens (one per timeframe), so its
weights say which timeframe mattered.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from helios_core.features.spec import BLOCK, TIMEFRAMES

CLASSES = 3  # BUY, SELL, HOLD


@dataclass(frozen=True)
class Preset:
    lstm: int
    lstm_layers: int
    gru: int
    heads: int
    dense: tuple[int, ...]
    dropout: float = 0.1


PRESETS = {
    "small": Preset(lstm=32, lstm_layers=1, gru=32, heads=4, dense=(64, 32)),
    # The design's widths (PRD 8.2): LSTM 256 x 2 -> GRU 128, 8 heads, dense 512/256/128.
    "base": Preset(lstm=256, lstm_layers=2, gru=128, heads=8, dense=(512, 256, 128)),
    # The design's stated size (>= 40M parameters); its own "40M" code counts about 3M.
    "large": Preset(lstm=1024, lstm_layers=2, gru=512, heads=8, dense=(2048, 1024, 512)),
}


class TimeframeEncoder(nn.Module):
    def __init__(self, preset: Preset) -> None:
        super().__init__()
        dropout = preset.dropout if preset.lstm_layers > 1 else 0.0
        self.lstm = nn.LSTM(2 * BLOCK, preset.lstm, num_layers=preset.lstm_layers, batch_first=True, dropout=dropout)
        self.gru = nn.GRU(preset.lstm, preset.gru, batch_first=True)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(sequence)
        hidden, _ = self.gru(hidden)
        last: torch.Tensor = hidden[:, -1]
        return last


class HeliosNet(nn.Module):
    """Returns (class logits, confidence logit, attention weights per timeframe)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, preset: Preset, mean: torch.Tensor | None = None, std: torch.Tensor | None = None) -> None:
        super().__init__()
        timeframes = len(TIMEFRAMES)
        self.register_buffer("mean", mean if mean is not None else torch.zeros(timeframes, 1, BLOCK))
        self.register_buffer("std", std if std is not None else torch.ones(timeframes, 1, BLOCK))
        self.encoders = nn.ModuleList(TimeframeEncoder(preset) for _ in range(timeframes))
        self.timeframe_embedding = nn.Parameter(torch.zeros(timeframes, preset.gru))
        self.attention = nn.MultiheadAttention(preset.gru, preset.heads, dropout=preset.dropout, batch_first=True)
        layers: list[nn.Module] = []
        width = preset.gru
        for size in preset.dense:
            layers += [nn.Linear(width, size), nn.GELU(), nn.Dropout(preset.dropout)]
            width = size
        self.dense = nn.Sequential(*layers)
        self.classes = nn.Linear(width, CLASSES)
        self.confidence = nn.Linear(width, 1)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        normalised = (features - self.mean) / self.std * mask
        inputs = torch.cat([normalised, mask], dim=-1)
        tokens = torch.stack([encoder(inputs[:, i]) for i, encoder in enumerate(self.encoders)], dim=1)
        tokens = tokens + self.timeframe_embedding
        attended, weights = self.attention(tokens, tokens, tokens, need_weights=True, average_attn_weights=True)
        hidden = self.dense(attended.mean(dim=1))
        return self.classes(hidden), self.confidence(hidden).squeeze(-1), weights.mean(dim=1)


class Exported(nn.Module):
    """What ONNX gets: probabilities, confidence in [0, 1] and timeframe attention."""

    def __init__(self, net: HeliosNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, confidence, attention = self.net(features, mask)
        return torch.softmax(logits, dim=-1), torch.sigmoid(confidence), attention


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
