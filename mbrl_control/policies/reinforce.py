"""REINFORCE (seed 003 ch. 3): the Monte-Carlo policy gradient

    ∇J(θ) ≈ 1/B Σ_t ∇log π_θ(a_t | s_t) (G_t - b)

with ``G_t`` the reward-to-go (or the whole trajectory's return) and a baseline b:
none; the batch mean of G; the optimal baseline per parameter k,
``b_k = E[g_k² G] / E[g_k²]`` with ``g = ∇log π(a | s)``, which minimises the variance of
the estimate; or a learned value ``V_φ(s_t)``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from mbrl_control.policies.advantages import discount_weights, reward_to_go, total_return
from mbrl_control.policies.config import PolicyConfig
from mbrl_control.policies.learner import Learner
from mbrl_control.policies.networks import GaussianPolicy, ValueNetwork
from mbrl_control.policies.rollout import Batch


class _LogProbModule(nn.Module):
    """``forward(obs, raw_actions) = policy.log_prob(obs, raw_actions)``, for torch.func."""

    def __init__(self, policy: GaussianPolicy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor, raw_actions: torch.Tensor) -> torch.Tensor:
        return self.policy.log_prob(obs, raw_actions)


def per_sample_score(policy: GaussianPolicy, obs: torch.Tensor, raw_actions: torch.Tensor) -> dict[str, torch.Tensor]:
    """``g_i = ∇_θ log π_θ(a_i | s_i)`` for every row ``i`` of ``obs`` [B, obs_dim] and
    ``raw_actions`` [B, A]: {parameter name: [B, *parameter shape]}."""
    module = _LogProbModule(policy)
    params = {name: p.detach() for name, p in module.named_parameters()}
    buffers = dict(module.named_buffers())

    def log_prob(params: dict[str, torch.Tensor], o: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return functional_call(module, (params, buffers), (o[None], u[None])).squeeze(0)

    scores = vmap(grad(log_prob), in_dims=(None, 0, 0))(params, obs, raw_actions)
    return {name.removeprefix("policy."): g for name, g in scores.items()}


def reinforce_gradient(
    policy: GaussianPolicy,
    obs: torch.Tensor,
    raw_actions: torch.Tensor,
    returns: torch.Tensor,
    baseline: str = "none",
    weights: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The REINFORCE estimate of ``∇J`` {parameter name: gradient} from B rows:
    ``mean_i w_i ∇log π(a_i | s_i) (G_i - b)``.

    Args:
        returns: G [B] (minus a learned baseline, if the caller has one).
        baseline: ``none``, ``mean`` (b = mean G) or ``optimal`` (b_k = E[g_k² G]/E[g_k²]
            per parameter entry k, from per-sample scores). Row i's baseline is estimated
            from the other rows (leave one out), so it is independent of row i and the
            estimate stays unbiased; from all rows it is biased by O(1/B).
        weights: w [B] (discount option 2: γ^t); ones when None.
    """
    weights = torch.ones_like(returns) if weights is None else weights
    params = dict(policy.named_parameters())
    if baseline == "optimal":
        gradient = {}
        for name, g in per_sample_score(policy, obs, raw_actions).items():
            g = g.flatten(1)  # [B, P_k]
            g2 = g * g
            g2_returns = g2 * returns[:, None]
            b = (g2_returns.sum(0) - g2_returns) / (g2.sum(0) - g2).clamp_min(1e-12)  # [B, P_k], leave one out
            gradient[name] = (g * weights[:, None] * (returns[:, None] - b)).mean(0).view(params[name].shape)
        return gradient
    B = len(returns)
    centred = returns - (returns.sum() - returns) / max(B - 1, 1) if baseline == "mean" else returns
    surrogate = (policy.log_prob(obs, raw_actions) * (weights * centred).detach()).mean()
    return dict(zip(params, torch.autograd.grad(surrogate, list(params.values()))))


class Reinforce(Learner):
    """REINFORCE with the baseline and return of ``config``; a value baseline is
    regressed on the returns after each update."""

    def __init__(self, policy: GaussianPolicy, value: ValueNetwork, config: PolicyConfig) -> None:
        super().__init__(policy, value, config)
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=config.learning_rate)

    def update(self, batch: Batch) -> dict[str, float]:
        cfg, p = self.config, self.prepare(batch)
        if cfg.returns == "total":
            returns_tn = total_return(p.rewards, batch.terminated, batch.ends, cfg.gamma)
        else:  # a learned baseline also bootstraps the episodes the batch cut off
            bootstrap = p.next_values_tn if cfg.baseline == "value" else None
            returns_tn = reward_to_go(p.rewards, batch.terminated, batch.ends, cfg.gamma, bootstrap)
        returns = returns_tn.flatten()
        weights = discount_weights(batch.timesteps, cfg.gamma).flatten() if cfg.discount_option == 2 else None
        signal = returns - p.values if cfg.baseline == "value" else returns
        gradient = reinforce_gradient(self.policy, p.obs, p.raw_actions, signal,
                                      "none" if cfg.baseline == "value" else cfg.baseline, weights)
        self.optimizer.zero_grad(set_to_none=True)
        for name, param in self.policy.named_parameters():
            param.grad = -gradient[name]  # ascend J
        self.clip_and_step(self.optimizer, list(self.policy.parameters()))
        value_loss = self.fit_value(p.obs, returns) if cfg.baseline == "value" else float("nan")
        return {"value_loss": value_loss, "mean_return_to_go": returns.mean().item()}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.optimizer.load_state_dict(state["optimizer"])
