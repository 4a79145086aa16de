"""Returns and advantages over a batch of rollouts (seed 003 ch. 3-4).

Every tensor is time-major, [T, N] for T steps of N parallel environments. Step t of env n
has reward ``r_t``; ``terminated_t`` says the episode ended in a terminal state (no value
after it); ``ends_t`` says the episode ended at t for any reason (terminal or truncated), so
no return flows back across it. ``next_values_t = V(s_{t+1})`` is the value of the state
that followed step t (the final observation where an episode ended); it bootstraps a
truncated episode and the last step of the batch, whose episode goes on.

Discounting is option 1 of seed 003 §4.1.4: ``γ^{t'-t}`` inside the reward-to-go of each
step. Option 2 (also discounting later decisions, ``γ^{t}`` on step t's gradient) is
:func:`discount_weights`.
"""

from __future__ import annotations

import torch


def _continues(ends: torch.Tensor) -> torch.Tensor:
    """1 where the return of step t+1 flows back into step t: not an episode end, and not
    the batch's last step."""
    keep = (~ends).float()
    keep[-1] = 0.0
    return keep


def _bootstrap(terminated: torch.Tensor, ends: torch.Tensor, next_values: torch.Tensor | None) -> torch.Tensor:
    """The value added after step t where the return is cut there but the episode is not
    over: truncations and the batch's last step."""
    if next_values is None:
        return torch.zeros_like(terminated, dtype=torch.float32)
    cut = ends.clone()
    cut[-1] = True
    return torch.where(cut & ~terminated, next_values, 0.0)


def reward_to_go(
    rewards: torch.Tensor, terminated: torch.Tensor, ends: torch.Tensor, gamma: float, next_values: torch.Tensor | None = None
) -> torch.Tensor:
    """``G_t = Σ_{t'≥t} γ^{t'-t} r_{t'}`` to the end of step t's episode [T, N] (causality:
    an action earns only the rewards after it), plus ``γ^{k} V(s)`` where the episode was cut
    off (truncated, or the batch ended) if ``next_values`` are given."""
    keep, boot = _continues(ends), _bootstrap(terminated, ends, next_values)
    returns = torch.zeros_like(rewards)
    later = torch.zeros_like(rewards[0])
    for t in range(len(rewards) - 1, -1, -1):
        later = rewards[t] + gamma * (keep[t] * later + boot[t])
        returns[t] = later
    return returns


def total_return(rewards: torch.Tensor, terminated: torch.Tensor, ends: torch.Tensor, gamma: float) -> torch.Tensor:
    """The whole trajectory's return ``Σ_t γ^t r_t`` given to every step of it [T, N]
    (REINFORCE without causality). An episode that began before the batch counts from the
    batch's first step."""
    rtg = reward_to_go(rewards, terminated, ends, gamma)
    returns = rtg.clone()
    for t in range(1, len(rewards)):
        returns[t] = torch.where(ends[t - 1], rtg[t], returns[t - 1])  # a new episode starts after an end
    return returns


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    ends: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """Generalised advantage estimation [T, N]:

        δ_t = r_t + γ (1 - terminated_t) V(s_{t+1}) - V(s_t)
        A_t = δ_t + γ λ A_{t+1}   (within an episode and the batch)

    λ = 0 gives the one-step TD error, λ = 1 the Monte-Carlo return minus V(s_t)
    (bootstrapped where the episode was cut off).
    """
    keep = _continues(ends)
    deltas = rewards + gamma * torch.where(terminated, 0.0, next_values) - values
    advantages = torch.zeros_like(rewards)
    later = torch.zeros_like(rewards[0])
    for t in range(len(rewards) - 1, -1, -1):
        later = deltas[t] + gamma * lam * keep[t] * later
        advantages[t] = later
    return advantages


def n_step_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    ends: torch.Tensor,
    gamma: float,
    n: int,
) -> torch.Tensor:
    """``A_t = Σ_{k<n} γ^k r_{t+k} + γ^n V(s_{t+n}) - V(s_t)`` [T, N], the sum stopping
    early at the end of the episode or of the batch (bootstrapped there unless terminal)."""
    if n < 1:
        raise ValueError(f"n = {n}: the n-step return needs n >= 1")
    T = len(rewards)
    keep = _continues(ends)
    returns = torch.zeros_like(rewards)
    for t in range(T):
        total, discount = torch.zeros_like(rewards[0]), torch.ones_like(rewards[0])
        for k in range(min(n, T - t)):
            s = t + k
            total = total + discount * rewards[s]
            discount = discount * gamma
            last = (k == n - 1) | (keep[s] == 0)  # the sum stops after step s
            total = total + torch.where(last & (discount != 0) & ~terminated[s], discount * next_values[s], 0.0)
            discount = torch.where(last, 0.0, discount)
        returns[t] = total
    return returns - values


def discount_weights(timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """``γ^t`` [T, N] for each step's index t within its episode: option 2 of seed 003
    §4.1.4, which weighs later decisions less."""
    return gamma ** timesteps.float()
