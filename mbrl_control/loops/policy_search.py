"""Model-based policy search: a policy trained on imagined rollouts through the learned
dynamics model, started from real visited states, and evaluated in the real environment.

    D ← random episodes
    repeat:  fit the model on D
             improve π on k-step imagined rollouts from states of D (a member per rollout)
             run π in the real env, D ← D ∪ its transitions

Two ways to improve π (``method``):
  ``policy_gradient``  PPO (or any :data:`LEARNERS` algorithm) on the imagined rollouts, as
                       if the model were the environment (seed 000: "model-free
                       optimisation with a model"; MBPO-style short branches);
  ``backprop``         MBRL 2.0 (seed 000): the imagined return Σ_t r(s_t, π(s_t), s_{t+1})
                       differentiated through the reparameterised model,
                       s_{t+1} = μ_e(s_t, a_t) + σ_e(s_t, a_t) ε, into the policy's weights.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from mbrl_control.config import ConfigError
from mbrl_control.data.transitions import TransitionDataset
from mbrl_control.models import make_model, raise_if_cancelled
from mbrl_control.tasks import make_env, model_layout, task_for
from mbrl_control.models.dynamics import DynamicsModel
from mbrl_control.planning.propagation import RewardFn
from mbrl_control.policies.config import PolicyConfig
from mbrl_control.policies.networks import GaussianPolicy, goal_inputs
from mbrl_control.policies.rollout import EpisodeStats, RolloutCollector, evaluate
from mbrl_control.policies.train import LEARNERS, PolicyResult, make_networks, restore_training


GOAL_POOL = 2000  # goals drawn once per run for imagined rollouts


class ImaginedEnv(gym.vector.VectorEnv):
    """``num_envs`` rollouts through a learned model, as a gymnasium vector env.

    ``reset`` draws start states from ``start_states`` [M, obs_dim] (real observations),
    with their last ``G`` entries (the task's goal) replaced by rows of ``goals`` [K, G]
    when given: a few real episodes hold only a few goals, and a policy trained on their
    states alone learns those goals only;
    ``step`` samples ``next_obs`` from the model — each rollout keeps one ensemble member
    for its whole length (TS∞) — clipped into the observation space, and scores it with
    ``reward_fn``. A model with ``history`` h gets each rollout's last h actions (a start
    state's from ``start_past`` [M, h, A], the actions before it in its episode). A rollout
    truncates after ``horizon`` steps and restarts in the same step (``info["final_obs"]``
    holds its last state), like gymnasium's SAME_STEP autoreset.

    A fraction ``start_at_goal`` of the rollouts instead take as goal the achieved goal of
    their own start state, the observation's entries ``[-2G, -G)`` (observations ending in
    [achieved goal, goal], :func:`~mbrl_control.policies.networks.goal_inputs`): drawn goals
    alone are seldom reached within a short horizon, and a policy that never starts at its
    goal does not learn to stay there.
    """

    def __init__(self, model: DynamicsModel, reward_fn: RewardFn, start_states: np.ndarray, horizon: int,
                 num_envs: int, observation_space: gym.spaces.Box, action_space: gym.spaces.Box,
                 goals: np.ndarray | None = None, start_past: np.ndarray | None = None, start_at_goal: float = 0.0) -> None:
        self.model, self.reward_fn, self.horizon, self.start_at_goal = model, reward_fn, horizon, start_at_goal
        self.start_states = torch.as_tensor(start_states, dtype=torch.float32)
        act_dim = action_space.shape[0]
        self.start_past = (torch.zeros(len(self.start_states), model.history, act_dim) if start_past is None
                           else torch.as_tensor(start_past, dtype=torch.float32))
        self.goals = None if goals is None or len(goals) == 0 else torch.as_tensor(goals, dtype=torch.float32)
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = observation_space, action_space
        self.observation_space = gym.vector.utils.batch_space(observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(action_space, num_envs)
        self.low = torch.as_tensor(observation_space.low, dtype=torch.float32)
        self.high = torch.as_tensor(observation_space.high, dtype=torch.float32)
        self.members = model.members
        self.generator = torch.Generator()
        self.state = torch.zeros(num_envs, observation_space.shape[0])
        self.past = torch.zeros(num_envs, model.history, act_dim)
        self.member = torch.zeros(num_envs, dtype=torch.long)
        self.t = torch.zeros(num_envs, dtype=torch.long)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self.generator.manual_seed(seed)
        self._restart(torch.ones(self.num_envs, dtype=torch.bool))
        return self.state.double().numpy(), {}

    def _restart(self, rows: torch.Tensor) -> None:
        n = int(rows.sum())
        picked = torch.randint(len(self.start_states), (n,), generator=self.generator)
        starts = self.start_states[picked]
        if self.goals is not None:
            G = self.goals.shape[1]
            drawn = self.goals[torch.randint(len(self.goals), (n,), generator=self.generator)]
            at_goal = torch.rand(n, generator=self.generator) < self.start_at_goal
            starts[:, -G:] = torch.where(at_goal[:, None], starts[:, -2 * G : -G], drawn)
        self.state[rows] = starts
        self.past[rows] = self.start_past[picked]
        self.member[rows] = torch.randint(self.members, (n,), generator=self.generator)
        self.t[rows] = 0

    @torch.no_grad()
    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        act = torch.as_tensor(np.asarray(actions), dtype=torch.float32)
        next_state = self.model.sample(self.state, act, self.past, members=self.member, generator=self.generator)
        next_state = torch.maximum(torch.minimum(next_state, self.high), self.low)
        if self.model.history:
            self.past = torch.cat([self.past[:, 1:], act[:, None]], dim=1)
        rewards = self.reward_fn(self.state, act, next_state)
        self.t += 1
        truncated = self.t >= self.horizon
        self.state = next_state
        info: dict[str, Any] = {}
        if truncated.any():
            final = np.empty(self.num_envs, dtype=object)
            for n in torch.nonzero(truncated).flatten().tolist():
                final[n] = next_state[n].double().numpy()
            info = {"final_obs": final, "_final_obs": truncated.numpy()}
            self._restart(truncated)
        terminated = np.zeros(self.num_envs, dtype=bool)
        return self.state.double().numpy(), rewards.double().numpy(), terminated, truncated.numpy(), info


@dataclass
class PolicySearchResult:
    """Outcome of :func:`train_policy_in_model`: the policy, the model, the real data, and
    per iteration (real env steps so far, mean eval return, success rate or None)."""

    policy: GaussianPolicy
    model: DynamicsModel
    dataset: TransitionDataset
    curve: list[tuple[int, float, float | None]] = field(default_factory=list)
    imagined_steps: int = 0


def imagined_return(
    policy: GaussianPolicy,
    model: DynamicsModel,
    reward_fn: RewardFn,
    starts: torch.Tensor,
    noise: torch.Tensor,
    past: torch.Tensor | None = None,
) -> torch.Tensor:
    """The return [B] of the policy's mean action over ``H`` imagined steps from
    ``starts`` [B, obs_dim], differentiable in the policy's weights: the reparameterised
    model ``s_{t+1} = μ_e(s_t, a_t) + σ_e(s_t, a_t) ε_t`` with ``noise`` ε [H, B, obs_dim]
    (rows member-major, TS∞: B a multiple of the ensemble size; ``past`` [B, h, A] the
    actions before the starts)."""
    obs, total = starts, torch.zeros(len(starts), dtype=starts.dtype)
    if model.history and past is None:
        past = torch.zeros(len(starts), model.history, model.act_dim)
    for eps in noise:
        act = policy(obs)
        next_obs = model.sample(obs, act, past, eps)
        total = total + reward_fn(obs, act, next_obs)
        obs = next_obs
        if model.history:
            past = torch.cat([past[:, 1:], act[:, None]], dim=1)
    return total


def backprop_update(
    policy: GaussianPolicy,
    optimizer: torch.optim.Optimizer,
    model: DynamicsModel,
    reward_fn: RewardFn,
    starts: torch.Tensor,
    horizon: int,
    generator: torch.Generator,
    max_grad_norm: float = 0.0,
    past: torch.Tensor | None = None,
) -> float:
    """One MBRL 2.0 step: maximise the mean :func:`imagined_return` over ``horizon`` steps
    from ``starts`` [B, obs_dim] by backpropagation through the model. Returns that return."""
    noise = torch.randn((horizon, *starts.shape), generator=generator)
    loss = -imagined_return(policy, model, reward_fn, starts, noise, past).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
    optimizer.step()
    return -loss.item()


class ImaginedPolicyTrainer:
    """A policy and its learner, improved on imagined rollouts through whatever model is
    current: what :func:`train_policy_in_model` iterates and the ``pg_trainer`` node runs
    each time a model or data arrives.

    Args:
        observation_space, action_space: Box spaces of the task.
        reward_fn: the task's batched torch reward.
        method: ``policy_gradient`` (``cfg.algo`` on :class:`ImaginedEnv`) or ``backprop``
            (MBRL 2.0).
        cfg: the policy's settings; ``n_envs`` × ``n_steps`` are the imagined rollouts and
            their horizon.
        goals: [K, G] goals imagined episodes start with (None: the start states' own).
    """

    def __init__(self, observation_space: gym.spaces.Box, action_space: gym.spaces.Box, reward_fn: RewardFn,
                 method: str, cfg: PolicyConfig, goals: np.ndarray | None = None) -> None:
        if method not in ("policy_gradient", "backprop"):
            raise ConfigError(f"method = {method!r}: choose policy_gradient or backprop")
        self.observation_space, self.action_space = observation_space, action_space
        self.reward_fn, self.method, self.cfg, self.goals = reward_fn, method, cfg, goals
        torch.manual_seed(cfg.seed)
        self.policy, self.value = make_networks(observation_space.shape[0], action_space.low, action_space.high, cfg)
        self.learner = LEARNERS[cfg.algo](self.policy, self.value, cfg)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=cfg.learning_rate)  # backprop
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.rounds = 0
        self.imagined_steps = 0

    def improve(self, model: DynamicsModel, start_states: np.ndarray, updates: int, start_past: np.ndarray | None = None,
                start_at_goal: float = 0.0) -> float:
        """``updates`` policy updates on batches of ``n_envs`` × ``n_steps`` imagined steps
        from ``start_states`` [M, obs_dim] (real observations; ``start_past`` [M, h, A] the
        actions before each) through ``model``, a fraction ``start_at_goal`` of them with
        their start's achieved goal as goal (where the policy sees the goal difference,
        ``relative_goal``: the layout that names the achieved goal). Returns the mean
        imagined return of those rollouts (of the mean action, for backprop)."""
        cfg, rollouts, horizon = self.cfg, self.cfg.n_envs, self.cfg.n_steps
        at_goal = start_at_goal if self.goals is not None and cfg.relative_goal == self.goals.shape[1] else 0.0
        imagined = ImaginedEnv(model, self.reward_fn, start_states, horizon, rollouts,
                               self.observation_space, self.action_space, self.goals, start_past, at_goal)
        returns: list[float] = []
        if self.method == "policy_gradient":
            collector, stats = RolloutCollector(imagined, cfg.seed + self.rounds), EpisodeStats()
        elif cfg.normalize_obs:  # the policy's statistics from the real data
            self.policy.update_obs_stats(torch.as_tensor(start_states))
        members = model.members
        for _ in range(updates):
            raise_if_cancelled()  # a node shutting down mid-round (models.cancellable)
            if self.method == "policy_gradient":
                self.learner.update(collector.collect(self.policy, horizon, stats))
            else:
                imagined.reset(seed=int(torch.randint(2**31, (1,), generator=self.generator)))
                rows = rollouts // members * members
                starts, past = imagined.state[:rows].clone(), imagined.past[:rows].clone()
                returns.append(backprop_update(self.policy, self.optimizer, model, self.reward_fn, starts, horizon,
                                               self.generator, cfg.max_grad_norm, past))
            self.imagined_steps += rollouts * horizon
        self.rounds += 1
        if self.method == "policy_gradient":
            returns = stats.returns
        return float(np.mean(returns)) if returns else float("nan")

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint :meth:`result` was saved to (networks, observation
        statistics, optimiser states).

        Raises:
            CheckpointError: unreadable, or of another task, algorithm or bounds.
        """
        restore_training(path, self.result(), self.learner, self.observation_space.shape[0], self.action_space)

    def result(self, env_steps: int = 0) -> PolicyResult:
        """The policy as :func:`mbrl_control.policies.train.save_policy` writes it."""
        return PolicyResult(self.policy, self.value, self.cfg, env_steps=env_steps, learner_state=self.learner.state_dict())


def train_policy_in_model(
    env: gym.Env | str,
    reward_fn: RewardFn | None = None,
    model: str = "ensemble",
    method: str = "policy_gradient",
    iterations: int = 10,
    seed_episodes: int = 1,
    episodes_per_iteration: int = 1,
    updates_per_iteration: int | None = None,
    imagined_horizon: int | None = None,
    imagined_rollouts: int | None = None,
    eval_episodes: int = 10,
    seed: int = 0,
    progress: bool = False,
    model_overrides: dict[str, Any] | None = None,
    **policy_overrides: Any,
) -> PolicySearchResult:
    """Train a policy on imagined rollouts by ``method`` (``policy_gradient``: PPO, or the
    algorithm of ``algo=``; ``backprop``: MBRL 2.0).

    Each iteration fits the model on all real data, takes ``updates_per_iteration`` policy
    updates on batches of ``imagined_rollouts`` × ``imagined_horizon`` imagined steps, then
    runs ``episodes_per_iteration`` real episodes with the policy's sampled actions (new
    data) and evaluates its mean action on ``eval_episodes`` fixed-seed episodes.

    Goal-conditioned tasks (``unwrapped.goal_dims`` > 0 and ``unwrapped.sample_goal()``,
    as ArmReach) start imagined rollouts with goals drawn from the task's distribution, and
    the policy sees the goal difference where the observation ends in [achieved goal, goal]
    (``relative_goal``, :func:`~mbrl_control.policies.networks.goal_inputs`).

    Args:
        env: a gymnasium env (or id) with Box spaces.
        reward_fn: the batched torch reward; by default the env's ``unwrapped.reward_fn``.
        method: any of :data:`~mbrl_control.loops.policy_methods.POLICY_METHODS` that
            learns on imagined rollouts (``policy_gradient``, ``backprop``); its class gives
            the policy settings and the updates per iteration it defaults to.
        updates_per_iteration, imagined_horizon, imagined_rollouts: the method's
            ``updates_per_round``, ``imagined_horizon`` and ``imagined_rollouts``; None: its
            default.
        **policy_overrides: :class:`PolicyConfig` fields (``n_envs`` and ``n_steps`` are
            ``imagined_rollouts`` and ``imagined_horizon``).
    """
    if isinstance(env, str):
        env = make_env(env)
    task = task_for(env)
    reward_fn = reward_fn or (task.reward if task is not None else getattr(env.unwrapped, "reward_fn", None))
    if reward_fn is None:
        raise ValueError("no reward_fn given and no task is registered for the env (mbrl_control.tasks): "
                         "imagined rollouts need a batched torch reward")
    obs_space, act_space = env.observation_space, env.action_space
    obs_dim, act_dim = obs_space.shape[0], act_space.shape[0]
    from mbrl_control.loops.policy_methods import POLICY_METHODS  # the methods build on this module

    kind = POLICY_METHODS.get(method)
    if kind is None or kind.expert_settings is not None:
        imagined = [name for name, k in POLICY_METHODS.items() if k.expert_settings is None]
        raise ConfigError(f"method = {method!r}: policy search through a model takes one of {imagined}")
    given = {"imagined_rollouts": imagined_rollouts, "imagined_horizon": imagined_horizon, "updates_per_round": updates_per_iteration}
    settings = kind.Config().replace(**{name: value for name, value in given.items() if value is not None})
    cfg = PolicyConfig(seed=seed, relative_goal=goal_inputs(env.unwrapped, obs_dim)).replace(
        **{**kind.policy_settings(settings), **policy_overrides})
    torch.manual_seed(seed)
    layout, derive = model_layout(env, task)
    dynamics = make_model(model, obs_dim, act_dim, derive=derive, **{**layout, **(model_overrides or {}), "seed": seed})
    goals = None
    if getattr(env.unwrapped, "goal_dims", 0) and hasattr(env.unwrapped, "sample_goal"):
        env.reset(seed=seed)  # the goals come from the env's generator: seeded, not from the OS
        goals = np.array([env.unwrapped.sample_goal() for _ in range(GOAL_POOL)])
    trainer = ImaginedPolicyTrainer(obs_space, act_space, reward_fn, kind.imagined, cfg, goals)
    policy = trainer.policy
    dataset = TransitionDataset(obs_dim, act_dim)
    rng = np.random.default_rng(seed)
    episode = 0

    def run_episode(act) -> None:
        nonlocal episode
        obs, _ = env.reset(seed=seed * 1_000_003 + episode)
        done = False
        while not done:
            action = np.asarray(act(obs), dtype=act_space.dtype)
            next_obs, _, terminated, truncated, _ = env.step(action)
            dataset.append(obs, action, next_obs, episode=episode)
            obs, done = next_obs, terminated or truncated
        episode += 1

    for _ in range(seed_episodes):
        run_episode(lambda obs: rng.uniform(act_space.low, act_space.high))
    result = PolicySearchResult(policy, dynamics, dataset)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=iterations, unit="iteration", desc="policy search", file=sys.stderr)
    for iteration in range(iterations):
        dynamics.fit(dataset)
        trainer.improve(dynamics, dataset.obs, settings.updates_per_round, dataset.action_history(dynamics.history), settings.start_at_goal)
        result.imagined_steps = trainer.imagined_steps
        for _ in range(episodes_per_iteration):
            run_episode(lambda obs: policy.to_env(policy.distribution(torch.as_tensor(obs, dtype=torch.float32)[None]).sample()[0]).numpy())
        evaluation = evaluate(policy, env, eval_episodes, seed=10_000_019)
        success = float(np.mean(evaluation.successes)) if evaluation.successes else None
        result.curve.append((len(dataset), float(np.mean(evaluation.returns)), success))
        if bar is not None:
            bar.set_postfix(steps=len(dataset), ret=f"{result.curve[-1][1]:.1f}", success="-" if success is None else f"{success:.0%}")
            bar.update()
    if bar is not None:
        bar.close()
    return result
