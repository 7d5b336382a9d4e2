"""The fraud MLP: feature vector in, fraud probability out, normalization inside the model.

Everything a raw feature vector needs before the dense layers lives in the model as
buffers, so the exported ONNX graph takes the served vector as is:

1. `log_mask` features (heavy-tailed, non-negative in training) become `log1p(max(x, 0))`;
2. all features are standardized with the training split's `mean` and `std` and clipped
   to ±`clip`;
3. two (configurable) ReLU hidden layers produce a logit;
4. `logit_offset` undoes the class-weighting prior shift (`-log(pos_weight)`), so the
   sigmoid output estimates the fraud probability at the training base rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

__all__ = ["FraudMLP", "heavy_tailed_mask"]

_HEAVY_TAIL_MAX = 100.0


def heavy_tailed_mask(x: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """Which columns get a log transform: never negative, and reaching above 100.

    Amounts, sums and seconds qualify; flags, one-hots, hours and z-scores do not.
    """
    if x.shape[0] == 0:
        return np.zeros(x.shape[1], dtype=np.bool_)
    return np.asarray((x.min(axis=0) >= 0.0) & (x.max(axis=0) > _HEAVY_TAIL_MAX))


class FraudMLP(nn.Module):
    """A small MLP scoring one float32 feature vector per row; `forward` returns [batch]."""

    mean: torch.Tensor
    std: torch.Tensor
    log_mask: torch.Tensor
    logit_offset: torch.Tensor

    def __init__(
        self,
        n_features: int,
        *,
        hidden: Sequence[int] = (64, 32),
        dropout: float = 0.0,
        clip: float = 10.0,
    ) -> None:
        super().__init__()
        if n_features < 1 or not hidden or min(hidden) < 1:
            msg = (
                "FraudMLP: expected n_features >= 1 and positive hidden sizes, "
                f"got n_features={n_features!r} hidden={tuple(hidden)!r}"
            )
            raise ValueError(msg)
        self.n_features = n_features
        self.clip = float(clip)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.register_buffer("log_mask", torch.zeros(n_features, dtype=torch.bool))
        self.register_buffer("logit_offset", torch.zeros(()))
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if dropout > 0.0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def fit_normalization(
        self, x_train: npt.NDArray[np.float32], *, log_transform: bool = True
    ) -> None:
        """Set the log mask, mean and std buffers from the training split (constant → std 1)."""
        mask = heavy_tailed_mask(x_train) if log_transform else np.zeros(x_train.shape[1], np.bool_)
        transformed = np.where(mask, np.log1p(np.maximum(x_train, 0.0)), x_train).astype(np.float64)
        mean = transformed.mean(axis=0)
        std = transformed.std(axis=0)
        std = np.where(std < 1e-6, 1.0, std)
        self.log_mask.copy_(torch.from_numpy(mask))
        self.mean.copy_(torch.from_numpy(mean.astype(np.float32)))
        self.std.copy_(torch.from_numpy(std.astype(np.float32)))

    def set_pos_weight(self, pos_weight: float) -> None:
        """Record the positive class weight used in training (prior correction at inference)."""
        self.logit_offset.fill_(-float(np.log(pos_weight)))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Raw features → clipped standardized features (the first step of `forward`)."""
        logged = torch.log1p(torch.clamp(x, min=0.0))
        z = (torch.where(self.log_mask, logged, x) - self.mean) / self.std
        return torch.clamp(z, -self.clip, self.clip)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Training logits [batch] (class-weighted: no prior correction)."""
        out: torch.Tensor = self.net(self.normalize(x)).squeeze(-1)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fraud probability [batch]."""
        return torch.sigmoid(self.logits(x) + self.logit_offset)
