"""What a model author implements: a :class:`Regressor`, a distribution over normalised
targets ``y`` [B, out] given normalised inputs ``x`` [B, in], for each of its E members.

It knows nothing of states, actions, goals or checkpoints: :class:`DynamicsModel`
(:mod:`mbrl_control.models.dynamics`) turns transitions into ``(x, y)``, normalises them,
adds the change of state back and saves the whole. A new model is one small class::

    @dataclass(frozen=True)
    class MyConfig(ModelConfig):
        width: int = param(64, "Hidden units.", low=1)

    class MyModel(Regressor):
        name = "mine"            # defining the class registers it: make_model("mine", ...)
        Config = MyConfig

        def fit(self, x, y, x_val, y_val, warm_start): ...   # -> FitReport
        def forward(self, x, variance=True): ...              # x [E, B, in] -> mean, aleatoric, epistemic [E, B, out]

A neural network model trains with :func:`mbrl_control.models.training.train_members`,
which owns epochs, minibatches, bootstrap, early stopping and the step budget.
"""

from __future__ import annotations

import contextlib
import threading
import time
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from mbrl_control.config import Config, param
from mbrl_control.devices import DEVICES

REGRESSORS: dict[str, type["Regressor"]] = {}

GOAL_DIMS = "The last this many observation entries are the task's goal: carried through unchanged, not model inputs."
DERIVED_DIMS = ("The this many observation entries before the goal are functions of the predicted ones that the task knows "
                "(ArmReach's end effector: the forward kinematics of the joints): computed, neither learned nor inputs.")
FREE_DIMS = "The first this many observation entries are positions the dynamics do not depend on (a runner's x): predicted, not model inputs."
HISTORY = ("Actions before the current one that the model takes as inputs (a servo that acts this many control ticks "
           "late needs them; the planner feeds it the actions in flight).")


@dataclass(frozen=True)
class ModelConfig(Config):
    """Settings every dynamics model has: how transitions become its inputs, its
    validation split and its seed. A model's own config derives from it."""

    history: int = param(2, HISTORY, low=0, high=16)
    goal_dims: int = param(0, GOAL_DIMS, low=0, read_only=True)
    derived_dims: int = param(0, DERIVED_DIMS, low=0, read_only=True)
    free_dims: int = param(0, FREE_DIMS, low=0, read_only=True)
    val_fraction: float = param(0.2, "Fraction of transitions held out (at random) for early stopping.", low=0.0, high=0.9)
    warm_start: bool = param(True, "A refit starts from the previous fit's weights (and hyperparameters) instead of anew.")
    seed: int = param(0, "Seed of initialisation, data split and minibatch order.", low=0)
    device: str = param("cpu", "Where fits run: cpu, cuda, or auto (cuda where there is a GPU); the fitted model always comes back to the CPU, so any planner loads it.",
                        choices=DEVICES, read_only=True)


@dataclass(frozen=True)
class Prediction:
    """Predictive distribution of ``next_obs``, each field [B, obs_dim].

    ``var = aleatoric + epistemic``: noise in the system itself, and the model's
    uncertainty about the system (the spread of the members' means plus what each member
    is unsure of; zero where a model cannot tell).
    """

    mean: torch.Tensor
    var: torch.Tensor
    aleatoric: torch.Tensor
    epistemic: torch.Tensor


@dataclass
class FitReport:
    """What one fit did. Losses are in normalised units, one per epoch (networks) or
    optimiser iteration (GPs); ``val_loss`` is empty without validation data."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epochs: int = 0
    seconds: float = 0.0
    train_size: int = 0
    val_size: int = 0
    best_epoch: int = -1
    notes: str = ""
    timed_out: bool = False  # ended by :func:`time_limited`, not by convergence or its limits


MemberOutputs = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]


class Regressor(nn.Module, metaclass=ABCMeta):
    """E members' predictive distributions of normalised targets.

    Subclasses set ``name`` (the registry key; ``aliases`` adds more), ``Config`` (a
    :class:`ModelConfig`), ``members`` (E, default 1) and ``propagation`` (the planner's
    default for the model), and implement :meth:`fit` and
    :meth:`forward`. Checkpoints hold :meth:`state`; the default is the module's
    ``state_dict``.

    Args:
        in_dim, out_dim: sizes of ``x`` and ``y``.
        config: the model's settings.
    """

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    Config: ClassVar[type[ModelConfig]]
    # how a planner uses the model's uncertainty unless told otherwise (MPCConfig.propagation
    # "model"): one of planning.propagation.PROPAGATIONS
    propagation: ClassVar[str] = "ts_inf"
    # whether fit() runs on config.device (a GPU); False: always on the CPU
    fits_on_device: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            for key in (cls.name, *cls.__dict__.get("aliases", ())):
                REGRESSORS[key] = cls

    def __init__(self, in_dim: int, out_dim: int, config: ModelConfig) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.config = in_dim, out_dim, config

    @property
    def members(self) -> int:
        """E, the number of members (1 for a single network or a GP)."""
        return 1

    @abstractmethod
    def fit(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor, warm_start: bool) -> FitReport:
        """Train on ``x`` [N, in], ``y`` [N, out] (validation ``x_val``, ``y_val`` may be
        empty). ``warm_start``: continue from the current fit rather than start anew."""

    @abstractmethod
    def forward(self, x: torch.Tensor, variance: bool = True) -> MemberOutputs:
        """Each member's prediction on its own rows: ``x`` [E, B, in] ->
        ``(mean, aleatoric, epistemic)`` each [E, B, out]; the variances may be None when
        ``variance`` is false (the planner's mean-only path)."""

    def state(self) -> dict[str, Any]:
        """What a checkpoint stores to rebuild the fitted regressor with :meth:`restore`."""
        return {"state_dict": self.state_dict()}

    def restore(self, state: dict[str, Any]) -> None:
        self.load_state_dict(state["state_dict"])
        self.eval()


class FitCancelled(RuntimeError):
    """A fit stopped because its thread was asked to (:func:`cancellable`)."""


_cancel = threading.local()


@contextlib.contextmanager
def cancellable(event: threading.Event):
    """Within the block, fits in this thread stop with :class:`FitCancelled` at their next
    optimiser step once ``event`` is set: a node shutting down mid-fit stops in
    well under a second instead of waiting for the fit. A regressor's own training loop
    calls :func:`raise_if_cancelled` at every optimiser step."""
    previous = getattr(_cancel, "event", None)
    _cancel.event = event
    try:
        yield
    finally:
        _cancel.event = previous


_limit = threading.local()


@contextlib.contextmanager
def time_limited(seconds: float):
    """Within the block, fits in this thread end early once ``seconds`` have passed (0: no
    limit), as early stopping ends them: each member at its best weights so far. A learner
    next to a running arm publishes a model every few seconds this way, and a warm-started
    fit continues where the last one stopped. Training loops ask :func:`stop_now` before
    each epoch."""
    previous = getattr(_limit, "deadline", None)
    _limit.deadline = time.monotonic() + seconds if seconds > 0 else None
    try:
        yield
    finally:
        _limit.deadline = previous


def out_of_time() -> bool:
    """Whether this thread's fit has used its time (see :func:`time_limited`)."""
    deadline = getattr(_limit, "deadline", None)
    return deadline is not None and time.monotonic() >= deadline


def stop_now(report: FitReport, done: int, unit: str) -> bool:
    """The check a training loop makes before each epoch (or optimiser iteration), ``done``
    of them so far: raises :class:`FitCancelled` if the fit was cancelled; True, with the
    report saying so, once the fit has used its time (never before the first)."""
    raise_if_cancelled()
    if not done or not out_of_time():
        return False
    report.notes = "; ".join(filter(None, [report.notes, f"stopped at the fit's time limit after {done} {unit}"]))
    report.timed_out = True
    return True


def raise_if_cancelled() -> None:
    """Raise :class:`FitCancelled` if this thread's fit was cancelled (see :func:`cancellable`)."""
    event = getattr(_cancel, "event", None)
    if event is not None and event.is_set():
        raise FitCancelled("fit cancelled")
