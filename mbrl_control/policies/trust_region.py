"""Natural policy gradient and TRPO (seeds 002, 004).

Both maximise the surrogate ``L(θ) = E[π_θ(a|s) / π_old(a|s) · Â]`` to first order inside
the KL ball ``E[KL(π_old ‖ π_θ)] ≤ δ``, approximated to second order by the Fisher matrix
F (the KL's Hessian at θ_old):

    x = F⁻¹ g  (conjugate gradient, F v by double backprop),   Δθ = √(2δ / xᵀF x) · x.

NPG takes Δθ. TRPO backtracks ``Δθ · shrink^k`` until the exact mean KL is within δ and the
surrogate improved, and keeps θ_old if no step passes.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from mbrl_control.policies.learner import Learner, Prepared, gaussian_kl, standardize
from mbrl_control.policies.networks import GaussianPolicy
from mbrl_control.policies.rollout import Batch


def conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, iterations: int, tolerance: float = 1e-10) -> torch.Tensor:
    """Approximate solution x of ``A x = b`` for a symmetric positive-definite A given as
    ``matvec(v) = A v`` (vectors [P])."""
    x = torch.zeros_like(b)
    r, d = b.clone(), b.clone()  # residual b - A x, search direction
    rr = r @ r
    for _ in range(iterations):
        if rr <= tolerance:
            break
        Ad = matvec(d)
        alpha = rr / (d @ Ad)
        x = x + alpha * d
        r = r - alpha * Ad
        rr_new = r @ r
        d = r + (rr_new / rr) * d
        rr = rr_new
    return x


def fisher_vector_product(policy: GaussianPolicy, obs: torch.Tensor, old_mean: torch.Tensor, old_std: torch.Tensor, damping: float = 0.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v ↦ (F + damping·I) v`` at the current parameters, with F the Hessian of
    ``mean KL(π_old ‖ π_θ)`` over ``obs`` [B, obs_dim] (π_old: ``old_mean``, ``old_std``
    [B, A]), by two backward passes: ``F v = ∇(∇KL · v)``."""
    params = [p for p in policy.parameters() if p.requires_grad]
    kl = gaussian_kl(old_mean, old_std, policy.distribution(obs)).mean()
    grads = parameters_to_vector(torch.autograd.grad(kl, params, create_graph=True))

    def matvec(v: torch.Tensor) -> torch.Tensor:
        hv = torch.autograd.grad(grads @ v, params, retain_graph=True)
        return parameters_to_vector(hv) + damping * v

    return matvec


class NaturalGradient(Learner):
    """NPG (``line_search=False``) and TRPO (``line_search=True``)."""

    line_search = False

    def surrogate(self, p: Prepared, advantages: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``L(θ)`` and the mean ``KL(π_old ‖ π_θ)`` at the current parameters."""
        dist = self.policy.distribution(p.obs)
        ratio = torch.exp(self.policy._log_prob(dist, p.raw_actions) - p.old_log_probs)
        return (ratio * advantages).mean(), gaussian_kl(p.old_mean, p.old_std, dist).mean()

    def update(self, batch: Batch) -> dict[str, float]:
        cfg, (p, advantages, targets) = self.config, self.estimate(batch)
        if cfg.normalize_advantage:
            advantages = standardize(advantages)
        params = list(self.policy.parameters())
        surrogate, _ = self.surrogate(p, advantages)
        g = parameters_to_vector(torch.autograd.grad(surrogate, params))
        Fv = fisher_vector_product(self.policy, p.obs, p.old_mean, p.old_std, cfg.cg_damping)
        x = conjugate_gradient(Fv, g, cfg.cg_iterations)
        xFx = (x @ Fv(x)).clamp_min(1e-12)
        full_step = torch.sqrt(2 * cfg.max_kl / xFx) * x
        old = parameters_to_vector(params).detach()
        metrics = {"surrogate_before": surrogate.item(), "expected_improvement": (g @ full_step).item()}
        if not self.line_search:
            vector_to_parameters(old + full_step, params)
            accepted = 1.0
        else:
            accepted = 0.0
            with torch.no_grad():
                for k in range(cfg.line_search_steps):
                    vector_to_parameters(old + cfg.line_search_shrink**k * full_step, params)
                    new_surrogate, kl = self.surrogate(p, advantages)
                    if kl.item() <= cfg.max_kl and new_surrogate.item() > surrogate.item():
                        accepted = cfg.line_search_shrink**k
                        break
                else:
                    vector_to_parameters(old, params)
        with torch.no_grad():
            new_surrogate, kl = self.surrogate(p, advantages)
        metrics.update(step_fraction=accepted, kl=kl.item(), surrogate_after=new_surrogate.item(),
                       value_loss=self.fit_value(p.obs, targets))
        return metrics


class TRPO(NaturalGradient):
    """Trust-region policy optimisation: the natural step, backtracked into the KL bound."""

    line_search = True

