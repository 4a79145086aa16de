"""A task: the reward and termination of a gymnasium environment as batched torch
functions of ``(obs, act, next_obs)``, which a planner evaluates on predicted states.

Every task is a registered class keyed by its environment id (``Task.env_id``): defining
the subclass registers it, and :func:`task_for` finds it for an env. A task reads the
environment's own weights and ranges (``ctrl_cost_weight``, ``healthy_z_range``, ``dt``, …)
from the env instance, so an env made with other keyword arguments still gets its own
reward. Where the reward needs an entry the default observation leaves out (the x position
of gymnasium's locomotion tasks), ``env_kwargs`` says how to make the env that has it, and
:func:`make_env` makes it so.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

TASKS: dict[str, type["Task"]] = {}


class Task(ABC):
    """The reward (and termination) of one gymnasium environment, batched.

    Class attributes:
        env_id: the gymnasium id the task belongs to (the registry key).
        env_kwargs: keyword arguments ``gym.make`` needs for the reward to be a function
            of the observations (checked by :meth:`check`).
        free_dims: the first this many observation entries are positions along directions
            the dynamics do not depend on (a runner's x): a dynamics model predicts them but
            does not take them as inputs, so it does not tie the dynamics to where data were
            recorded.
        goal_dims: the last this many entries are the task's goal, constant in an episode.
        derived_dims: the this many entries before the goal are :meth:`derive` of the
            others (known exactly, so a model computes them instead of learning them).
        terminates: whether :meth:`termination` can end an episode.
        history: the past actions the dynamics depend on, where the task knows it (a
            simulated task whose observation is its whole state: 0); None leaves the model's
            default (2: enough for a servo bus that acts up to two ticks late).

    Args:
        env: the environment (wrappers allowed); its constants are read from
            ``env.unwrapped``.

    Raises:
        ValueError: the env's observation lacks what the reward needs.
    """

    env_id: ClassVar[str]
    env_kwargs: ClassVar[dict[str, Any]] = {}
    free_dims: ClassVar[int] = 0
    goal_dims: ClassVar[int] = 0
    derived_dims: ClassVar[int] = 0
    history: ClassVar[int | None] = None
    terminates: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "env_id" in cls.__dict__:
            TASKS[cls.env_id] = cls

    def __init__(self, env: gym.Env) -> None:
        self.env = env.unwrapped
        self.check()

    def check(self) -> None:
        """Refuse an env made without ``env_kwargs`` (its observation lacks what the reward reads)."""
        for name, value in self.env_kwargs.items():
            if getattr(self.env, f"_{name}", value) != value:
                arguments = ", ".join(f"{k}={v!r}" for k, v in self.env_kwargs.items())
                raise ValueError(
                    f"{self.env_id}'s reward needs an env made with {arguments} "
                    f"(mbrl_control.tasks.make_env({self.env_id!r}) makes it so)"
                )

    @abstractmethod
    def reward(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """Reward [...] of transitions ``obs`` [..., obs_dim], ``act`` [..., act_dim],
        ``next_obs`` [..., obs_dim], equal to the env's."""

    def termination(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """Whether each transition ends its episode, bool [...] (never, by default)."""
        return torch.zeros(next_obs.shape[:-1], dtype=torch.bool, device=next_obs.device)

    def bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(low, high)`` [L]: where the entries a dynamics model learns (all but derived
        and goal) can be, for the model to hold its predictions in (an arm's joint ranges);
        None (the default): the task does not say."""
        return None

    def derive(self, state: torch.Tensor) -> torch.Tensor:
        """The ``derived_dims`` entries [..., D] from the entries before them [..., L]."""
        raise NotImplementedError(f"{type(self).__name__} has no derived entries")

    @property
    def termination_fn(self):
        """:meth:`termination`, or None for a task that never terminates (planners then skip it)."""
        return self.termination if self.terminates else None


def env_id(env: gym.Env) -> str | None:
    """The id ``env`` was made with, or None."""
    spec = getattr(env.unwrapped, "spec", None) or getattr(env, "spec", None)
    return None if spec is None else spec.id


def task_for(env: gym.Env) -> Task | None:
    """The registered task of ``env`` (by its id), built from its constants; None when no
    task is registered for that id."""
    found = TASKS.get(env_id(env) or "")
    return None if found is None else found(env)


def model_layout(env: gym.Env, task: Task | None) -> tuple[dict[str, Any], Any]:
    """The dynamics model's settings for ``env``'s observations (``goal_dims``,
    ``derived_dims``, ``free_dims`` and, where the task knows them, ``history`` and
    ``bounds``, from its task; else the env's own ``goal_dims``) and the ``derive`` function
    its derived entries need (or None)."""
    if task is None:
        return {"goal_dims": int(getattr(env.unwrapped, "goal_dims", 0))}, None
    layout = {"goal_dims": task.goal_dims, "derived_dims": task.derived_dims, "free_dims": task.free_dims}
    if task.history is not None:
        layout["history"] = task.history
    if (bounds := task.bounds()) is not None:
        layout["bounds"] = bounds
    return layout, task.derive if task.derived_dims else None


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make(env_id)`` with the keyword arguments its task needs (``kwargs`` add to
    them; an id without a task is made as it is)."""
    task = TASKS.get(env_id)
    return gym.make(env_id, **{**(task.env_kwargs if task else {}), **kwargs})
