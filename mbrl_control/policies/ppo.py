"""Proximal policy optimisation (seeds 001, 004): several epochs of minibatch Adam on
one batch, kept near the behaviour policy by

* PPO-clip (v2):  L = E[min(r Â, clip(r, 1 - ε, 1 + ε) Â)],  r = π_θ(a|s) / π_old(a|s);
* PPO-KL (v1):    L = E[r Â] - β E[KL(π_old ‖ π_θ)], with the dual update of β after each
  batch: doubled when the KL exceeded 1.5 × target, halved when below target / 1.5;

with the joint loss ``-L + c_v (V_φ(s) - (Â + V_old(s)))² - c_e H[π_θ(·|s)]``.
"""

from __future__ import annotations

import torch

from mbrl_control.policies.config import PolicyConfig
from mbrl_control.policies.learner import Learner, gaussian_kl, standardize
from mbrl_control.policies.networks import GaussianPolicy, ValueNetwork
from mbrl_control.policies.rollout import Batch


def clipped_surrogate(ratio: torch.Tensor, advantages: torch.Tensor, clip_range: float) -> torch.Tensor:
    """PPO-clip's objective per row [B]: ``min(r Â, clip(r, 1 - ε, 1 + ε) Â)``."""
    return torch.minimum(ratio * advantages, ratio.clamp(1 - clip_range, 1 + clip_range) * advantages)


def update_beta(beta: float, kl: float, target_kl: float) -> float:
    """PPO-KL's dual update of the penalty weight β from the batch's mean KL."""
    if kl > 1.5 * target_kl:
        return beta * 2.0
    if kl < target_kl / 1.5:
        return beta / 2.0
    return beta


class PPO(Learner):
    """PPO-clip (``penalty=False``) and PPO-KL (``penalty=True``); policy and value share
    one Adam optimiser."""

    penalty = False

    def __init__(self, policy: GaussianPolicy, value: ValueNetwork, config: PolicyConfig) -> None:
        super().__init__(policy, value, config)
        self.parameters = [*policy.parameters(), *value.parameters()]
        self.optimizer = torch.optim.Adam(self.parameters, lr=config.learning_rate, eps=1e-5)
        self.beta = config.kl_beta

    def update(self, batch: Batch) -> dict[str, float]:
        cfg, (p, advantages, returns) = self.config, self.estimate(batch)
        B = len(advantages)
        clipped, steps = 0.0, 0
        for _ in range(cfg.n_epochs):
            order = torch.randperm(B, generator=self.generator)
            for start in range(0, B - cfg.batch_size + 1, cfg.batch_size):  # full minibatches only
                rows = order[start : start + cfg.batch_size]
                adv = standardize(advantages[rows]) if cfg.normalize_advantage else advantages[rows]
                dist = self.policy.distribution(p.obs[rows])
                log_probs = self.policy._log_prob(dist, p.raw_actions[rows])
                ratio = torch.exp(log_probs - p.old_log_probs[rows])
                if self.penalty:
                    kl = gaussian_kl(p.old_mean[rows], p.old_std[rows], dist).mean()
                    policy_loss = -(ratio * adv).mean() + self.beta * kl
                else:
                    policy_loss = -clipped_surrogate(ratio, adv, cfg.clip_range).mean()
                value_loss = ((self.value(p.obs[rows]) - returns[rows]) ** 2).mean()
                entropy = self.policy.entropy(dist, p.raw_actions[rows]).mean()
                loss = policy_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.clip_and_step(self.optimizer, self.parameters)
                clipped += ((ratio - 1).abs() > cfg.clip_range).float().mean().item()
                steps += 1
        with torch.no_grad():
            kl = gaussian_kl(p.old_mean, p.old_std, self.policy.distribution(p.obs)).mean().item()
        metrics = {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(), "entropy": entropy.item(),
                   "kl": kl, "clip_fraction": clipped / max(steps, 1)}
        if self.penalty:
            self.beta = update_beta(self.beta, kl, cfg.target_kl)
            metrics["beta"] = self.beta
        return metrics

    def state_dict(self) -> dict:
        return {**super().state_dict(), "optimizer": self.optimizer.state_dict(), "beta": self.beta}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.beta = float(state["beta"])


class PPOKL(PPO):
    """PPO with the adaptive KL penalty (v1)."""

    penalty = True
