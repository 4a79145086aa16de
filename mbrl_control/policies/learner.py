"""What every policy-gradient learner shares: preparing a batch (observation statistics,
values, the behaviour policy's log-probabilities), advantages, and value regression."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.distributions import Normal

from mbrl_control.policies.advantages import gae, n_step_advantages
from mbrl_control.policies.config import PolicyConfig
from mbrl_control.policies.networks import GaussianPolicy, RunningNormalizer, ValueNetwork
from mbrl_control.policies.rollout import Batch


@dataclass
class Prepared:
    """A batch flattened to B = T·N rows, scored by the policy before the update.

    Attributes:
        obs [B, obs_dim], raw_actions [B, A], old_log_probs [B], values [B] (V(s_t)),
        old_mean, old_std [B, A] (the behaviour distribution, for KL terms);
        time-major ``values_tn`` and ``next_values_tn`` [T, N] for return computations;
        ``rewards`` [T, N]: the batch's, scaled when ``normalize_reward`` is set.
    """

    obs: torch.Tensor
    raw_actions: torch.Tensor
    old_log_probs: torch.Tensor
    values: torch.Tensor
    old_mean: torch.Tensor
    old_std: torch.Tensor
    values_tn: torch.Tensor
    next_values_tn: torch.Tensor
    rewards: torch.Tensor


def gaussian_kl(old_mean: torch.Tensor, old_std: torch.Tensor, new: Normal) -> torch.Tensor:
    """``KL(N(old) ‖ new)`` per row [B], summed over action dimensions. For a squashed
    policy this is also the KL of the squashed distributions (tanh is invertible)."""
    return torch.distributions.kl_divergence(Normal(old_mean, old_std, validate_args=False), new).sum(-1)


def standardize(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean()) / (x.std(unbiased=False) + 1e-8) if x.numel() > 1 else x - x.mean()


class Learner(ABC):
    """One policy update per on-policy :class:`Batch`.

    Observation statistics are folded in before the update: the batch is scored (its
    ``old_log_probs``, values) by the policy being improved, so that PPO's ratio starts at 1.
    """

    def __init__(self, policy: GaussianPolicy, value: ValueNetwork, config: PolicyConfig) -> None:
        self.policy, self.value, self.config = policy, value, config
        self.value_optimizer = torch.optim.Adam(value.parameters(), lr=config.value_learning_rate)
        self.generator = torch.Generator().manual_seed(config.seed + 1)
        self.return_stats = RunningNormalizer(1)  # of the discounted return R_t, for normalize_reward
        self.discounted_return = torch.zeros(0, dtype=torch.float64)  # R_t of each environment [N]

    @abstractmethod
    def update(self, batch: Batch) -> dict[str, float]:
        """Improve the policy (and value) on ``batch``; returns metrics for the log."""

    def prepare(self, batch: Batch) -> Prepared:
        T, N = batch.rewards.shape
        if self.config.normalize_obs:
            self.policy.update_obs_stats(batch.obs.flatten(0, 1))
        obs, raw = batch.obs.flatten(0, 1), batch.raw_actions.flatten(0, 1)
        with torch.no_grad():
            dist = self.policy.distribution(obs)
            values = self.value(obs)
            next_values = self.value(batch.next_obs.flatten(0, 1))
            log_probs = self.policy._log_prob(dist, raw)
        rewards = self.scale_rewards(batch) if self.config.normalize_reward else batch.rewards
        return Prepared(obs, raw, log_probs, values, dist.mean, dist.stddev, values.view(T, N), next_values.view(T, N), rewards)

    def scale_rewards(self, batch: Batch) -> torch.Tensor:
        """Rewards [T, N] divided by the running standard deviation of the discounted return
        ``R_t = γ R_{t-1} + r_t`` (restarted at episode ends, carried across batches), clipped
        to ±10. Only the scale changes, so the optimal policy does not."""
        T, N = batch.rewards.shape
        if len(self.discounted_return) != N:
            self.discounted_return = torch.zeros(N, dtype=torch.float64)
        returns, R = torch.empty(T, N, dtype=torch.float64), self.discounted_return
        for t in range(T):
            R = self.config.gamma * R + batch.rewards[t]
            returns[t] = R
            R = R.masked_fill(batch.ends[t], 0.0)
        self.discounted_return = R
        self.return_stats.update(returns.reshape(-1, 1))
        scale = torch.sqrt(self.return_stats.var + 1e-8).to(batch.rewards.dtype)
        return (batch.rewards / scale).clamp(-10.0, 10.0)

    def estimate(self, batch: Batch) -> tuple[Prepared, torch.Tensor, torch.Tensor]:
        """The prepared batch, advantages ``Â`` [B] by GAE(γ, λ) or n-step returns
        (``config.advantage``), and the value targets ``Â + V(s)`` [B]."""
        cfg, p = self.config, self.prepare(batch)
        if cfg.advantage == "n_step":
            advantages = n_step_advantages(p.rewards, p.values_tn, p.next_values_tn, batch.terminated, batch.ends, cfg.gamma, cfg.n_step)
        else:
            advantages = gae(p.rewards, p.values_tn, p.next_values_tn, batch.terminated, batch.ends, cfg.gamma, cfg.gae_lambda)
        advantages = advantages.flatten()
        return p, advantages, advantages + p.values

    def fit_value(self, obs: torch.Tensor, targets: torch.Tensor) -> float:
        """Regress ``V(obs)`` [B] on ``targets`` [B] for ``value_epochs`` passes of
        minibatches; returns the last pass's mean squared error."""
        cfg, B = self.config, len(obs)
        loss_sum = 0.0
        for _ in range(cfg.value_epochs):
            loss_sum, order = 0.0, torch.randperm(B, generator=self.generator)
            for start in range(0, B, cfg.batch_size):
                rows = order[start : start + cfg.batch_size]
                loss = ((self.value(obs[rows]) - targets[rows]) ** 2).mean()
                self.value_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.value_optimizer.step()
                loss_sum += loss.item() * len(rows)
        return loss_sum / B

    def clip_and_step(self, optimizer: torch.optim.Optimizer, parameters: list[nn.Parameter]) -> None:
        if self.config.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(parameters, self.config.max_grad_norm)
        optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        """Optimiser states and schedules, for resuming."""
        return {"value_optimizer": self.value_optimizer.state_dict(), "generator": self.generator.get_state(),
                "return_stats": self.return_stats.state_dict(), "discounted_return": self.discounted_return}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value_optimizer.load_state_dict(state["value_optimizer"])
        self.generator.set_state(state["generator"])
        if "return_stats" in state:  # checkpoints from before normalize_reward lack them
            self.return_stats.load_state_dict(state["return_stats"])
            self.discounted_return = state["discounted_return"]
