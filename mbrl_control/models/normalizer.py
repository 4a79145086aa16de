"""Per-dimension standardisation, fitted on training data and stored with the model."""

from __future__ import annotations

import torch


class Normalizer:
    """``z = (x - mean) / std``; dimensions that never vary in the data get ``std = 1``.

    Attributes:
        mean, std: [dim] float32 tensors.
    """

    MIN_STD = 1e-6

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean, self.std = mean.float(), std.float()

    @classmethod
    def fit(cls, x: torch.Tensor) -> "Normalizer":
        """Statistics of ``x`` [N, dim]."""
        std = x.std(0, unbiased=False) if len(x) > 1 else torch.zeros(x.shape[1])
        return cls(x.mean(0), torch.where(std < cls.MIN_STD, torch.ones_like(std), std))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean

    def denormalize_var(self, var: torch.Tensor) -> torch.Tensor:
        """A variance in normalised units, in data units."""
        return var * self.std**2

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> "Normalizer":
        return cls(state["mean"], state["std"])
