"""Batch actor-critic (seed 003 §4.1, algorithm 17): fit ``V_φ`` to the batch, estimate
advantages from it (GAE(γ, λ) or n-step returns), take one policy-gradient step

    ∇J(θ) ≈ 1/B Σ_t ∇log π_θ(a_t | s_t) Â_t  (+ an entropy bonus)

and regress ``V_φ`` on the targets ``Â_t + V(s_t)``."""

from __future__ import annotations

import torch

from mbrl_control.policies.config import PolicyConfig
from mbrl_control.policies.learner import Learner, standardize
from mbrl_control.policies.networks import GaussianPolicy, ValueNetwork
from mbrl_control.policies.rollout import Batch


class A2C(Learner):
    """Synchronous advantage actor-critic, one Adam step on the policy per batch."""

    def __init__(self, policy: GaussianPolicy, value: ValueNetwork, config: PolicyConfig) -> None:
        super().__init__(policy, value, config)
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=config.learning_rate)

    def update(self, batch: Batch) -> dict[str, float]:
        cfg, (p, advantages, targets) = self.config, self.estimate(batch)
        if cfg.normalize_advantage:
            advantages = standardize(advantages)
        dist = self.policy.distribution(p.obs)
        log_probs = self.policy._log_prob(dist, p.raw_actions)
        entropy = self.policy.entropy(dist, p.raw_actions).mean()
        loss = -(log_probs * advantages).mean() - cfg.ent_coef * entropy
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.clip_and_step(self.optimizer, list(self.policy.parameters()))
        return {"policy_loss": loss.item(), "entropy": entropy.item(), "value_loss": self.fit_value(p.obs, targets)}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])
