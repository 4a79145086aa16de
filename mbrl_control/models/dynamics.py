"""What the library provides around a :class:`~mbrl_control.models.base.Regressor`: a
dynamics model ``p(s' | s, a, past actions)`` in data units.

The regressor learns the change of state ``Δs = s' - s`` in normalised coordinates:
inputs ``x = norm_in([s_in, a_{t-h}, …, a_{t-1}, a_t])`` and targets ``y = norm_out(Δs)``,
both normalisers fitted on the training data and stored in the checkpoint. Callers see
data units only. The observation's layout (``ModelConfig``) is
``[learned (L) | derived (D) | goal (G)]``:

* the last ``goal_dims`` entries are the task's goal (ArmReach's target): the dynamics do
  not move it, so it is neither predicted (carried through, zero variance) nor an input —
  with one goal per episode, a few episodes of data would otherwise tie the dynamics to the
  goals seen;
* the ``derived_dims`` entries before the goal are exact functions of the learned ones that
  the task knows, computed by its ``derive`` (ArmReach's end effector is the forward
  kinematics of the joints): a model that learned them would get wrong what the URDF
  says, and feed its error back as inputs in a rollout;
* the first ``free_dims`` entries are positions the dynamics do not depend on (a runner's
  x): predicted, not inputs (``s_in`` leaves them out);
* ``bounds`` [L] (low, high), where the task knows them (an arm's joint ranges), hold the
  predicted learned entries: a model fitted on few samples near a joint limit extrapolates
  motion past it, and a planner or a policy trained through the model then pushes into the
  limit for motion that never comes;
* ``history`` past actions join the inputs: a servo that acts ``L ≤ history`` ticks late
  makes ``s'`` depend on actions already sent, which the observation cannot show. Before an
  episode's first step (and across a gap in the recording) past actions are zeros.

Three ways to query it: :meth:`DynamicsModel.predict` (the checked predictive
distribution), and for a planner's inner loop :meth:`DynamicsModel.predict_mean` and
:meth:`DynamicsModel.sample` (float32 tensors as they are, shapes checked only).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from mbrl_control import __version__
from mbrl_control.checkpoint import CheckpointError, load_torch, save_torch, source_name
from mbrl_control.config import ConfigError
from mbrl_control.data.transitions import TransitionDataset
from mbrl_control.devices import resolve_device
from mbrl_control.models.base import REGRESSORS, FitReport, ModelConfig, Prediction, Regressor
from mbrl_control.models.normalizer import Normalizer

KIND = "mbrl_control.model"


class DynamicsModel:
    """A dynamics model of a system with ``obs_dim`` observations and ``act_dim`` actions,
    made of the registered regressor ``name`` (``make_model``'s names) and its config.

    Args:
        derive: ``learned [..., L] -> derived [..., D]``, the task's function for the
            ``derived_dims`` entries (needed to predict when there are any; not saved in
            checkpoints: pass it again to :meth:`load`).
        bounds: ``(low, high)``, each [L], the range the learned entries stay in (±inf
            where unbounded); predictions are clamped into it. Saved in checkpoints.

    Attributes:
        regressor: the fitted :class:`Regressor` (E = ``members``).
        state_dim: L, the observation entries the model learns (all but derived and goal).
        history: h, past actions per input.
        dataset_size: transitions of the last fit.

    Raises:
        ValueError: an unknown model name, or ``bounds`` not [L] each, NaN, or low > high.
        ConfigError: a bad setting, or a layout that leaves nothing to predict.
    """

    def __init__(self, name: str, obs_dim: int, act_dim: int, config: ModelConfig | None = None,
                 derive: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 bounds: tuple[np.ndarray, np.ndarray] | None = None, **overrides: Any) -> None:
        if name not in REGRESSORS:
            raise ValueError(f"unknown model {name!r}; choose one of {', '.join(REGRESSORS)}")
        self.cls = REGRESSORS[name]
        self.name = self.cls.name
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.config = config = (config or self.cls.Config()).replace(**overrides)
        owner = type(config).__name__
        if config.goal_dims >= obs_dim:
            raise ConfigError(f"{owner}.goal_dims = {config.goal_dims}: must be less than obs_dim = {obs_dim}")
        self.state_dim = obs_dim - config.goal_dims - config.derived_dims
        if self.state_dim < 1:
            raise ConfigError(f"{owner}.derived_dims = {config.derived_dims}: leaves nothing to learn of obs_dim = {obs_dim} "
                              f"with goal_dims = {config.goal_dims}")
        self.derive = derive
        self.bounds = None if bounds is None else self._checked_bounds(bounds)
        if config.free_dims >= self.state_dim:
            raise ConfigError(f"{owner}.free_dims = {config.free_dims}: must be less than the {self.state_dim} predicted entries")
        self.history = config.history
        self.in_dim = self.state_dim - config.free_dims + (self.history + 1) * act_dim
        self.regressor: Regressor = self._new_regressor()
        self.input_norm: Normalizer | None = None
        self.output_norm: Normalizer | None = None
        self.dataset_size = 0

    def _checked_bounds(self, bounds: tuple[np.ndarray, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        low, high = (torch.as_tensor(np.asarray(b, dtype=np.float32)) for b in bounds)
        L = self.state_dim
        if low.shape != (L,) or high.shape != (L,):
            raise ValueError(f"bounds must be two arrays of the {L} learned entries, got shapes {list(low.shape)} and {list(high.shape)}")
        if torch.isnan(low).any() or torch.isnan(high).any() or (low > high).any():
            bad = torch.nonzero(torch.isnan(low) | torch.isnan(high) | (low > high)).flatten().tolist()
            raise ValueError(f"bounds: entries {bad} are NaN or have low > high")
        return low, high

    def _new_regressor(self) -> Regressor:
        torch.manual_seed(self.config.seed)
        return self.cls(self.in_dim, self.state_dim, self.config)

    @property
    def propagation(self) -> str:
        """How a planner uses this model's uncertainty unless told otherwise (the regressor's)."""
        return self.cls.propagation

    @property
    def members(self) -> int:
        """E: rows of :meth:`sample` are laid out in E member blocks."""
        return self.regressor.members

    @property
    def fitted(self) -> bool:
        return self.input_norm is not None

    def copy(self) -> "DynamicsModel":
        """A deep copy (regressor, normalisers) that shares ``derive``: fitting it leaves
        this model as it is."""
        return copy.deepcopy(self, memo={id(self.derive): self.derive})

    def __repr__(self) -> str:
        return f"DynamicsModel({self.name}, obs_dim={self.obs_dim}, act_dim={self.act_dim}, history={self.history})"

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, dataset: TransitionDataset, warm_start: bool | None = None) -> FitReport:
        """Fit normalisers and the regressor on ``dataset``, split at random transitions into
        training and validation parts (``config.val_fraction``): a held-out *episode* lies
        elsewhere in the state space, its loss rises from the first epoch, and early stopping
        then keeps a nearly untrained ensemble (measured on ArmReach: held-out MSE 1.02 vs
        0.31 at 200 transitions).

        Args:
            warm_start: continue from the previous fit (default ``config.warm_start``);
                the first fit always starts anew.
        """
        self._check_dims(dataset.obs_dim, dataset.act_dim, "dataset")
        cfg = self.config
        held = torch.as_tensor(dataset.validation_rows(cfg.val_fraction, np.random.default_rng(cfg.seed)))
        train = ~held
        start = time.perf_counter()
        past = dataset.action_history(self.history)
        x = self._raw_inputs(torch.as_tensor(dataset.obs), torch.as_tensor(dataset.act), torch.as_tensor(past)).float()
        dy = torch.as_tensor(dataset.next_obs[:, : self.state_dim] - dataset.obs[:, : self.state_dim], dtype=torch.float32)
        self.input_norm, self.output_norm = Normalizer.fit(x[train]), Normalizer.fit(dy[train])
        warm = self.dataset_size > 0 and (cfg.warm_start if warm_start is None else warm_start)
        if not warm:
            self.regressor = self._new_regressor()
        torch.manual_seed(cfg.seed + self.dataset_size)
        x, y = self.input_norm.normalize(x), self.output_norm.normalize(dy)
        device = resolve_device(cfg.device)[0]
        cpu_only = device.type != "cpu" and not self.cls.fits_on_device
        device = torch.device("cpu") if cpu_only else device
        self.regressor.to(device)
        try:
            report = self.regressor.fit(*(t.to(device) for t in (x[train], y[train], x[held], y[held])), warm)
        finally:  # back where planners and checkpoints expect it, whatever happened
            self.regressor.to("cpu")
        self.regressor.eval()
        if device.type != "cpu" or cpu_only:
            where = f"on the CPU: {self.name} does not fit on {cfg.device}" if cpu_only else f"fitted on {device}"
            report.notes = "; ".join(filter(None, [report.notes, where]))
        self.dataset_size = len(dataset)
        report.seconds = time.perf_counter() - start
        report.train_size, report.val_size = int(train.sum()), int(held.sum())
        return report

    # -- queries -----------------------------------------------------------------------------
    def predict(self, obs: torch.Tensor, act: torch.Tensor, past: torch.Tensor | None = None) -> Prediction:
        """Distribution of ``next_obs`` [B, obs_dim] given ``obs`` [B, obs_dim], ``act``
        [B, act_dim] and the ``past`` actions [B, history, act_dim] before ``act``, oldest
        first (None: zeros, the arm at rest). Differentiable; wrap in ``torch.no_grad()``
        when gradients are not needed.

        Raises:
            ValueError: wrong shapes or NaN/inf in the inputs.
        """
        obs, act, past = self._checked(obs, act, past)
        x = self._inputs(obs, act, past)
        mean, aleatoric, epistemic = self.regressor(x.expand(self.members, *x.shape))
        out = self.output_norm
        epistemic = mean.var(0, unbiased=False) + epistemic.mean(0)  # spread of the members' means + their own
        next_obs = self._next(obs, mean.mean(0))
        aleatoric, epistemic = out.denormalize_var(aleatoric.mean(0)), out.denormalize_var(epistemic)
        jacobian = self._derived_jacobian(next_obs)
        aleatoric, epistemic = self._pad(aleatoric, jacobian), self._pad(epistemic, jacobian)
        return Prediction(next_obs, aleatoric + epistemic, aleatoric, epistemic)

    def predict_mean(self, obs: torch.Tensor, act: torch.Tensor, past: torch.Tensor | None = None) -> torch.Tensor:
        """The mean of ``next_obs`` [B, obs_dim] only (``expectation`` propagation): unlike
        :meth:`predict` it takes float32 tensors as they are and does not scan them for
        NaN/inf (a non-finite state reaches the plan's cost, which the controller checks).
        For a GP the mean costs O(N) per row against O(N²) for the variance."""
        x = self._planning_inputs(obs, act, past)
        return self._next(obs, self.regressor(x.expand(self.members, *x.shape), variance=False)[0].mean(0))

    def sample(
        self,
        obs: torch.Tensor,
        act: torch.Tensor,
        past: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        members: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One draw of ``next_obs`` [B, obs_dim] per row (trajectory sampling), unchecked
        like :meth:`predict_mean`.

        Rows are laid out member-major by default: B divisible by E, rows
        ``[e·B/E, (e+1)·B/E)`` drawn from member e (TS∞, or TS1 after a permutation of the
        rows), and each member evaluates only its own block. A one-member model draws every
        row from its predictive distribution.

        Args:
            noise: [B, obs_dim] standard-normal draws that the predicted std scales (a
                planner passes the same draws to every candidate: common random numbers);
                drawn from ``generator`` when None.
            members: [B] the member of each row instead of blocks (every member then
                evaluates every row).
        """
        x = self._planning_inputs(obs, act, past)
        B, E = len(x), self.members
        if noise is None:
            noise = torch.randn(obs.shape, generator=generator)
        if members is None:
            if B % E:
                raise ValueError(f"member-major sampling needs a multiple of {E} rows, got {B}")
            mean, aleatoric, epistemic = self.regressor(x.view(E, B // E, -1))
            mean, var = mean.reshape(B, -1), (aleatoric + epistemic).reshape(B, -1)
        else:
            mean, aleatoric, epistemic = self.regressor(x.expand(E, *x.shape))
            rows = torch.arange(B)
            mean, var = mean[members, rows], (aleatoric + epistemic)[members, rows]
        return self._next(obs, mean + var.sqrt() * noise[:, : self.state_dim])

    def inputs(self, dataset: TransitionDataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(obs, act, past)`` float32 tensors of every transition of ``dataset``, for
        :meth:`predict` (the past actions from the dataset's episodes)."""
        as32 = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        return as32(dataset.obs), as32(dataset.act), as32(dataset.action_history(self.history))

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write a checkpoint atomically (write, then rename over ``path``)."""
        self._require_fitted()
        return save_torch(self.payload(), path)

    def payload(self) -> dict[str, Any]:
        """The checkpoint's contents."""
        return {
            "kind": f"{KIND}.{self.name}",
            "version": __version__,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "config": dataclasses.asdict(self.config),
            "input_norm": self.input_norm.state_dict(),
            "output_norm": self.output_norm.state_dict(),
            "dataset_size": self.dataset_size,
            "state": self.regressor.state(),
            "bounds": None if self.bounds is None else [b.clone() for b in self.bounds],
        }

    @classmethod
    def load(cls, source: str | Path | bytes, obs_dim: int | None = None, act_dim: int | None = None,
             derive: Callable[[torch.Tensor], torch.Tensor] | None = None) -> "DynamicsModel":
        """Load any model checkpoint (a file, or its bytes from ``/mbrl/model``); with
        ``obs_dim``/``act_dim`` given, refuse one made for other dims; ``derive`` for a model
        with derived entries.

        Raises:
            CheckpointError: unreadable, truncated, of an unknown model type or of other dims.
        """
        payload = load_torch(source, KIND)
        name = source_name(source)
        kind = str(payload["kind"]).removeprefix(f"{KIND}.")
        if kind not in REGRESSORS:
            raise CheckpointError(f"{name}: unknown model type {kind!r}")
        try:
            found = (int(payload["obs_dim"]), int(payload["act_dim"]))
            if obs_dim is not None and act_dim is not None and found != (obs_dim, act_dim):
                raise CheckpointError(f"{name}: model for obs_dim={found[0]}, act_dim={found[1]}, "
                                      f"but this system has obs_dim={obs_dim}, act_dim={act_dim}")
            model = cls(kind, *found, REGRESSORS[kind].Config(**payload["config"]), derive=derive, bounds=payload.get("bounds"))
            model.input_norm = Normalizer.from_state_dict(payload["input_norm"])
            model.output_norm = Normalizer.from_state_dict(payload["output_norm"])
            model.dataset_size = int(payload["dataset_size"])
            model.regressor.restore(payload["state"])
        except CheckpointError:
            raise
        except Exception as err:  # missing keys, wrong shapes, invalid config
            raise CheckpointError(f"{name}: inconsistent {kind} checkpoint: {err}") from None
        return model

    # -- helpers ---------------------------------------------------------------------------------
    def _check_dims(self, obs_dim: int, act_dim: int, what: str) -> None:
        if (obs_dim, act_dim) != (self.obs_dim, self.act_dim):
            raise ValueError(f"{what} has obs_dim={obs_dim}, act_dim={act_dim}; "
                             f"the model was made for obs_dim={self.obs_dim}, act_dim={self.act_dim}")

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"the {self.name} model has not been fitted yet")

    def _past(self, past: torch.Tensor | None, rows: int, like: torch.Tensor) -> torch.Tensor:
        """``past`` [B, h, A], or zeros."""
        return like.new_zeros(rows, self.history, self.act_dim) if past is None else past

    def _raw_inputs(self, obs: torch.Tensor, act: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        """``[s_in, a_{t-h}, …, a_{t-1}, a_t]`` [B, in] in data units."""
        s = obs[:, self.config.free_dims : self.state_dim]
        return torch.cat([s, past.reshape(len(obs), -1), act], dim=1)

    def _inputs(self, obs: torch.Tensor, act: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        return self.input_norm.normalize(self._raw_inputs(obs, act, past))

    def _checked(self, obs, act, past) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Float32 ``obs``, ``act``, ``past`` with shapes and finiteness checked."""
        self._require_fitted()
        obs, act = torch.as_tensor(obs, dtype=torch.float32), torch.as_tensor(act, dtype=torch.float32)
        if obs.ndim != 2 or act.ndim != 2 or obs.shape[0] != act.shape[0]:
            raise ValueError(f"obs and act must be [B, ·] with the same B, got {list(obs.shape)} and {list(act.shape)}")
        self._check_dims(obs.shape[1], act.shape[1], "input")
        past = self._past(None if past is None else torch.as_tensor(past, dtype=torch.float32), len(obs), obs)
        if past.shape != (len(obs), self.history, self.act_dim):
            raise ValueError(f"past actions must be [{len(obs)}, {self.history}, {self.act_dim}], got {list(past.shape)}")
        rows = torch.cat([obs, act, past.reshape(len(obs), -1)], dim=1)
        if not torch.isfinite(rows).all():
            bad = torch.nonzero(~torch.isfinite(rows).all(dim=1)).flatten()[:10].tolist()
            raise ValueError(f"obs/act have NaN/inf in row(s) {bad}")
        return obs, act, past

    def _planning_inputs(self, obs: torch.Tensor, act: torch.Tensor, past: torch.Tensor | None) -> torch.Tensor:
        """Normalised inputs [B, in] from float32 tensors, shapes checked only."""
        self._require_fitted()
        B = len(obs)
        past = self._past(past, B, obs)
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim or act.shape != (B, self.act_dim) or past.shape != (B, self.history, self.act_dim):
            raise ValueError(f"obs, act and past must be [B, {self.obs_dim}], [B, {self.act_dim}] and "
                             f"[B, {self.history}, {self.act_dim}], got {list(obs.shape)}, {list(act.shape)} and {list(past.shape)}")
        return self._inputs(obs, act, past)

    def _next(self, obs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``next_obs`` [B, obs_dim] from ``obs`` and a normalised change ``y`` [B, L]: the
        learned entries moved (and clamped into ``bounds``), the derived ones computed from
        them, the goal carried over."""
        L, D = self.state_dim, self.config.derived_dims
        moved = obs[:, :L] + self.output_norm.denormalize(y)
        if self.bounds is not None:  # CPU tensors, as the regressor after a fit
            moved = moved.clamp(*self.bounds)
        parts = [moved] + ([self._derived(moved)] if D else []) + ([obs[:, L + D :]] if L + D < self.obs_dim else [])
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def _derived(self, state: torch.Tensor) -> torch.Tensor:
        if self.derive is None:
            raise RuntimeError(
                f"{type(self.config).__name__}.derived_dims = {self.config.derived_dims}: observation entries "
                f"{self.state_dim}-{self.state_dim + self.config.derived_dims - 1} are computed by the task's derive function, "
                "which this model was not given (make_model/load_model(..., derive=task.derive); an arm's: ArmInterface.derive)")
        return self.derive(state)

    def _derived_jacobian(self, next_obs: torch.Tensor) -> torch.Tensor | None:
        """``∂derived/∂learned`` [B, D, L] at ``next_obs`` (None without derived entries)."""
        L, D = self.state_dim, self.config.derived_dims
        if not D:
            return None
        with torch.enable_grad():
            state = next_obs[:, :L].detach().requires_grad_(True)
            derived = self._derived(state)
            rows = [torch.autograd.grad(derived[:, i].sum(), state, retain_graph=i < D - 1)[0] for i in range(D)]
        return torch.stack(rows, dim=1)

    def _pad(self, var: torch.Tensor, jacobian: torch.Tensor | None) -> torch.Tensor:
        """A variance [B, L] of the learned entries, extended to [B, obs_dim]: the derived
        entries' by linearising ``derive`` at the mean (``Σ_j (∂d_i/∂s_j)² var_j``), zeros
        for the goal."""
        L, D = self.state_dim, self.config.derived_dims
        parts = [var]
        if jacobian is not None:
            parts.append((jacobian**2 * var.detach()[:, None, :]).sum(-1))
        if L + D < self.obs_dim:
            parts.append(var.new_zeros(len(var), self.obs_dim - L - D))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def make_model(name: str, obs_dim: int, act_dim: int, derive: Callable[[torch.Tensor], torch.Tensor] | None = None,
               bounds: tuple[np.ndarray, np.ndarray] | None = None, **overrides: Any) -> DynamicsModel:
    """A new, unfitted model: any registered regressor by name (``ensemble``/``pe``,
    ``de``, ``mlp``, ``gp``, …) with its config's ``overrides`` (``derive`` and ``bounds``:
    :class:`DynamicsModel`'s)."""
    return DynamicsModel(name, obs_dim, act_dim, derive=derive, bounds=bounds, **overrides)


def load_model(source: str | Path | bytes, obs_dim: int | None = None, act_dim: int | None = None,
               derive: Callable[[torch.Tensor], torch.Tensor] | None = None) -> DynamicsModel:
    """:meth:`DynamicsModel.load`."""
    return DynamicsModel.load(source, obs_dim, act_dim, derive)
