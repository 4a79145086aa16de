"""Collecting on-policy batches from gymnasium's vector environments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import gymnasium as gym
import numpy as np
import torch

from mbrl_control.policies.deployed import DeployedPolicy
from mbrl_control.policies.networks import GaussianPolicy

EnvFactory = Callable[[], gym.Env]


def make_vector_env(env: str | EnvFactory, n_envs: int, seed: int) -> gym.vector.VectorEnv:
    """``n_envs`` copies of ``env`` (an id or a factory) stepping in this process, reset in
    the same step an episode ends (the final observation is in ``info["final_obs"]``).

    Raises:
        ValueError: the spaces are not Box (flat continuous observations and actions).
    """
    factory = (lambda: gym.make(env)) if isinstance(env, str) else env
    envs = gym.vector.SyncVectorEnv([factory] * n_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    for name, space in (("observation", envs.single_observation_space), ("action", envs.single_action_space)):
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            envs.close()
            raise ValueError(f"the policy-gradient trainer needs flat Box {name} spaces, got {space}")
    envs.reset(seed=seed)
    envs.action_space.seed(seed)
    return envs


@dataclass
class Batch:
    """T steps of N environments, time-major tensors.

    Attributes:
        obs, next_obs: [T, N, obs_dim]; ``next_obs`` is the final observation where an
            episode ended (not the next episode's first).
        raw_actions: [T, N, A] the policy's samples (before clipping/squashing).
        log_probs: [T, N] of the behaviour policy, filled in by the learner.
        rewards: [T, N]; terminated, ends (terminated or truncated): [T, N] bool.
        timesteps: [T, N] index of each step within its episode.
    """

    obs: torch.Tensor
    next_obs: torch.Tensor
    raw_actions: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    ends: torch.Tensor
    timesteps: torch.Tensor

    @property
    def steps(self) -> int:
        return self.rewards.numel()


@dataclass
class EpisodeStats:
    """Finished episodes: undiscounted returns, lengths, and ``info["success"]`` where the
    environment reports it."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)


class RolloutCollector:
    """Steps ``envs`` with a policy, keeping the current observations between batches."""

    def __init__(self, envs: gym.vector.VectorEnv, seed: int) -> None:
        self.envs = envs
        self.obs, _ = envs.reset(seed=seed)
        self.n = envs.num_envs
        self.timesteps = np.zeros(self.n, dtype=np.int64)
        self.running_return = np.zeros(self.n)
        self.generator = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def collect(self, policy: GaussianPolicy, n_steps: int, stats: EpisodeStats) -> Batch:
        """``n_steps`` steps of every environment with actions sampled from ``policy``;
        finished episodes are appended to ``stats``."""
        T, N, D = n_steps, self.n, self.obs.shape[-1]
        obs, next_obs = np.zeros((T, N, D)), np.zeros((T, N, D))
        raw = torch.zeros(T, N, policy.act_dim)
        rewards, terminated, ends = np.zeros((T, N)), np.zeros((T, N), bool), np.zeros((T, N), bool)
        timesteps = np.zeros((T, N), dtype=np.int64)
        for t in range(T):
            obs[t], timesteps[t] = self.obs, self.timesteps
            dist = policy.distribution(torch.as_tensor(self.obs, dtype=torch.float32))
            raw[t] = dist.mean + dist.stddev * torch.randn(dist.mean.shape, generator=self.generator)
            actions = policy.to_env(raw[t]).numpy().astype(self.envs.single_action_space.dtype)
            self.obs, rewards[t], terminated[t], truncated, info = self.envs.step(actions)
            ends[t] = terminated[t] | truncated
            next_obs[t] = self.obs
            self.running_return += rewards[t]
            self.timesteps += 1
            for n in np.flatnonzero(ends[t]):
                next_obs[t, n] = info["final_obs"][n]
                stats.returns.append(float(self.running_return[n]))
                stats.lengths.append(int(self.timesteps[n]))
                final_info = info.get("final_info", {})
                if "success" in final_info and final_info.get("_success", np.ones(N, bool))[n]:
                    stats.successes.append(bool(final_info["success"][n]))
            self.running_return[ends[t]] = 0.0
            self.timesteps[ends[t]] = 0
        as32 = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
        return Batch(
            obs=as32(obs), next_obs=as32(next_obs), raw_actions=raw, rewards=as32(rewards),
            terminated=torch.as_tensor(terminated), ends=torch.as_tensor(ends), timesteps=torch.as_tensor(timesteps),
        )


def evaluate(policy: GaussianPolicy, env: gym.Env, episodes: int, seed: int) -> EpisodeStats:
    """Returns of ``episodes`` episodes with the deterministic policy (its mean action), run
    as it is deployed (:class:`DeployedPolicy`)."""
    deployed, stats = DeployedPolicy(policy), EpisodeStats()
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        total, length, done, info = 0.0, 0, False, {}
        while not done:
            obs, reward, terminated, truncated, info = env.step(deployed.act(obs).astype(env.action_space.dtype))
            total, length, done = total + float(reward), length + 1, terminated or truncated
        stats.returns.append(total)
        stats.lengths.append(length)
        if "success" in info:
            stats.successes.append(bool(info["success"]))
    return stats
