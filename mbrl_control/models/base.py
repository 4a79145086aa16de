"""The interface every dynamics model implements.

A model learns ``p(s' | s, a)`` as a distribution over the change of state
``Δs = s' - s``, in normalised coordinates: inputs ``x = norm_in([s, a])`` and targets
``y = norm_out(Δs)``, both normalisers fitted on the training data and stored in the
checkpoint. Callers only see data units: ``predict(obs, act)`` returns the distribution of
``next_obs``.

The last ``config.goal_dims`` entries of an observation may be the task's goal (ArmReach:
the target position). The dynamics do not move it, so the model neither predicts it (it is
carried through unchanged, with zero variance) nor takes it as input: with a new goal per
episode, a few episodes of data would otherwise tie the dynamics to the goals seen.
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from mbrl_control import __version__
from mbrl_control.checkpoint import CheckpointError, load_torch, save_torch
from mbrl_control.config import Config, ConfigError
from mbrl_control.data.transitions import TransitionDataset
from mbrl_control.models.normalizer import Normalizer

KIND = "mbrl_control.model"
GOAL_DIMS = "The last this many observation entries are the task's goal: carried through unchanged, not model inputs."


@dataclass(frozen=True)
class Prediction:
    """Predictive distribution of ``next_obs``, each field [B, obs_dim].

    ``var = aleatoric + epistemic``: noise in the system itself, and the model's
    uncertainty about the system (zero where a model cannot tell them apart).
    """

    mean: torch.Tensor
    var: torch.Tensor
    aleatoric: torch.Tensor
    epistemic: torch.Tensor


@dataclass
class FitReport:
    """What one call to ``fit`` did. Losses are in normalised units, one per epoch
    (ensembles) or optimiser iteration (GPs); ``val_loss`` is empty without validation data."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epochs: int = 0
    seconds: float = 0.0
    train_size: int = 0
    val_size: int = 0
    best_epoch: int = -1
    notes: str = ""


class DynamicsModel(ABC):
    """Base of the dynamics models: normalisation, Δs targets and checkpoints.

    Subclasses set ``name`` and ``Config``, and implement ``_fit``, ``_predict``,
    ``_sample``, ``_state`` and ``_restore``.
    """

    name: ClassVar[str]
    Config: ClassVar[type[Config]]

    def __init__(self, obs_dim: int, act_dim: int, config: Config | None = None, **overrides: Any) -> None:
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.config = (config or self.Config()).replace(**overrides)
        goal_dims = self.config.goal_dims
        if goal_dims >= obs_dim:
            raise ConfigError(f"{type(self.config).__name__}.goal_dims = {goal_dims}: must be less than obs_dim = {obs_dim}")
        self.state_dim = obs_dim - goal_dims  # S: the entries the model predicts
        self.input_norm: Normalizer | None = None
        self.output_norm: Normalizer | None = None
        self.dataset_size = 0

    # -- public interface -----------------------------------------------------------------
    def fit(self, dataset: TransitionDataset) -> FitReport:
        """Fit normalisers and the model on ``dataset``, split at random transitions into
        training and validation parts (``config.val_fraction``). Measured on ArmReach: a
        held-out *episode* lies elsewhere in the state space, its loss rises from the first
        epoch, and early stopping then keeps a nearly untrained ensemble (held-out MSE 1.02
        vs 0.31 at 200 transitions)."""
        self._check_dims(dataset.obs_dim, dataset.act_dim, "dataset")
        start = time.perf_counter()
        train, val = dataset.split_rows(self.config.val_fraction, np.random.default_rng(self.config.seed))
        x, dy = self._raw_xy(train)
        self.input_norm, self.output_norm = Normalizer.fit(x), Normalizer.fit(dy)
        xv, dyv = self._raw_xy(val)
        torch.manual_seed(self.config.seed)
        report = self._fit(
            self.input_norm.normalize(x), self.output_norm.normalize(dy),
            self.input_norm.normalize(xv), self.output_norm.normalize(dyv),
        )
        self.dataset_size = len(dataset)
        report.seconds = time.perf_counter() - start
        report.train_size, report.val_size = len(train), len(val)
        return report

    def predict(self, obs: torch.Tensor, act: torch.Tensor) -> Prediction:
        """Distribution of ``next_obs`` [B, obs_dim] given ``obs`` [B, obs_dim] and
        ``act`` [B, act_dim]. Differentiable; wrap in ``torch.no_grad()`` when gradients
        are not needed."""
        obs, x = self._inputs(obs, act)
        mean, aleatoric, epistemic = self._predict(x)
        out = self.output_norm
        aleatoric, epistemic = self._pad(out.denormalize_var(aleatoric)), self._pad(out.denormalize_var(epistemic))
        return Prediction(self._next(obs, mean), aleatoric + epistemic, aleatoric, epistemic)

    def sample(
        self,
        obs: torch.Tensor,
        act: torch.Tensor,
        members: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One draw of ``next_obs`` [B, obs_dim] per row, for trajectory sampling.

        Args:
            members: [B] ensemble member of each row (ensembles only); random when None.
            generator: source of randomness, for reproducible rollouts.
        """
        obs, x = self._inputs(obs, act)
        return self._next(obs, self._sample(x, members, generator))

    def sample_member_blocks(
        self,
        obs: torch.Tensor,
        act: torch.Tensor,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Like :meth:`sample` with rows laid out member-major: B divisible by the ensemble
        size E, rows ``[e·B/E, (e+1)·B/E)`` drawn from member e (TS∞, or TS1 after a
        permutation of the rows). Each member evaluates only its own block. A model with one
        member samples every row from its predictive distribution.

        This is the planner's inner loop, so unlike :meth:`predict` it takes float32
        tensors as they are and does not scan them for NaN/inf: a non-finite state
        propagates to the output (and to the plan's cost, which the controller checks).

        Args:
            noise: [B, obs_dim] standard-normal draws that the predicted std scales (a
                planner passes the same draws to every candidate: common random numbers);
                drawn from ``generator`` when None.
        """
        x = self._planning_inputs(obs, act)
        if noise is None:
            noise = torch.randn(obs.shape, generator=generator)
        return self._next(obs, self._sample_blocks(x, noise[:, : self.state_dim]))

    def predict_mean(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """The mean of ``next_obs`` [B, obs_dim] only: the planner's inner loop for
        ``expectation`` propagation (unchecked like :meth:`sample_member_blocks`). For a GP
        the mean costs O(N) per row against O(N²) for the variance."""
        return self._next(obs, self._predict_mean(self._planning_inputs(obs, act)))

    def _predict_mean(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of normalised ``y`` [B, S]; override where it is cheaper than :meth:`_predict`."""
        return self._predict(x)[0]

    def _planning_inputs(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Normalised inputs [B, S + act_dim] from float32 tensors, shapes checked only."""
        self._require_fitted()
        if obs.ndim != 2 or act.shape != (len(obs), self.act_dim) or obs.shape[1] != self.obs_dim:
            raise ValueError(f"obs and act must be [B, {self.obs_dim}] and [B, {self.act_dim}], got {list(obs.shape)} and {list(act.shape)}")
        return self.input_norm.normalize(torch.cat([obs[:, : self.state_dim], act], dim=1))

    def _sample_blocks(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``mean + std · noise`` of normalised ``y`` [B, S] for member-major rows (``noise``
        [B, S]); one-member models draw from their predictive distribution."""
        mean, aleatoric, epistemic = self._predict(x)
        return mean + (aleatoric + epistemic).sqrt() * noise

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint atomically (write, then rename over ``path``)."""
        self._require_fitted()
        payload = {
            "kind": f"{KIND}.{self.name}",
            "version": __version__,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "config": dataclasses.asdict(self.config),
            "input_norm": self.input_norm.state_dict(),
            "output_norm": self.output_norm.state_dict(),
            "dataset_size": self.dataset_size,
            "state": self._state(),
        }
        return save_torch(payload, path)

    @classmethod
    def load(cls, path: str | Path, obs_dim: int | None = None, act_dim: int | None = None) -> "DynamicsModel":
        """Read a checkpoint of this model type (use :func:`mbrl_control.models.load_model`
        for any type). With ``obs_dim``/``act_dim`` given, a checkpoint of other dims is
        refused.

        Raises:
            CheckpointError: unreadable, truncated, of another model type or of other dims.
        """
        return cls.from_payload(load_torch(path, f"{KIND}.{cls.name}"), path, obs_dim, act_dim)

    @classmethod
    def from_payload(
        cls, payload: dict[str, Any], path: str | Path, obs_dim: int | None = None, act_dim: int | None = None
    ) -> "DynamicsModel":
        """Rebuild a model from a loaded checkpoint dict (see :meth:`load`)."""
        try:
            found = (int(payload["obs_dim"]), int(payload["act_dim"]))
            if obs_dim is not None and act_dim is not None and found != (obs_dim, act_dim):
                raise CheckpointError(
                    f"{path}: model for obs_dim={found[0]}, act_dim={found[1]}, "
                    f"but this system has obs_dim={obs_dim}, act_dim={act_dim}"
                )
            model = cls(found[0], found[1], cls.Config(**payload["config"]))
            model.input_norm = Normalizer.from_state_dict(payload["input_norm"])
            model.output_norm = Normalizer.from_state_dict(payload["output_norm"])
            model.dataset_size = int(payload["dataset_size"])
            model._restore(payload["state"])
        except CheckpointError:
            raise
        except Exception as err:  # missing keys, wrong shapes, invalid config
            raise CheckpointError(f"{path}: inconsistent {cls.name} checkpoint: {err}") from None
        return model

    # -- for subclasses ---------------------------------------------------------------------
    @abstractmethod
    def _fit(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor) -> FitReport:
        """Train on normalised ``x`` [N, in], ``y`` [N, obs_dim] (validation may be empty)."""

    @abstractmethod
    def _predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean, aleatoric and epistemic variance of normalised ``y``, each [B, obs_dim]."""

    @abstractmethod
    def _sample(self, x: torch.Tensor, members: torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor:
        """A draw of normalised ``y`` [B, obs_dim]."""

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """Tensors and plain values that :meth:`_restore` rebuilds the model from."""

    @abstractmethod
    def _restore(self, state: dict[str, Any]) -> None:
        ...

    # -- helpers ----------------------------------------------------------------------------
    def _check_dims(self, obs_dim: int, act_dim: int, what: str) -> None:
        if (obs_dim, act_dim) != (self.obs_dim, self.act_dim):
            raise ValueError(
                f"{what} has obs_dim={obs_dim}, act_dim={act_dim}; "
                f"the model was made for obs_dim={self.obs_dim}, act_dim={self.act_dim}"
            )

    def _require_fitted(self) -> None:
        if self.input_norm is None:
            raise RuntimeError(f"the {self.name} model has not been fitted yet")

    def _raw_xy(self, data: TransitionDataset) -> tuple[torch.Tensor, torch.Tensor]:
        S = self.state_dim
        x = torch.as_tensor(np.concatenate([data.obs[:, :S], data.act], axis=1), dtype=torch.float32)
        dy = torch.as_tensor(data.next_obs[:, :S] - data.obs[:, :S], dtype=torch.float32)
        return x, dy

    def _inputs(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Checked float32 ``obs`` [B, obs_dim] and normalised inputs [B, S + act_dim]."""
        self._require_fitted()
        obs = torch.as_tensor(obs, dtype=torch.float32)
        act = torch.as_tensor(act, dtype=torch.float32)
        if obs.ndim != 2 or act.ndim != 2 or obs.shape[0] != act.shape[0]:
            raise ValueError(f"obs and act must be [B, ·] with the same B, got {list(obs.shape)} and {list(act.shape)}")
        self._check_dims(obs.shape[1], act.shape[1], "input")
        x = torch.cat([obs[:, : self.state_dim], act], dim=1)
        if not torch.isfinite(x).all():
            bad = torch.nonzero(~torch.isfinite(x).all(dim=1)).flatten()[:10].tolist()
            raise ValueError(f"obs/act have NaN/inf in row(s) {bad}")
        return obs, self.input_norm.normalize(x)

    def _next(self, obs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``next_obs`` [B, obs_dim] from ``obs`` and a normalised change ``y`` [B, S]; the
        goal entries are carried over."""
        S = self.state_dim
        moved = obs[:, :S] + self.output_norm.denormalize(y)
        return moved if S == self.obs_dim else torch.cat([moved, obs[:, S:]], dim=1)

    def _pad(self, var: torch.Tensor) -> torch.Tensor:
        """Variance [B, S] extended with zeros for the goal entries: [B, obs_dim]."""
        return var if self.state_dim == self.obs_dim else torch.cat([var, var.new_zeros(len(var), self.obs_dim - self.state_dim)], 1)
