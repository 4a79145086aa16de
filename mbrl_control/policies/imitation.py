"""Behaviour cloning and DAgger (seed 002): distil an expert — the MPC planner — into a
policy that costs microseconds per action.

Behaviour cloning maximises ``Σ log π_θ(a* | s)`` over the expert's state-action pairs; its
policy drifts into states the expert never visited (compounding error). DAgger asks the
expert what it would have done in the states the *policy* visits and trains on the
aggregate:

    D ← expert rollouts;  π ← BC(D)
    repeat: run π, label its states s with a* = expert(s), D ← D ∪ {(s, a*)}, π ← BC(D)

Each π is a new network fitted to all of D, as the algorithm reads; continuing to train the
previous one did worse on ArmReach (20 % vs 40-70 % success on the same 16 000 labels).

For a goal-conditioned task (the observation ends in the goal) the expert can also label each
visited episode again with other goals from the task: the same states, in time order, with
the goal part replaced. A reaching policy must generalise across goals, and a few episodes
show it only a few; relabelled goals cost expert compute but no steps on the arm. Goals drawn
from the task are mostly far from where the episode went; *hindsight* goals (as in hindsight
experience replay) are places the episode reached, so the expert also labels the last
centimetres of an approach, where a reaching policy needs its precision.

What the policy needs to finish a reach is the goal's direction among its inputs
(``relative_goal``, see :func:`~mbrl_control.policies.networks.with_goal_difference`), and
labels with little planner noise: an expert with a larger sampling budget than the deployed
controller costs compute offline only.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import gymnasium as gym
import numpy as np
import torch

from mbrl_control.devices import resolve_device
from mbrl_control.models.base import raise_if_cancelled
from mbrl_control.policies.config import PolicyConfig
from mbrl_control.policies.networks import GaussianPolicy
from mbrl_control.policies.rollout import EpisodeStats, evaluate
from mbrl_control.policies.train import make_networks

Expert = Callable[[np.ndarray], np.ndarray]


def label_states(expert: Expert, obs: np.ndarray, episode: np.ndarray, reset_expert: Callable[[], None] | None = None) -> np.ndarray:
    """The expert's actions [N, A] for recorded states ``obs`` [N, obs_dim] in time order,
    ``reset_expert`` called where the ``episode`` id [N] changes (DAgger's labelling of the
    states a policy visited, here from a recording)."""
    actions = []
    for k, state in enumerate(obs):
        raise_if_cancelled()  # a node shutting down mid-round (models.cancellable)
        if reset_expert is not None and (k == 0 or episode[k] != episode[k - 1]):
            reset_expert()
        actions.append(np.asarray(expert(state), dtype=np.float64))
    return np.array(actions).reshape(len(obs), -1)


def behaviour_cloning(
    policy: GaussianPolicy,
    obs: np.ndarray,
    actions: np.ndarray,
    epochs: int = 100,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
) -> list[float]:
    """Fit ``policy`` to expert pairs (``obs`` [N, obs_dim], ``actions`` [N, A] in the
    environment's units) by maximum likelihood; the observation statistics are refitted to
    ``obs``. On ``device`` (cpu, cuda, auto), the policy back on the CPU after. Returns the
    mean negative log-likelihood per epoch."""
    x = torch.as_tensor(obs, dtype=torch.float32)
    raw = policy.from_env(torch.as_tensor(actions, dtype=torch.float32))
    policy.obs_norm.reset()
    policy.update_obs_stats(x)
    where = resolve_device(device)[0]
    try:
        policy.to(where)
        return _clone(policy, x.to(where), raw.to(where), epochs, batch_size, learning_rate, seed)
    finally:
        policy.to("cpu")


def _clone(policy: GaussianPolicy, x: torch.Tensor, raw: torch.Tensor, epochs: int, batch_size: int, learning_rate: float,
           seed: int) -> list[float]:
    """Maximum-likelihood epochs of ``policy`` on ``x`` [N, obs_dim] → ``raw`` [N, A] (its
    pre-squash actions), on their device."""
    optimizer = torch.optim.Adam(policy.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        raise_if_cancelled()
        order, total = torch.randperm(len(x), generator=generator), 0.0
        for start in range(0, len(x), batch_size):
            rows = order[start : start + batch_size].to(x.device)
            loss = -policy.log_prob(x[rows], raw[rows]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
        losses.append(total / len(x))
    return losses


@dataclass
class DaggerIteration:
    """One round: how many labelled states the policy was trained on, its evaluation, and
    the seconds the expert spent labelling."""

    labels: int
    mean_return: float
    success_rate: float | None
    expert_seconds: float
    bc_loss: float


@dataclass
class DaggerResult:
    """The distilled policy and its learning record."""

    policy: GaussianPolicy
    iterations: list[DaggerIteration] = field(default_factory=list)
    obs: np.ndarray | None = None
    actions: np.ndarray | None = None
    env_steps: int = 0


def dagger(
    env: gym.Env,
    expert: Expert,
    iterations: int = 6,
    episodes_per_iteration: int = 2,
    eval_episodes: int = 10,
    seed: int = 0,
    epochs: int = 100,
    learning_rate: float = 1e-3,
    reset_expert: Callable[[], None] | None = None,
    relabelled_goals: int = 0,
    hindsight_goals: int = 0,
    progress: bool = False,
    **network: object,
) -> DaggerResult:
    """Distil ``expert`` (obs [obs_dim] → action [A]) into a Gaussian MLP policy.

    Iteration 0 rolls out the expert (behaviour cloning data); each later iteration rolls
    out the policy's mean action and labels every visited state with the expert's action.
    ``reset_expert`` is called at each episode start (an MPC controller's warm start).
    ``relabelled_goals`` > 0 needs ``env.unwrapped.goal_dims`` and ``sample_goal()``: after
    each episode the expert labels its states again for that many goals drawn from the task.
    ``hindsight_goals`` > 0 needs ``goal_dims`` and ``achieved_goal(obs)``: the goals are
    what the episode achieved at uniformly drawn steps.

    Args:
        **network: :class:`PolicyConfig` network fields (``hidden``, ``layers``,
            ``activation``, ``squash``, ``seed``...).
    """
    cfg = PolicyConfig(seed=seed).replace(**network)
    space = env.action_space

    def new_policy(iteration: int) -> GaussianPolicy:
        torch.manual_seed(cfg.seed + iteration)
        return make_networks(env.observation_space.shape[0], space.low, space.high, cfg)[0]

    policy = new_policy(0)
    task = env.unwrapped
    goal_dims = int(getattr(task, "goal_dims", 0))
    for name, count, method in (("relabelled_goals", relabelled_goals, "sample_goal"), ("hindsight_goals", hindsight_goals, "achieved_goal")):
        if count > 0 and not (goal_dims > 0 and hasattr(task, method)):
            raise ValueError(f"{name} = {count}: {type(task).__name__} has no goal_dims and {method}() to relabel with")
    rng = np.random.default_rng(seed)
    result = DaggerResult(policy)
    all_obs: list[np.ndarray] = []
    all_actions: list[np.ndarray] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=iterations, unit="iteration", desc="DAgger", file=sys.stderr)
    episode = 0
    for iteration in range(iterations):
        expert_seconds = 0.0
        for _ in range(episodes_per_iteration):
            obs, _ = env.reset(seed=seed * 100_003 + episode)
            episode += 1
            if reset_expert is not None:
                reset_expert()
            done, visited = False, []
            while not done:
                start = time.perf_counter()
                label = np.asarray(expert(obs), dtype=np.float64)
                expert_seconds += time.perf_counter() - start
                visited.append(obs)
                all_actions.append(label)
                action = label if iteration == 0 else policy.act(obs)
                obs, _, terminated, truncated, _ = env.step(action.astype(space.dtype))
                result.env_steps += 1
                done = terminated or truncated
            all_obs += visited
            start = time.perf_counter()
            goals = [task.sample_goal() for _ in range(relabelled_goals)]
            goals += [task.achieved_goal(visited[rng.integers(len(visited))]) for _ in range(hindsight_goals)]
            for goal in goals:
                states = np.array(visited)
                states[:, -goal_dims:] = goal
                all_obs += list(states)
                all_actions += list(label_states(expert, states, np.zeros(len(states)), reset_expert))
            expert_seconds += time.perf_counter() - start
        policy = result.policy = new_policy(iteration)
        losses = behaviour_cloning(policy, np.array(all_obs), np.array(all_actions), epochs, learning_rate=learning_rate, seed=seed + iteration)
        stats: EpisodeStats = evaluate(policy, env, eval_episodes, seed=10_000_019)
        result.iterations.append(DaggerIteration(
            labels=len(all_obs), mean_return=float(np.mean(stats.returns)),
            success_rate=float(np.mean(stats.successes)) if stats.successes else None,
            expert_seconds=expert_seconds, bc_loss=losses[-1],
        ))
        if bar is not None:
            last = result.iterations[-1]
            bar.set_postfix(labels=last.labels, ret=f"{last.mean_return:.1f}",
                            success="-" if last.success_rate is None else f"{last.success_rate:.0%}")
            bar.update()
    if bar is not None:
        bar.close()
    policy.eval()
    result.obs, result.actions = np.array(all_obs), np.array(all_actions)
    return result
