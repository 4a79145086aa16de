"""Sampling-based trajectory optimisers over action sequences (seed 003 §5.2).

Each optimiser minimises any batched cost ``J(actions [N, H, A]) -> [N]`` over sequences
inside the box ``[low, high]^A`` for every step, so it is testable on known functions
alone. ``optimize`` takes an optional warm start (the previous solution shifted by one step,
:meth:`TrajectoryOptimizer.shift`) and an optional deadline (a ``time.perf_counter()``
value): another iteration starts only when one as long as the longest so far would end
before it, and the best plan found so far is returned, so a control tick is not missed
because of planning. The first iteration always runs.

* Random shooting: N uniform sequences, keep the best.
* CEM: sample from a diagonal Gaussian, refit it to the ``elites`` lowest-cost samples,
  smooth with ``alpha`` (``μ ← α μ + (1 - α) μ_elites``, the same for σ²); the plan is the
  final mean (PETS), not the single best sample, whose first action carries its sampling
  noise: measured on ArmReach, the best sample jitters around the target and drifts off it.
* iCEM (Pinneri et al. 2020, "Sample-efficient cross-entropy method for real-time
  planning"): CEM whose samples are coloured noise (power spectrum ∝ 1/f^β along the
  horizon: smooth sequences, as good controls are), whose population shrinks by γ per
  iteration, which carries a fraction ξ of its elites into the next iteration and, shifted
  by a step, into the next tick, and adds its mean to the last iteration's samples. The
  paper executes the best sequence it evaluated; here the final mean by default, as CEM.
* MPPI: perturb the mean by ``N(0, σ²)``, average the samples with weights
  ``softmax(-(J - min J) / λ)``; the plan is that average (its cost is evaluated).
* Gradient shooting (seed 003, trajectory optimisation with derivatives): Adam on a batch
  of sequences through the differentiable cost, projected back into the bounds after each
  step; alone (from the warm start and random restarts) or refining CEM's best elites.

The sampling optimisers evaluate the cost under ``torch.no_grad()``; gradient shooting
needs a cost that is differentiable in the actions (:func:`trajectory_cost` is).

Every optimiser takes ``proposals`` [K, H, A]: sequences from elsewhere (a policy's, as in
TD-MPC) that join the first iteration's samples (the restarts, for gradient shooting), and
the plan returned is the cheapest of the optimiser's own plan and the proposals, by the
costs the search already has. A proposal that is the optimum is therefore the plan from
the first iteration on, and a poor one costs only its K rollouts. Proposals may be NaN
until the first cost call fills them in place, in the samples and in ``proposals``
(:class:`~mbrl_control.planning.propagation.PolicyProposals`: a policy choosing them as the
rollout goes), so the samples and ``proposals`` are read after that call.

CEM's and iCEM's plan, the mean refitted to the last elites, is not scored once more (as in
PETS): its cost is estimated by the mean cost of those elites, one cost call fewer per tick
(of three at the defaults: 2 iterations and the rescoring). MPPI scores its average, which
its samples, σ apart around it, do not estimate.

CEM also plans many problems at once (``batched``): with a cost over [B, N, H, A] → [B, N]
and a warm start [B, H, A] (or proposals [B, K, H, A]) each of the B plans gets its own
samples, elites and refits, in one cost call per iteration.
"""

from __future__ import annotations

import dataclasses
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterator

import torch

from mbrl_control.config import Config, ConfigError, param

Cost = Callable[[torch.Tensor], torch.Tensor]  # actions [N, H, A] -> cost [N]


@dataclass(frozen=True)
class OptimizerResult:
    """Best action sequence ``actions`` [H, A] found, its ``cost``, and how many
    iterations ran before convergence, the iteration limit or the deadline. ``elites``
    [K, H, A] are the best sequences of the last iteration, cheapest first (CEM). A batched
    search's are [B, H, A], a cost tensor [B] and [B, K, H, A]. ``proposed``: whether a
    proposal won (per problem, when batched)."""

    actions: torch.Tensor
    cost: float | torch.Tensor
    iterations: int
    elites: torch.Tensor | None = None
    proposed: bool | torch.Tensor = False


@dataclass(frozen=True)
class RandomShootingConfig(Config):
    population: int = param(300, "Sequences sampled uniformly in the action bounds.", low=1, high=1_000_000)


@dataclass(frozen=True)
class CEMConfig(Config):
    population: int = param(64, "Sequences sampled per iteration.", low=2, high=1_000_000)
    elites: int = param(8, "Lowest-cost samples the sampling distribution is refitted to.", low=1, high=1_000_000)
    iterations: int = param(2, "Refits per optimisation (the warm start carries the search across ticks).", low=1, high=1000)
    alpha: float = param(0.1, "Smoothing: weight of the previous mean and variance in each refit.", low=0.0, high=1.0 - 1e-9)
    initial_std: float = param(0.5, "Initial std as a fraction of the half-range of the action bounds.", low=0.0, low_exclusive=True, high=10.0)
    min_std: float = param(1e-3, "Stop refitting once every std is below this (action units).", low=0.0, high=1.0)

    def check(self) -> None:
        if self.elites > self.population:
            raise ConfigError(f"CEMConfig.elites = {self.elites}: must not exceed population = {self.population}")


@dataclass(frozen=True)
class ICEMConfig(Config):
    population: int = param(64, "Sequences sampled in the first iteration (N).", low=2, high=1_000_000)
    elites: int = param(8, "Lowest-cost samples the sampling distribution is refitted to (K).", low=1, high=1_000_000)
    iterations: int = param(3, "Refits per optimisation.", low=1, high=1000)
    decay: float = param(1.25, "γ: iteration i samples max(N·γ^-i, 2K) sequences.", low=1.0, high=10.0)
    noise_exponent: float = param(2.0, "β: the samples' power spectrum along the horizon is ∝ 1/f^β (0: white noise, CEM's).", low=0.0, high=6.0)
    keep_elites: float = param(0.3, "ξ: fraction of the elites carried into the next iteration and, shifted, into the next tick.", low=0.0, high=1.0)
    alpha: float = param(0.1, "Smoothing: weight of the previous mean and variance in each refit.", low=0.0, high=1.0 - 1e-9)
    initial_std: float = param(0.5, "Initial std as a fraction of the half-range of the action bounds.", low=0.0, low_exclusive=True, high=10.0)
    execute: str = param("mean", "The plan returned: the final mean (as CEM here) or the best sequence evaluated (the paper's; on ArmReach it jittered off the targets: 7 of 25 planned episodes within 2 cm, against 19 of 25 with the mean).", choices=("mean", "best"))

    def check(self) -> None:
        if self.elites > self.population:
            raise ConfigError(f"ICEMConfig.elites = {self.elites}: must not exceed population = {self.population}")


@dataclass(frozen=True)
class MPPIConfig(Config):
    population: int = param(128, "Perturbed sequences per iteration.", low=1, high=1_000_000)
    iterations: int = param(1, "Updates of the mean per optimisation.", low=1, high=1000)
    temperature: float = param(0.1, "λ in the weights softmax(-(J - min J)/λ), in cost units.", low=0.0, low_exclusive=True, high=1e6)
    noise_std: float = param(0.3, "σ of the perturbations, as a fraction of the half-range of the action bounds.", low=0.0, low_exclusive=True, high=10.0)


@dataclass(frozen=True)
class GradientConfig(Config):
    candidates: int = param(4, "Sequences descended in parallel: the warm start and random restarts around it.", low=1, high=100_000)
    steps: int = param(5, "Adam steps per optimisation.", low=1, high=10_000)
    learning_rate: float = param(0.1, "Adam step size, as a fraction of the half-range of the action bounds.", low=0.0, low_exclusive=True, high=10.0)
    initial_std: float = param(0.5, "Spread of the restarts around the start, as a fraction of the half-range.", low=0.0, high=10.0)


@dataclass(frozen=True)
class CEMGradientConfig(CEMConfig):
    refine_candidates: int = param(2, "CEM's final plan and best elites refined by gradient steps.", low=1, high=100_000)
    refine_steps: int = param(2, "Adam steps on the refined sequences.", low=1, high=10_000)
    learning_rate: float = param(0.05, "Adam step size, as a fraction of the half-range of the action bounds.", low=0.0, low_exclusive=True, high=10.0)

    def check(self) -> None:
        super().check()
        if self.refine_candidates > self.elites:
            raise ConfigError(
                f"CEMGradientConfig.refine_candidates = {self.refine_candidates}: must not exceed elites = {self.elites}"
            )


OPTIMIZERS: dict[str, type["TrajectoryOptimizer"]] = {}


class TrajectoryOptimizer(ABC):
    """Minimise ``cost(actions [N, H, A]) -> [N]`` over sequences of ``horizon`` steps with
    each action in ``[low, high]`` (tensors [A]).

    Subclasses set ``name`` (defining the class registers it in :data:`OPTIMIZERS`) and
    ``Config``, and implement :meth:`optimize`; settings are the config's fields, given as
    ``config`` or keyword ``overrides``."""

    name: ClassVar[str]
    Config: ClassVar[type[Config]]
    samples: ClassVar[tuple[str, ...]] = ()  # the config's counts of sequences per iteration, which :meth:`scale` shrinks
    batched: ClassVar[bool] = False  # plans [B, H, A] at once from a warm start [B, H, A]

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            OPTIMIZERS[cls.name] = cls

    def __init__(self, horizon: int, low: torch.Tensor, high: torch.Tensor, config: Config | None = None, **overrides) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        low, high = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        if low.shape != high.shape or low.ndim != 1 or not torch.all(low < high):
            raise ValueError(f"action bounds must be [A] tensors with low < high, got {low} and {high}")
        self.configured = (config or self.Config()).replace(**overrides)
        self.config, self.horizon, self.low, self.high = self.configured, horizon, low, high

    def scale(self, fraction: float) -> None:
        """Search with ``fraction`` (0, 1] of the configured sequences per iteration (the
        ``samples`` fields, each rounded and kept at or above its lower bound) from the next
        :meth:`optimize` on: what a time budget that one configured iteration overruns
        needs (:class:`mbrl_control.planning.mpc.MPCController`)."""
        fields = {f.name: f for f in dataclasses.fields(self.configured)}
        counts = {name: max(1, int(fields[name].metadata["low"] or 1), round(getattr(self.configured, name) * fraction))
                  for name in self.samples}
        self.config = self.configured.replace(**counts)

    def reset(self) -> None:
        """Forget what the search carried from tick to tick, besides the warm start (a new
        episode)."""

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
        """Warm start for the next tick: ``actions`` [..., H, A] advanced one step, the last
        step repeated."""
        return torch.cat([actions[..., 1:, :], actions[..., -1:, :]], dim=-2)

    def clip(self, actions: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(actions, self.high), self.low)

    def finish(self, plan: torch.Tensor, plan_cost: torch.Tensor, iterations: int, proposals: torch.Tensor | None = None,
               proposal_costs: torch.Tensor | None = None, elites: torch.Tensor | None = None) -> OptimizerResult:
        """The result: ``plan`` [..., H, A] of ``plan_cost`` [...], or the cheapest of
        ``proposals`` [..., K, H, A] where its cost in the search, ``proposal_costs``
        [..., K], is lower. No further cost call: a plan the search did not score (an
        average of samples) comes with the estimate it is judged by."""
        if proposals is None:
            return OptimizerResult(plan, float(plan_cost) if plan_cost.ndim == 0 else plan_cost, iterations, elites)
        best_cost, best = proposal_costs.min(dim=-1)
        proposed = best_cost < plan_cost
        chosen = torch.take_along_dim(self.clip(proposals), best[..., None, None, None], dim=-3).squeeze(-3)
        actions = torch.where(proposed[..., None, None], chosen, plan)
        cost = torch.where(proposed, best_cost, plan_cost)
        if proposed.ndim == 0:
            return OptimizerResult(actions, float(cost), iterations, elites, bool(proposed))
        return OptimizerResult(actions, cost, iterations, elites, proposed)

    @abstractmethod
    def optimize(
        self,
        cost: Cost,
        initial: torch.Tensor | None = None,
        deadline: float | None = None,
        generator: torch.Generator | None = None,
        proposals: torch.Tensor | None = None,
    ) -> OptimizerResult:
        """Search from ``initial`` [H, A] (default :meth:`initial`) until done or
        ``deadline`` (``time.perf_counter()`` seconds), with ``proposals`` [K, H, A] among
        the first samples and candidates for the plan."""


def with_proposals(samples: torch.Tensor, proposals: torch.Tensor | None, clip: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``samples`` [..., N, H, A] with the clipped ``proposals`` [..., K, H, A] after them."""
    return samples if proposals is None else torch.cat([samples, clip(proposals)], dim=-3)


def take_elites(samples: torch.Tensor, costs: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` cheapest of ``samples`` [..., N, H, A] by ``costs`` [..., N],
    cheapest first, and their costs: [..., count, H, A] and [..., count]."""
    order = torch.argsort(costs, dim=-1)[..., :count]
    return torch.take_along_dim(samples, order[..., None, None], dim=-3), torch.take_along_dim(costs, order, dim=-1)


def _iterations(limit: int, deadline: float | None) -> Iterator[int]:
    """Iteration numbers 0, 1, … below ``limit``: always a first; then another only when
    one as long as the longest so far still ends before ``deadline`` (an iteration begun
    just before it would overrun it by a whole iteration)."""
    longest = 0.0
    for iteration in range(limit):
        if iteration and deadline is not None and time.perf_counter() + longest > deadline:
            return
        start = time.perf_counter()
        yield iteration
        longest = max(longest, time.perf_counter() - start)


class RandomShooting(TrajectoryOptimizer):
    """Guess and check: ``population`` uniform sequences, the cheapest wins."""

    name = "random"
    Config = RandomShootingConfig
    samples = ("population",)

    @torch.no_grad()
    def optimize(self, cost, initial=None, deadline=None, generator=None, proposals=None) -> OptimizerResult:
        shape = (self.config.population, self.horizon, len(self.low))
        samples = self.low + (self.high - self.low) * torch.rand(shape, generator=generator)
        if initial is not None:  # the previous plan competes too
            samples[0] = self.clip(initial)
        samples = with_proposals(samples, proposals, self.clip)
        costs = cost(samples)
        best = int(torch.argmin(costs))
        return OptimizerResult(samples[best], float(costs[best]), 1, proposed=best >= self.config.population)


class CEM(TrajectoryOptimizer):
    """Cross-entropy method with smoothed refits and bound-aware sampling (PETS)."""

    name = "cem"
    Config = CEMConfig
    samples = ("population", "elites")
    batched = True

    @torch.no_grad()
    def optimize(self, cost, initial=None, deadline=None, generator=None, proposals=None) -> OptimizerResult:
        cfg = self.config
        mean = self.start(initial)  # [..., H, A]
        if proposals is not None and initial is None:
            mean = mean.expand(*proposals.shape[:-3], *mean.shape).clone()
        var = (cfg.initial_std * self.half_range).expand_as(mean) ** 2
        iterations, proposal_costs = 0, None
        for iterations in _iterations(cfg.iterations, deadline):
            # not narrowed near a bound (PETS keeps two stds inside): a mean at a bound would
            # get std 0 there, and the warm start carries it tick after tick
            std = var.sqrt()[..., None, :, :]
            noise = torch.randn((*mean.shape[:-2], cfg.population, *mean.shape[-2:]), generator=generator)
            samples = self.clip(mean[..., None, :, :] + std * noise)
            if iterations == 0:
                samples = with_proposals(samples, proposals, self.clip)
            costs = cost(samples)
            if iterations == 0 and proposals is not None:
                proposal_costs = costs[..., cfg.population :]
            elites, elite_costs = take_elites(samples, costs, cfg.elites)
            mean = cfg.alpha * mean + (1 - cfg.alpha) * elites.mean(-3)
            var = cfg.alpha * var + (1 - cfg.alpha) * elites.var(-3, unbiased=False)
            if torch.all(var.sqrt() < cfg.min_std):
                break
        # the refitted mean is not scored again (PETS): its elites' mean cost estimates its own
        return self.finish(mean, elite_costs.mean(-1), iterations + 1, proposals, proposal_costs, elites)


def colored_noise(shape: tuple[int, ...], horizon: int, exponent: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian noise [*shape, horizon] with unit variance whose power spectrum along the
    last axis is ∝ 1/f^β (β = ``exponent``; 0 is white noise, 1 pink, 2 brown): random
    Fourier coefficients scaled by f^(-β/2), transformed back (as the ``colorednoise``
    package does, with the zero frequency weighted as the lowest one, 1/horizon)."""
    frequencies = torch.fft.rfftfreq(horizon)
    frequencies[0] = 1.0 / horizon
    scale = frequencies ** (-exponent / 2)
    real = torch.randn((*shape, len(frequencies)), generator=generator) * scale
    imag = torch.randn((*shape, len(frequencies)), generator=generator) * scale
    imag[..., 0] = 0.0  # the mean of a real signal is real
    if horizon % 2 == 0:
        imag[..., -1] = 0.0  # so is the Nyquist coefficient
    # x_t = (X_0 + 2 Σ Re(X_k e^{2πikt/H}) + X_{H/2} (-1)^t) / H: Var x_t = (s_0² + 4 Σ s_k² + s_{H/2}²) / H²
    weights = torch.full_like(scale, 4.0)
    weights[0] = 1.0
    if horizon % 2 == 0:
        weights[-1] = 1.0
    std = (weights * scale**2).sum().sqrt() / horizon
    return torch.fft.irfft(torch.complex(real, imag), n=horizon) / std


class ICEM(TrajectoryOptimizer):
    """The improved cross-entropy method (iCEM); elites carried from tick to tick until
    :meth:`reset`."""

    name = "icem"
    Config = ICEMConfig
    samples = ("population", "elites")

    def __init__(self, horizon: int, low: torch.Tensor, high: torch.Tensor, config: ICEMConfig | None = None, **overrides) -> None:
        super().__init__(horizon, low, high, config, **overrides)
        self._elites: torch.Tensor | None = None  # [K, H, A] the last optimisation's, cheapest first

    def reset(self) -> None:
        self._elites = None

    def sample(self, mean: torch.Tensor, std: torch.Tensor, count: int, generator: torch.Generator | None) -> torch.Tensor:
        """``count`` sequences [count, H, A]: ``mean + std ⊙ coloured noise``, clipped."""
        noise = colored_noise((count, mean.shape[1]), self.horizon, self.config.noise_exponent, generator).transpose(1, 2)
        return self.clip(mean + std * noise)

    @torch.no_grad()
    def optimize(self, cost, initial=None, deadline=None, generator=None, proposals=None) -> OptimizerResult:
        cfg = self.config
        mean = self.start(initial)
        var = (cfg.initial_std * self.half_range).expand_as(mean) ** 2
        kept = max(1, round(cfg.keep_elites * cfg.elites)) if cfg.keep_elites > 0 else 0
        best_actions, best_cost, elites, iterations, proposal_costs = mean, torch.tensor(float("inf")), None, 0, None
        for iterations in _iterations(cfg.iterations, deadline):
            count = max(math.ceil(cfg.population * cfg.decay**-iterations), 2 * cfg.elites)
            std = var.sqrt()  # not narrowed near a bound, as CEM
            samples = [self.sample(mean, std, count, generator)]
            if iterations == 0 and self._elites is not None and kept:  # last tick's elites, a step on
                last = self.clip(mean[-1] + std[-1] * torch.randn((kept, mean.shape[1]), generator=generator))
                samples.append(torch.cat([self._elites[:kept, 1:], last[:, None]], dim=1))
            if iterations == 0 and proposals is not None:
                samples.insert(0, self.clip(proposals))  # first: their costs are costs[:K]
            elif iterations > 0 and kept:
                samples.append(elites[:kept])
            if iterations == cfg.iterations - 1:
                samples.append(mean[None])
            samples = torch.cat(samples)
            costs = cost(samples)
            if iterations == 0 and proposals is not None:
                proposal_costs = costs[: len(proposals)]
            elites, elite_costs = take_elites(samples, costs, cfg.elites)
            if elite_costs[0] < best_cost:
                best_cost, best_actions = elite_costs[0], elites[0]
            mean = cfg.alpha * mean + (1 - cfg.alpha) * elites.mean(0)
            var = cfg.alpha * var + (1 - cfg.alpha) * elites.var(0, unbiased=False)
        self._elites = elites
        if cfg.execute == "mean":  # estimated by its elites, as CEM's
            return self.finish(mean, elite_costs.mean(), iterations + 1, proposals, proposal_costs, elites)
        return self.finish(best_actions, best_cost, iterations + 1, proposals, proposal_costs, elites)


class MPPI(TrajectoryOptimizer):
    """Model-predictive path integral: cost-weighted averaging of perturbed sequences."""

    name = "mppi"
    Config = MPPIConfig
    samples = ("population",)

    @torch.no_grad()
    def optimize(self, cost, initial=None, deadline=None, generator=None, proposals=None) -> OptimizerResult:
        cfg = self.config
        mean = self.start(initial)
        sigma = cfg.noise_std * self.half_range
        iterations, proposal_costs = 0, None
        for iterations in _iterations(cfg.iterations, deadline):
            noise = torch.randn((cfg.population, *mean.shape), generator=generator)
            samples = self.clip(mean + sigma * noise)
            if iterations == 0:
                samples = with_proposals(samples, proposals, self.clip)
            costs = cost(samples)
            if iterations == 0 and proposals is not None:
                proposal_costs = costs[cfg.population :]
            weights = torch.softmax(-(costs - costs.min()) / cfg.temperature, dim=0)
            mean = torch.einsum("n,nha->ha", weights, samples)  # a convex combination: inside the bounds
        # scored once more: the samples stay σ apart around it, their costs say little of the average's
        return self.finish(mean, cost(mean[None])[0], iterations + 1, proposals, proposal_costs)


def descend(
    optimizer: TrajectoryOptimizer,
    cost: Cost,
    candidates: torch.Tensor,
    steps: int,
    learning_rate: float,
    deadline: float | None,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, float, int]:
    """Adam on ``candidates`` [K, H, A] to lower ``cost``, each step projected into the
    bounds; returns the best sequence [H, A] seen, its cost and the steps taken.

    Actions are optimised in units of the half-range, ``a = center + half_range · u`` with
    ``u ∈ [-1, 1]``. Every step reuses the same random numbers (the generator's state is
    rewound), so the particles' noise is fixed and the objective is deterministic.
    """
    center, half = optimizer.center, optimizer.half_range
    u = ((candidates - center) / half).clamp(-1, 1).requires_grad_(True)
    adam = torch.optim.Adam([u], lr=learning_rate)
    state = generator.get_state() if generator is not None else None
    best_actions, best_cost, taken = candidates[0], float("inf"), 0
    while True:
        if state is not None:
            generator.set_state(state)
        with torch.enable_grad():
            costs = cost(center + half * u)
        values = costs.detach()
        k = int(torch.argmin(values))
        if float(values[k]) < best_cost:
            best_cost, best_actions = float(values[k]), (center + half * u[k]).detach().clone()
        out_of_time = deadline is not None and time.perf_counter() >= deadline
        if taken >= steps or out_of_time or not costs.requires_grad:
            return best_actions, best_cost, taken
        (grad,) = torch.autograd.grad(costs.sum(), u)  # only the actions, never the model's weights
        u.grad = grad
        adam.step()
        with torch.no_grad():
            u.clamp_(-1, 1)
        taken += 1


class GradientShooting(TrajectoryOptimizer):
    """Adam on ``candidates`` sequences at once: the warm start and random restarts."""

    name = "gradient"
    Config = GradientConfig
    samples = ("candidates",)

    def optimize(self, cost, initial=None, deadline=None, generator=None, proposals=None) -> OptimizerResult:
        cfg = self.config
        start = self.start(initial)
        noise = torch.randn((cfg.candidates, *start.shape), generator=generator)
        noise[0] = 0.0  # the start itself is one of the candidates
        candidates = with_proposals(self.clip(start + cfg.initial_std * self.half_range * noise), proposals, self.clip)
        if proposals is not None and torch.isnan(candidates).any():  # a policy's, chosen in a rollout: before the descent
            with torch.no_grad():
                cost(candidates)
        actions, best, steps = descend(self, cost, candidates, cfg.steps, cfg.learning_rate, deadline, generator)
        return OptimizerResult(actions, best, steps)  # the proposals were among the candidates


class CEMGradient(CEM):
    """CEM, then Adam steps on its ``refine_candidates`` best elites (a sampler finds the
    basin, the gradient finishes the descent)."""

    name = "cem_gradient"
    Config = CEMGradientConfig
    samples = ("population", "elites", "refine_candidates")

    def optimize(self, cost, initial=None, deadline=None, generator=None, proposals=None) -> OptimizerResult:
        cfg = self.config
        sampled = super().optimize(cost, initial, deadline, generator, proposals)
        candidates = torch.cat([sampled.actions[None], sampled.elites[: cfg.refine_candidates - 1]])
        actions, best, steps = descend(self, cost, candidates, cfg.refine_steps, cfg.learning_rate, deadline, generator)
        # CEM's plan is the first candidate, scored on the descent's first step: the best seen may be it
        proposed = sampled.proposed and torch.equal(actions, sampled.actions)
        return OptimizerResult(actions, best, sampled.iterations + steps, sampled.elites, proposed)
