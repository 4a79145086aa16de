"""Sampling-based trajectory optimisers over action sequences (seed 003 §5.2).

Each optimiser minimises any batched cost ``J(actions [N, H, A]) -> [N]`` over sequences
inside the box ``[low, high]^A`` for every step, so it is testable on known functions
alone. ``optimize`` takes an optional warm start (the previous solution shifted by one step,
:meth:`TrajectoryOptimizer.shift`) and an optional deadline (a ``time.perf_counter()``
value): iterations stop at the deadline and the best plan found so far is returned, so a
control tick is never missed because of planning. The first iteration always runs.

* Random shooting: N uniform sequences, keep the best.
* CEM: sample from a diagonal Gaussian, refit it to the ``elites`` lowest-cost samples,
  smooth with ``alpha`` (``μ ← α μ + (1 - α) μ_elites``, the same for σ²).
* MPPI: perturb the mean by ``N(0, σ²)``, average the samples with weights
  ``softmax(-(J - min J) / λ)``; the plan is that average (its cost is evaluated).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import torch

from mbrl_control.config import Config, ConfigError, param

Cost = Callable[[torch.Tensor], torch.Tensor]  # actions [N, H, A] -> cost [N]


@dataclass(frozen=True)
class OptimizerResult:
    """Best action sequence ``actions`` [H, A] found, its ``cost``, and how many
    iterations ran before convergence, the iteration limit or the deadline."""

    actions: torch.Tensor
    cost: float
    iterations: int


@dataclass(frozen=True)
class RandomShootingConfig(Config):
    population: int = param(1000, "Sequences sampled uniformly in the action bounds.", low=1, high=1_000_000)


@dataclass(frozen=True)
class CEMConfig(Config):
    population: int = param(400, "Sequences sampled per iteration.", low=2, high=1_000_000)
    elites: int = param(40, "Lowest-cost samples the sampling distribution is refitted to.", low=1, high=1_000_000)
    iterations: int = param(5, "Refits per optimisation.", low=1, high=1000)
    alpha: float = param(0.1, "Smoothing: weight of the previous mean and variance in each refit.", low=0.0, high=1.0 - 1e-9)
    initial_std: float = param(0.5, "Initial std as a fraction of the half-range of the action bounds.", low=0.0, low_exclusive=True, high=10.0)
    min_std: float = param(1e-3, "Stop refitting once every std is below this (action units).", low=0.0, high=1.0)

    def check(self) -> None:
        if self.elites > self.population:
            raise ConfigError(f"CEMConfig.elites = {self.elites}: must not exceed population = {self.population}")


@dataclass(frozen=True)
class MPPIConfig(Config):
    population: int = param(400, "Perturbed sequences per iteration.", low=1, high=1_000_000)
    iterations: int = param(1, "Updates of the mean per optimisation.", low=1, high=1000)
    temperature: float = param(0.1, "λ in the weights softmax(-(J - min J)/λ), in cost units.", low=0.0, low_exclusive=True, high=1e6)
    noise_std: float = param(0.3, "σ of the perturbations, as a fraction of the half-range of the action bounds.", low=0.0, low_exclusive=True, high=10.0)


class TrajectoryOptimizer(ABC):
    """Minimise ``cost(actions [N, H, A]) -> [N]`` over sequences of ``horizon`` steps with
    each action in ``[low, high]`` (tensors [A])."""

    def __init__(self, config: Config, horizon: int, low: torch.Tensor, high: torch.Tensor) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        low, high = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        if low.shape != high.shape or low.ndim != 1 or not torch.all(low < high):
            raise ValueError(f"action bounds must be [A] tensors with low < high, got {low} and {high}")
        self.config, self.horizon, self.low, self.high = config, horizon, low, high

    @property
    def center(self) -> torch.Tensor:
        """The middle of the action box, [A]."""
        return (self.low + self.high) / 2

    @property
    def half_range(self) -> torch.Tensor:
        return (self.high - self.low) / 2

    def initial(self) -> torch.Tensor:
        """The plan used without a warm start: the middle of the bounds, [H, A]."""
        return self.center.expand(self.horizon, -1).clone()

    def start(self, initial: torch.Tensor | None) -> torch.Tensor:
        """The search's starting plan [H, A]: the warm start, clipped, or :meth:`initial`."""
        return self.clip(initial) if initial is not None else self.initial()

    def shift(self, actions: torch.Tensor) -> torch.Tensor:
        """Warm start for the next tick: ``actions`` [H, A] advanced one step, the last
        step repeated."""
        return torch.cat([actions[1:], actions[-1:]], dim=0)

    def clip(self, actions: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(actions, self.high), self.low)

    @abstractmethod
    def optimize(
        self,
        cost: Cost,
        initial: torch.Tensor | None = None,
        deadline: float | None = None,
        generator: torch.Generator | None = None,
    ) -> OptimizerResult:
        """Search from ``initial`` [H, A] (default :meth:`initial`) until done or
        ``deadline`` (``time.perf_counter()`` seconds)."""


def _keep_going(iterations: int, limit: int, deadline: float | None) -> bool:
    """Another iteration? Always a first one; then until ``limit`` or the deadline."""
    return iterations == 0 or (iterations < limit and (deadline is None or time.perf_counter() < deadline))


class RandomShooting(TrajectoryOptimizer):
    """Guess and check: ``population`` uniform sequences, the cheapest wins."""

    def __init__(self, horizon: int, low: torch.Tensor, high: torch.Tensor, config: RandomShootingConfig | None = None, **overrides) -> None:
        super().__init__((config or RandomShootingConfig()).replace(**overrides), horizon, low, high)

    def optimize(self, cost, initial=None, deadline=None, generator=None) -> OptimizerResult:
        shape = (self.config.population, self.horizon, len(self.low))
        samples = self.low + (self.high - self.low) * torch.rand(shape, generator=generator)
        if initial is not None:  # the previous plan competes too
            samples[0] = self.clip(initial)
        costs = cost(samples)
        best = int(torch.argmin(costs))
        return OptimizerResult(samples[best], float(costs[best]), 1)


class CEM(TrajectoryOptimizer):
    """Cross-entropy method with smoothed refits and bound-aware sampling (PETS)."""

    def __init__(self, horizon: int, low: torch.Tensor, high: torch.Tensor, config: CEMConfig | None = None, **overrides) -> None:
        super().__init__((config or CEMConfig()).replace(**overrides), horizon, low, high)

    def optimize(self, cost, initial=None, deadline=None, generator=None) -> OptimizerResult:
        cfg = self.config
        mean = self.start(initial)
        var = (cfg.initial_std * self.half_range).expand_as(mean) ** 2
        best_actions, best_cost, iterations = mean, float("inf"), 0
        while _keep_going(iterations, cfg.iterations, deadline):
            # keep two standard deviations inside the bounds, so clipping rarely bites
            std = torch.minimum(var, torch.minimum(mean - self.low, self.high - mean).square() / 4).sqrt()
            noise = torch.randn((cfg.population, *mean.shape), generator=generator)
            samples = self.clip(mean + std * noise)
            costs = cost(samples)
            order = torch.argsort(costs)
            if costs[order[0]] < best_cost:
                best_cost, best_actions = float(costs[order[0]]), samples[order[0]]
            elites = samples[order[: cfg.elites]]
            mean = cfg.alpha * mean + (1 - cfg.alpha) * elites.mean(0)
            var = cfg.alpha * var + (1 - cfg.alpha) * elites.var(0, unbiased=False)
            iterations += 1
            if torch.all(var.sqrt() < cfg.min_std):
                break
        return OptimizerResult(best_actions, best_cost, iterations)


class MPPI(TrajectoryOptimizer):
    """Model-predictive path integral: cost-weighted averaging of perturbed sequences."""

    def __init__(self, horizon: int, low: torch.Tensor, high: torch.Tensor, config: MPPIConfig | None = None, **overrides) -> None:
        super().__init__((config or MPPIConfig()).replace(**overrides), horizon, low, high)

    def optimize(self, cost, initial=None, deadline=None, generator=None) -> OptimizerResult:
        cfg = self.config
        mean = self.start(initial)
        sigma = cfg.noise_std * self.half_range
        iterations = 0
        while _keep_going(iterations, cfg.iterations, deadline):
            noise = torch.randn((cfg.population, *mean.shape), generator=generator)
            samples = self.clip(mean + sigma * noise)
            costs = cost(samples)
            weights = torch.softmax(-(costs - costs.min()) / cfg.temperature, dim=0)
            mean = torch.einsum("n,nha->ha", weights, samples)  # a convex combination: inside the bounds
            iterations += 1
        return OptimizerResult(mean, float(cost(mean[None])[0]), iterations)
