"""A trained policy's deterministic action in numpy: what runs at control rate on the arm.

:class:`DeployedPolicy` is a frozen snapshot of a :class:`~.networks.GaussianPolicy`: the
goal features, the observation standardisation, the MLP's layers and the action bounds as
float32 arrays, replayed with a dozen numpy calls. It computes the same action as
``policy.act(obs)`` (to float32 rounding), but on a small CPU each torch op costs 5–40 µs
of dispatch and the policy's forward pass is a dozen of them: a 256×2 MLP takes 300–700 µs
per action through torch and 80–250 µs as numpy (``benchmarks/model_based_policies.py``),
against 35–45 ms for MPC. Training stays in torch; a snapshot is taken when a policy is
loaded to drive an arm, or set to propose plans to the MPC planner (:meth:`on_tensor`, once
per model step of every tick), and does not follow later updates of the policy.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from mbrl_control.models.ensemble import EnsembleLinear
from mbrl_control.policies.networks import GaussianPolicy

Array = np.ndarray
# the activations of networks.ACTIVATIONS, in numpy (silu through tanh: no overflow warnings)
ACTIVATIONS: dict[type[nn.Module], Callable[[Array], Array]] = {
    nn.Tanh: np.tanh,
    nn.ReLU: lambda x: np.maximum(x, 0.0),
    nn.SiLU: lambda x: x * (0.5 + 0.5 * np.tanh(0.5 * x)),
    nn.ELU: lambda x: np.where(x > 0.0, x, np.expm1(np.minimum(x, 0.0))),
}


def as_array(tensor) -> Array:
    """A float32 numpy copy of a tensor (detached: the snapshot never changes)."""
    return tensor.detach().cpu().numpy().astype(np.float32, copy=True)


class DeployedPolicy:
    """``a = to_env(μ_θ(s))`` for ``obs`` [obs_dim] or [B, obs_dim], in numpy; a policy of K
    members runs them side by side (weights [K, in, out]) and averages their outputs.

    Args:
        policy: the policy to snapshot (its parameters and observation statistics now).
    """

    def __init__(self, policy: GaussianPolicy) -> None:
        self.obs_dim, self.act_dim = policy.obs_dim, policy.act_dim
        self.goal_dims, self.goal_scale = policy.relative_goal, np.float32(policy.goal_scale)
        self.squash = policy.squash
        self.shift, self.scale = as_array(policy.obs_norm._shift), as_array(policy.obs_norm._scale)
        self.clip = np.float32(policy.obs_norm.clip)
        self.low, self.high = as_array(policy.low), as_array(policy.high)
        # [(weightᵀ [in, out] or [K, in, out], bias [out] or [K, 1, out], activation or None)]: x ↦ act(x Wᵀ + b)
        self.layers: list[tuple[Array, Array, Callable[[Array], Array] | None]] = []
        for module in policy.net:
            if isinstance(module, nn.Linear):
                self.layers.append((as_array(module.weight.T), as_array(module.bias), None))
            elif isinstance(module, EnsembleLinear):
                self.layers.append((as_array(module.weight), as_array(module.bias), None))
            else:
                weight_t, bias, _ = self.layers[-1]
                self.layers[-1] = (weight_t, bias, ACTIVATIONS[type(module)])

    def features(self, obs: Array) -> Array:
        """The standardised network input [..., input_dim] (as :meth:`GaussianPolicy.inputs`)."""
        x = obs
        if self.goal_dims:
            k = self.goal_dims
            delta = obs[..., -k:] - obs[..., -2 * k : -k]
            norm = np.sqrt(np.sum(delta * delta, axis=-1, keepdims=True))
            x = np.concatenate([obs, delta, delta / (norm + self.goal_scale)], axis=-1)
        return np.clip((x - self.shift) / self.scale, -self.clip, self.clip)

    def act(self, obs: Array) -> Array:
        """Environment action [A] for ``obs`` [obs_dim], or [B, A] for [B, obs_dim].

        Raises:
            ValueError: ``obs`` is not [obs_dim] or [B, obs_dim].
        """
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim not in (1, 2) or obs.shape[-1] != self.obs_dim:
            raise ValueError(f"observation of shape {obs.shape}, expected ({self.obs_dim},) or (B, {self.obs_dim})")
        x = self.features(np.atleast_2d(obs))  # [B, in]
        for weight_t, bias, activation in self.layers:
            x = x @ weight_t + bias  # [B, out], or [K, B, out] from the first member layer on
            if activation is not None:
                x = activation(x)
        if x.ndim == 3:  # the members' mean
            x = x.mean(axis=0)
        mean = x[:, : self.act_dim]  # a state-dependent log σ head follows the mean
        if self.squash:
            action = self.low + (np.tanh(mean) + 1.0) * (self.high - self.low) / 2
        else:
            action = np.clip(mean, self.low, self.high)
        return action[0] if obs.ndim == 1 else action

    __call__ = act

    def on_tensor(self, obs: torch.Tensor) -> torch.Tensor:
        """:meth:`act` for a CPU tensor [B, obs_dim], as a tensor [B, A] (the planner's
        proposals, :meth:`~mbrl_control.planning.mpc.MPCController.set_policy`)."""
        return torch.from_numpy(self.act(obs.detach().numpy()))
