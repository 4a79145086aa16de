"""Policy and value networks for Box action spaces.

A Gaussian policy ``π_θ(a | s)`` outputs a mean ``μ_θ(s)`` and a standard deviation
(state-independent ``exp(log_std)`` or a state-dependent head). Its sample ``u ~ N(μ, σ²)``
is the *raw* action that the learner stores; the environment receives

* ``squash=False``: ``clip(u, low, high)``, with ``log π(u | s)`` of the unclipped sample;
* ``squash=True``: ``a = low + (tanh(u) + 1)(high - low)/2``, and ``log π(a | s) =
  log N(u; μ, σ²) - Σ log(1 - tanh²(u)) - Σ log((high - low)/2)`` (change of variables):
  the mean cannot wander outside the bounds, which clipping allows and Reacher punishes.

Observations are standardised by running statistics that live inside the module
(:class:`RunningNormalizer`), so a checkpoint carries them and evaluation and deployment
apply them without being told. For a goal-conditioned observation that ends in the achieved
goal and the goal, the networks can also be given their difference and its direction
(``relative_goal``): the last centimetres of a reach are a small difference of two inputs
that each span the workspace, which a network given only the two learns slowly.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.distributions import Normal

from mbrl_control.models.ensemble import EnsembleLinear

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU, "elu": nn.ELU}
LOG_STD_RANGE = (-20.0, 2.0)


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, activation: str, members: int = 1) -> nn.Sequential:
    """``in_dim → hidden… → out_dim``, orthogonal initialisation (√2 hidden gains). With
    ``members`` K > 1, K such networks side by side (:class:`EnsembleLinear` layers, each
    member initialised on its own): ``[K, B, in_dim] → [K, B, out_dim]``."""
    def linear(a: int, b: int) -> nn.Module:
        return nn.Linear(a, b) if members == 1 else EnsembleLinear(members, a, b)

    widths, layers = [in_dim, *hidden], []
    for a, b in zip(widths[:-1], widths[1:]):
        layer = linear(a, b)
        orthogonal_(layer.weight, math.sqrt(2))
        nn.init.zeros_(layer.bias)
        layers += [layer, ACTIVATIONS[activation]()]
    head = linear(widths[-1], out_dim)
    nn.init.zeros_(head.bias)
    layers.append(head)
    return nn.Sequential(*layers)


def orthogonal_(weight: torch.Tensor, gain: float) -> None:
    """Orthogonal initialisation of a linear layer's ``weight``: [out, in], or [K, in, out]
    for K members, each on its own."""
    with torch.no_grad():
        for matrix in weight.reshape(-1, *weight.shape[-2:]):
            nn.init.orthogonal_(matrix, gain)


class RunningNormalizer(nn.Module):
    """``z = clip((x - mean) / sqrt(var + ε), ±clip)`` with mean and variance over every
    observation seen so far (Chan et al.'s parallel update), stored as buffers."""

    def __init__(self, dim: int, clip: float = 10.0) -> None:
        super().__init__()
        self.clip = clip
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(0.0, dtype=torch.float64))
        # float32 shift and scale for the forward pass, refreshed whenever the statistics change
        self.register_buffer("_shift", torch.zeros(dim), persistent=False)
        self.register_buffer("_scale", torch.ones(dim), persistent=False)
        self.register_load_state_dict_post_hook(lambda module, _: module._refresh())

    @torch.no_grad()
    def _refresh(self) -> None:
        self._shift.copy_(self.mean)
        self._scale.copy_(torch.sqrt(self.var + 1e-8))

    @torch.no_grad()
    def reset(self) -> None:
        """Forget every observation seen: mean 0, variance 1."""
        self.mean.zero_()
        self.var.fill_(1.0)
        self.count.zero_()
        self._refresh()

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Fold a batch ``x`` [B, dim] into the statistics."""
        x = x.to(torch.float64).reshape(-1, self.mean.numel())
        n = len(x)
        if n == 0:
            return
        batch_mean, batch_var = x.mean(0), x.var(0, unbiased=False)
        total = self.count + n
        delta = batch_mean - self.mean
        self.var.copy_((self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total)
        self.mean.add_(delta * n / total)
        self.count.copy_(total)
        self._refresh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self._shift.to(x.dtype)) / self._scale.to(x.dtype)).clamp(-self.clip, self.clip)


def with_goal_difference(obs: torch.Tensor, goal_dims: int, scale: float) -> torch.Tensor:
    """``obs`` [..., D] whose last ``2 k`` entries are [achieved goal, goal] (k =
    ``goal_dims``), with the difference ``δ = goal - achieved`` [..., k] and its direction
    ``δ / (‖δ‖ + scale)`` [..., k] appended: [..., D + 2k]. k = 0: ``obs``.

    The direction is what lets a network end a reach precisely: an expert's action near the
    goal is nearly a step function of δ (a push of the same size at 2 cm as at 20 cm), which
    a network smooths into a dead band around δ = 0 when it sees only δ; the direction keeps
    its size down to about ``scale`` and fades to zero inside it."""
    if goal_dims == 0:
        return obs
    k = goal_dims
    delta = obs[..., -k:] - obs[..., -2 * k : -k]
    return torch.cat([obs, delta, delta / (torch.linalg.vector_norm(delta, dim=-1, keepdim=True) + scale)], dim=-1)


def goal_inputs(task: object, obs_dim: int) -> int:
    """The ``relative_goal`` a task's observations [obs_dim] allow: its ``goal_dims`` k
    where its ``achieved_goal(obs)`` is the observation's entries ``[-2k, -k)`` (the
    observation ends in [achieved goal, goal], as ArmReach's), else 0. The goal-conditioned
    learners (DAgger, policy search through the model, the policy trainer) default to it."""
    k = int(getattr(task, "goal_dims", 0) or 0)
    achieved = getattr(task, "achieved_goal", None)
    if k == 0 or achieved is None or 2 * k > obs_dim:
        return 0
    probe = np.arange(obs_dim, dtype=np.float64)
    try:
        return k if np.array_equal(np.asarray(achieved(probe)), probe[obs_dim - 2 * k : obs_dim - k]) else 0
    except (IndexError, TypeError, ValueError):
        return 0


class GaussianPolicy(nn.Module):
    """``π_θ(u | s) = N(μ_θ(s), diag σ_θ(s)²)`` over raw actions ``u`` [B, A].

    Args:
        low, high: the action bounds [A] (finite).
        state_dependent_std: σ from a head of the network instead of a free ``log_std``.
        squash: tanh-squash into the bounds (else clip at the environment).
        relative_goal: k > 0 for observations ending in [achieved goal, goal] of k dims
            each: the networks also see ``goal - achieved`` and its direction
            (:func:`with_goal_difference`, fading inside ``goal_scale``).
        members: K > 1 networks, each initialised on its own, whose mean output is the
            policy's ``μ(s)`` (and ``log σ(s)``): an ensemble, as behaviour cloning fits
            each member to the labels alone (:meth:`member_log_prob`).
    """

    def __init__(
        self,
        obs_dim: int,
        low: np.ndarray,
        high: np.ndarray,
        hidden: tuple[int, ...] = (64, 64),
        activation: str = "tanh",
        log_std_init: float = 0.0,
        state_dependent_std: bool = False,
        squash: bool = False,
        relative_goal: int = 0,
        goal_scale: float = 0.005,
        members: int = 1,
    ) -> None:
        super().__init__()
        if members < 1:
            raise ValueError(f"members = {members}: a policy needs at least one network")
        if not 0 <= 2 * relative_goal <= obs_dim:
            raise ValueError(f"relative_goal = {relative_goal}: needs 0 <= 2·relative_goal <= obs_dim = {obs_dim} (the observation ends in achieved goal and goal)")
        low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        if low.shape != high.shape or low.ndim != 1 or not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(low < high)):
            raise ValueError(f"action bounds must be finite [A] arrays with low < high, got {low} and {high}")
        act_dim = len(low)
        self.obs_dim, self.act_dim, self.relative_goal, self.goal_scale = obs_dim, act_dim, relative_goal, goal_scale
        self.input_dim = obs_dim + 2 * relative_goal
        self.squash, self.state_dependent_std, self.members = squash, state_dependent_std, members
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))
        self.obs_norm = RunningNormalizer(self.input_dim)
        self.net = mlp(self.input_dim, hidden, act_dim * (2 if state_dependent_std else 1), activation, members)
        orthogonal_(self.net[-1].weight, 0.01)  # start near μ = 0: small first steps
        if state_dependent_std:
            nn.init.constant_(self.net[-1].bias[..., act_dim:], log_std_init)
        else:
            self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def inputs(self, obs: torch.Tensor) -> torch.Tensor:
        """What the networks see [B, input_dim] for ``obs`` [B, obs_dim]: standardised, with
        the goal difference and direction when ``relative_goal``."""
        return self.obs_norm(with_goal_difference(obs, self.relative_goal, self.goal_scale))

    def update_obs_stats(self, obs: torch.Tensor) -> None:
        """Fold observations [B, obs_dim] into the statistics that :meth:`inputs` applies."""
        self.obs_norm.update(with_goal_difference(torch.as_tensor(obs), self.relative_goal, self.goal_scale))

    def outputs(self, obs: torch.Tensor) -> torch.Tensor:
        """Each member's raw output [K, ..., out] for ``obs`` [..., obs_dim] (K = 1: one network)."""
        x = self.inputs(obs)
        if self.members == 1:
            return self.net(x)[None]
        out = self.net(x.reshape(1, -1, x.shape[-1]).expand(self.members, -1, -1))  # [K, B, out]
        return out.reshape(self.members, *x.shape[:-1], out.shape[-1])

    def split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``μ`` and ``log σ`` (unclamped) from network outputs [..., out], each [..., A]."""
        if self.state_dependent_std:
            return out.chunk(2, dim=-1)
        return out, self.log_std.expand_as(out)

    def mean_and_log_std(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``μ(s)`` and ``log σ(s)`` (unclamped), each [B, A], for ``obs`` [B, obs_dim]: the
        members' mean."""
        return self.split(self.outputs(obs).mean(0))

    def member_log_prob(self, obs: torch.Tensor, raw_actions: torch.Tensor) -> torch.Tensor:
        """Each member's ``log π_k(a | s)`` [K, B] of ``raw_actions`` [B, A] (behaviour
        cloning fits every member to the labels on its own)."""
        mean, log_std = self.split(self.outputs(obs))
        return self._log_prob(Normal(mean, log_std.clamp(*LOG_STD_RANGE).exp(), validate_args=False), raw_actions)

    def distribution(self, obs: torch.Tensor) -> Normal:
        """``N(μ(s), σ(s)²)`` over raw actions, batch shape [B, A] for ``obs`` [B, obs_dim]."""
        mean, log_std = self.mean_and_log_std(obs)
        return Normal(mean, log_std.clamp(*LOG_STD_RANGE).exp(), validate_args=False)

    def log_prob(self, obs: torch.Tensor, raw_actions: torch.Tensor) -> torch.Tensor:
        """``log π(a | s)`` [B] of the environment action that ``raw_actions`` [B, A] give
        (with the tanh change-of-variables correction when squashing)."""
        return self._log_prob(self.distribution(obs), raw_actions)

    def _log_prob(self, dist: Normal, raw_actions: torch.Tensor) -> torch.Tensor:
        log_prob = dist.log_prob(raw_actions).sum(-1)
        if self.squash:
            # log(1 - tanh²u) = 2 (log 2 - u - softplus(-2u)), stable for large |u|
            log_det = 2.0 * (math.log(2.0) - raw_actions - nn.functional.softplus(-2.0 * raw_actions))
            log_prob = log_prob - log_det.sum(-1) - torch.log((self.high - self.low) / 2).sum()
        return log_prob

    def entropy(self, dist: Normal, raw_actions: torch.Tensor) -> torch.Tensor:
        """Entropy [B]: exact for the Gaussian; for the squashed policy the one-sample
        estimate ``-log π(a | s)`` at the sampled action."""
        return -self._log_prob(dist, raw_actions) if self.squash else dist.entropy().sum(-1)

    def to_env(self, raw_actions: torch.Tensor) -> torch.Tensor:
        """The action the environment receives for raw actions [..., A]."""
        if self.squash:
            return self.low + (torch.tanh(raw_actions) + 1.0) * (self.high - self.low) / 2
        return torch.maximum(torch.minimum(raw_actions, self.high), self.low)

    def from_env(self, actions: torch.Tensor) -> torch.Tensor:
        """Raw actions that give environment ``actions`` [..., A] (inverse of :meth:`to_env`
        inside the bounds), e.g. to score an expert's actions in behaviour cloning."""
        if not self.squash:
            return actions
        unit = (2 * (actions - self.low) / (self.high - self.low) - 1).clamp(-1 + 1e-6, 1 - 1e-6)
        return torch.atanh(unit)

    @torch.no_grad()
    def act(self, obs: np.ndarray | torch.Tensor, deterministic: bool = True) -> np.ndarray:
        """Environment action(s) for ``obs`` [obs_dim] or [B, obs_dim]: the mean (or a
        sample) passed through :meth:`to_env`. On the arm the same mean action runs as a
        numpy snapshot (:class:`~mbrl_control.policies.deployed.DeployedPolicy`)."""
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        single = x.ndim == 1
        x = x[None] if single else x
        # the mean without building a distribution
        raw = self.mean_and_log_std(x)[0] if deterministic else self.distribution(x).sample()
        action = self.to_env(raw).numpy()
        return action[0] if single else action

    def forward(self, obs: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Deterministic environment action for ``obs``: a differentiable tensor [B, A] for
        a tensor [B, obs_dim] (training through a model, cloning an expert), a numpy action
        for a numpy observation (:meth:`act`)."""
        if not isinstance(obs, torch.Tensor):
            return self.act(obs)
        return self.to_env(self.mean_and_log_std(obs)[0])  # μ only: no distribution to build


class ValueNetwork(nn.Module):
    """``V_φ(s)`` [B] for ``obs`` [B, obs_dim], on the policy's :meth:`~GaussianPolicy.inputs`
    (shared, so both see the same standardised inputs)."""

    def __init__(self, policy: GaussianPolicy, hidden: tuple[int, ...] = (64, 64), activation: str = "tanh") -> None:
        super().__init__()
        self.policy = [policy]  # a reference, not a submodule: the policy owns and saves its statistics
        self.net = mlp(policy.input_dim, hidden, 1, activation)
        nn.init.orthogonal_(self.net[-1].weight, 1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(self.policy[0].inputs(obs)).squeeze(-1)
