"""Model-predictive control: replan every control tick through the learned model.

``act(obs)`` optimises an action sequence over the horizon from the current state
(PETS-style trajectory sampling, :mod:`mbrl_control.planning.propagation`), executes the
first action and keeps the rest, shifted by one step, as the next warm start. The
controller remembers the actions it sent (the last ``model.history`` of them) and rolls
the model through them first: on an arm whose servos act late they are still in flight
when the next plan starts. If the model yields NaN/inf, the controller returns the safe
action (zero change: hold position, for ArmReach) and forgets its warm start.

A per-tick ``time_budget`` holds whatever the model costs: it is the optimiser's deadline
(no iteration starts that would end after it), and where even the first iteration overran
it the next ticks search with fewer sequences (:meth:`TrajectoryOptimizer.scale`, by the
ratio of budget to time taken), growing back to the configured counts while ticks end
well inside the budget. A GP's prediction cost grows with its data (an exact GP on 1 000
transitions plans 3× slower than on 100), a model swap can change the cost at any tick,
and a late command costs the servo a whole control period. (Measured on ArmReach's
graph, 5 runs: shrinking the population instead of leaving out CEM's second iteration
reached fewer targets, 83 % against 89 % from episode 3 on.)

A policy can join the search (as in TD-MPC): with ``proposals`` K > 0 and a policy set
(:meth:`MPCController.set_policy`), each tick adds the policy's action sequence over the
horizon and K - 1 perturbations of it to the optimiser's first samples, chosen as those
samples are rolled out (:class:`~mbrl_control.planning.propagation.PolicyProposals`: the
policy acts on the nominal state, the mean of its sequence's particles); the plan is the
cheapest of the optimiser's and the proposals (:meth:`TrajectoryOptimizer.finish`). A good
policy lets a much smaller population plan as well.

:meth:`MPCController.label` plans along many recorded state sequences at once, each as an
episode is planned (warm starts), one cost call per iteration for all of them where the
optimiser is ``batched``: the expert labels of DAgger.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from mbrl_control.config import Config, param
from mbrl_control.models.base import raise_if_cancelled
from mbrl_control.models.dynamics import DynamicsModel
from mbrl_control.planning.optimizers import OPTIMIZERS, OptimizerResult
from mbrl_control.planning.propagation import PROPAGATIONS, PolicyProposals, RewardFn, TerminationFn, trajectory_cost
from mbrl_control.policies.deployed import DeployedPolicy
from mbrl_control.policies.networks import GaussianPolicy

MIN_SEARCH = 0.05  # the least fraction of the configured search a time budget shrinks it to


@dataclass(frozen=True)
class MPCConfig(Config):
    """Settings of the MPC controller (the optimiser has its own config)."""

    horizon: int = param(8, "Planning horizon in control ticks.", low=1, high=200)
    optimizer: str = param("cem", "Trajectory optimiser (any of planning.OPTIMIZERS).", choices=OPTIMIZERS, ros_name="optimizer.type")
    particles: int = param(5, "Rollouts per candidate sequence (rounded up to a multiple of the ensemble size; 5 = one per member).", low=1, high=1000)
    propagation: str = param("model", "How particles use the model's uncertainty; model: the model's own choice (trajectory sampling, ts_inf, for ensembles; the mean, expectation, for a GP).", choices=("model", *PROPAGATIONS))
    risk: float = param(0.0, "k in the candidate score mean - k·std over particles (k < 0: optimism, seeks what the model does not know).", low=-100.0, high=100.0)
    time_budget: float = param(0.0, "Seconds of planning per tick before the best plan so far is used; 0 = no limit.", low=0.0, high=10.0)
    seed: int = param(0, "Seed of the planner's sampling.", low=0)
    threads: int = param(1, "torch threads while planning (process-wide; 1 beats 2 on a busy 2-core computer, see benchmarks/planning_rate.py).", low=1, high=256)
    proposals: int = param(0, "Sequences from the current policy among the first samples (its rollout through the model and proposals - 1 perturbations of it); 0 = plan without the policy.", low=0, high=10_000)
    proposal_std: float = param(0.1, "Std of the perturbed proposals, as a fraction of the half-range of the action bounds.", low=0.0, high=10.0)


Policy = Callable[[torch.Tensor], torch.Tensor]  # obs [B, obs_dim] -> action [B, A] (a GaussianPolicy's mean)


class MPCController:
    """Plans with ``model`` and ``reward_fn`` for actions in ``[low, high]`` (arrays [A]).

    Attributes:
        past: [h, A] the last ``model.history`` actions sent, oldest first (zeros after a
            reset), the in-flight actions each plan starts from.
        planning_times: seconds spent in each ``act`` call.
        fallbacks: ticks on which the model produced NaN/inf and the safe action was used.
        last_result: the optimiser's result of the latest tick.
    """

    def __init__(
        self,
        model: DynamicsModel,
        reward_fn: RewardFn,
        low: np.ndarray,
        high: np.ndarray,
        config: MPCConfig | None = None,
        termination_fn: TerminationFn | None = None,
        safe_action: np.ndarray | None = None,
        optimizer_overrides: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> None:
        self.model, self.reward_fn, self.termination_fn = model, reward_fn, termination_fn
        self.low, self.high = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        zero = np.zeros(len(self.low), dtype=np.float32)
        self.safe_action = np.clip(zero if safe_action is None else np.asarray(safe_action, np.float32), low, high)
        self._plan: torch.Tensor | None = None
        self.past = torch.zeros(model.history, len(self.low))
        self.search_fraction = 1.0  # of the configured sequences per iteration, kept inside time_budget
        self.configure((config or MPCConfig()).replace(**overrides), optimizer_overrides)
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.planning_times: list[float] = []
        self.fallbacks = 0
        self.last_result: OptimizerResult | None = None
        self.policy: Policy | None = None

    def configure(self, config: MPCConfig, optimizer_overrides: dict[str, Any] | None = None) -> None:
        """Plan with new settings from the next ``act`` on (a live parameter change). The
        warm start is kept while the horizon and optimiser stay the same."""
        previous = getattr(self, "config", None)
        self.config = config
        self.optimizer = OPTIMIZERS[config.optimizer](config.horizon, self.low, self.high, **(optimizer_overrides or {}))
        self.optimizer.scale(self.search_fraction)
        if previous is None or (previous.horizon, previous.optimizer) != (config.horizon, config.optimizer):
            self._plan = None

    def reset(self) -> None:
        """Forget the warm start and the actions sent (a new episode or target)."""
        self._plan = None
        self.optimizer.reset()
        self.past = torch.zeros(self.model.history, len(self.low))

    def set_model(self, model: DynamicsModel) -> None:
        """Swap in a newly fitted model; the warm start stays useful and is kept (and the
        actions sent, as many as the new model's history takes)."""
        padded = torch.cat([torch.zeros(model.history, len(self.low)), self.past])
        self.past = padded[len(padded) - model.history :]
        self.model = model

    def set_policy(self, policy: GaussianPolicy | Policy | None) -> None:
        """Propose ``policy``'s sequences from the next tick on (``proposals`` > 0); None: stop.

        A :class:`GaussianPolicy` proposes through its numpy snapshot, taken now
        (:class:`DeployedPolicy`: the same mean action; set a policy again after training
        it further). Its forward pass runs once per model step of every tick, on one row
        per problem, where torch's per-op dispatch is most of the cost."""
        self.policy = DeployedPolicy(policy).on_tensor if isinstance(policy, GaussianPolicy) else policy

    def proposals(self, obs: torch.Tensor) -> PolicyProposals | None:
        """The policy's sequence and ``proposals`` - 1 perturbations of it, [..., K, H, A]
        for ``obs`` [..., obs_dim], chosen by the first cost call that gets them; None
        without a policy or with ``proposals`` 0."""
        count = self.config.proposals
        if self.policy is None or count == 0:
            return None
        noise = torch.randn((*obs.shape[:-1], count, self.config.horizon, len(self.low)), generator=self.generator)
        noise[..., 0, :, :] = 0.0  # the policy's own sequence
        return PolicyProposals(self.policy, self.config.proposal_std * self.optimizer.half_range * noise, self.optimizer.clip)

    def record(self, action: np.ndarray) -> None:
        """Book ``action`` [A] as the one sent this tick, for a caller that sent another
        action than :meth:`act` returned (an open-loop plan's step, a clamped command);
        :meth:`act` books its own."""
        if len(self.past):
            self.past = torch.cat([self.past[1:], torch.as_tensor(action, dtype=torch.float32).reshape(1, -1)])

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The action [A] (float32) to execute now, from observation ``obs`` [obs_dim]."""
        start = time.perf_counter()
        if torch.get_num_threads() != self.config.threads:
            torch.set_num_threads(self.config.threads)
        deadline = start + self.config.time_budget if self.config.time_budget > 0 else None
        state = torch.as_tensor(obs, dtype=torch.float32)
        result = self._search(state, self.past, self._plan, deadline)
        self.last_result = result
        if not (np.isfinite(result.cost) and torch.isfinite(result.actions).all()):
            self.fallbacks += 1
            self._plan = None
            action = self.safe_action.copy()
        else:
            self._plan = self.optimizer.shift(result.actions)
            action = result.actions[0].numpy().astype(np.float32)
        self.record(action)
        seconds = time.perf_counter() - start
        self.planning_times.append(seconds)
        self._keep_budget(seconds)
        return action

    def label(self, states: np.ndarray, sent: np.ndarray | None = None) -> np.ndarray:
        """The planner's actions [B, T, A] (float32) for ``B`` sequences of ``T`` states
        [B, T, obs_dim] in time order (recorded episodes, and copies of them with other
        goals): each sequence planned as this controller plans an episode — a cold start at
        its first state, then each plan warm-started from the last, shifted — with the
        actions in flight read from ``sent`` [B, T, A] (the actions taken at the states; None:
        the labels). The B sequences are planned together, one optimisation per step for
        all of them, where the optimiser is ``batched``, else one after another. This
        controller's own warm start and actions sent are kept (an optimiser's elites
        carried from tick to tick are not); a state whose plan is not finite gets the safe
        action and the next plan of its sequence starts cold. DAgger's expert."""
        states = torch.as_tensor(np.asarray(states), dtype=torch.float32)
        if states.ndim != 3:
            raise ValueError(f"states must be [B, T, obs_dim] (sequences in time order), got {list(states.shape)}")
        taken = None if sent is None else torch.as_tensor(np.asarray(sent), dtype=torch.float32)
        if taken is not None and taken.shape != (*states.shape[:2], len(self.low)):
            raise ValueError(f"sent must be {[*states.shape[:2], len(self.low)]}, got {list(taken.shape)}")
        labels = torch.empty((*states.shape[:2], len(self.low)))
        batched = self.optimizer.batched
        groups = [slice(0, len(states))] if batched else [slice(b, b + 1) for b in range(len(states))]
        alone = (lambda x: x) if batched else (lambda x: x[0])  # an unbatched optimiser plans one sequence, unbatched
        safe = torch.as_tensor(self.safe_action)
        for rows in groups:
            self.optimizer.reset()
            count = len(states[rows])
            plan = self.optimizer.initial().expand(count, -1, -1).clone()
            past = torch.zeros(count, self.model.history, len(self.low))
            for t in range(states.shape[1]):
                raise_if_cancelled()  # a node shutting down mid-round (models.cancellable)
                obs, sent_before = alone(states[rows, t]), alone(past)
                result = self._search(obs, sent_before, alone(plan))
                actions = result.actions.reshape(count, *plan.shape[1:])
                cost = torch.as_tensor(result.cost).reshape(count)
                finite = torch.isfinite(cost) & torch.isfinite(actions).flatten(1).all(-1)
                labels[rows, t] = torch.where(finite[:, None], actions[:, 0], safe)
                plan = torch.where(finite[:, None, None], self.optimizer.shift(actions), self.optimizer.initial())
                if self.model.history:
                    action = labels[rows, t] if taken is None else taken[rows, t]
                    past = torch.cat([past[:, 1:], action[:, None]], dim=1)
        self.optimizer.reset()
        return labels.numpy()

    def _search(self, obs: torch.Tensor, past: torch.Tensor, initial: torch.Tensor | None, deadline: float | None = None) -> OptimizerResult:
        """One optimisation from ``obs`` [..., obs_dim] with ``past`` [..., h, A] sent, from
        ``initial`` [..., H, A], the policy's proposals among its first samples."""
        proposals = self.proposals(obs)
        return self.optimizer.optimize(self._cost(obs, past, proposals), initial=initial, deadline=deadline, generator=self.generator,
                                       proposals=None if proposals is None else proposals.actions)

    def _cost(self, obs: torch.Tensor, past: torch.Tensor, proposals: PolicyProposals | None = None):
        """The planning cost from ``obs`` [..., obs_dim] with ``past`` [..., h, A] sent."""
        return trajectory_cost(self.model, obs, self.reward_fn, particles=self.config.particles, propagation=self.propagation,
                               termination_fn=self.termination_fn, risk=self.config.risk, generator=self.generator, past=past,
                               proposals=proposals)

    @property
    def propagation(self) -> str:
        """The propagation planned with: the configured one, or the model's own."""
        if self.config.propagation == "model":
            return getattr(self.model, "propagation", "ts_inf")
        return self.config.propagation

    def _keep_budget(self, seconds: float) -> None:
        """After a tick of ``seconds``: shrink the search by budget/seconds (with a margin)
        where it overran ``time_budget`` (the first iteration always runs); grow it by a
        quarter (up to the configured size) where the tick took under half the budget."""
        budget = self.config.time_budget
        if budget <= 0:
            fraction = 1.0
        elif seconds > budget:
            fraction = max(MIN_SEARCH, self.search_fraction * 0.8 * budget / seconds)
        elif seconds < 0.5 * budget:
            fraction = min(1.0, 1.25 * self.search_fraction)
        else:
            return
        if fraction != self.search_fraction:
            self.search_fraction = fraction
            self.optimizer.scale(fraction)
