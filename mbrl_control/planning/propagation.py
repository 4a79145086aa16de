"""Planning under model uncertainty by trajectory sampling (PETS; seed 004).

:func:`trajectory_cost` turns a dynamics model, the current state and the task's
``reward_fn`` into the batched cost ``J(actions [N, H, A]) -> [N]`` the optimisers
minimise. Each candidate sequence is rolled out by ``P`` particles; its score is the mean
predicted return over them (minus ``risk`` times their standard deviation), and the cost is
the negative score.

Aleatoric noise is drawn once per particle and step and shared by all candidates (common
random numbers): the best candidate is then the best plan, not the luckiest draw.

Propagation (how a particle picks its model):
  ``ts_inf``       a member fixed per particle for the whole horizon: rows are laid out
                   member-major, so each member evaluates only its own block of rows;
  ``ts1``          a fresh random member per particle at every step (a random permutation
                   of the rows into the member-major layout, so still one block each);
  ``expectation``  the mean prediction, one deterministic particle.
GPs and single networks have one "member": ``ts_inf`` and ``ts1`` sample from the
predictive distribution there.

A model with ``history`` h takes the h actions before each step's: the first steps of a
rollout read the actions already sent (``past``, the ones still in flight on an arm whose
servos act late), later steps the candidate's own.

A policy can choose some candidates' actions as the rollout goes (:class:`PolicyProposals`,
the policy inside the planner): its sequence is then rolled out in the same batched model
calls as the optimiser's samples, not in a rollout of its own one step at a time (on
ArmReach that rollout cost a quarter of a CEM-16 tick).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from mbrl_control.models.dynamics import DynamicsModel

RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
TerminationFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
PROPAGATIONS = ("ts_inf", "ts1", "expectation")


@dataclass
class PolicyProposals:
    """``K`` action sequences a policy chooses during a rollout (as TD-MPC proposes its
    policy's sequences to its planner): ``actions`` [..., K, H, A] are NaN until the first
    cost call, whose candidates hold them (as NaN), fills them, there and here (``pending``
    until then).

    At step t the policy acts on the nominal state, the mean over the first proposal's
    particles (the model's mean under ``expectation`` propagation), and proposal k takes that
    action plus ``offsets`` [..., k, t] (zeros for k = 0), clipped by ``clip``. Every particle
    of a proposal takes the same action, so a proposal is scored open loop as any candidate
    is, by the same particles.
    """

    policy: Callable[[torch.Tensor], torch.Tensor]  # states [B, obs_dim] -> actions [B, A]
    offsets: torch.Tensor
    clip: Callable[[torch.Tensor], torch.Tensor]
    actions: torch.Tensor = field(init=False)
    pending: bool = field(init=False, default=True)

    def __post_init__(self) -> None:
        self.actions = torch.full_like(self.offsets, float("nan"))

    def choose(self, t: int, nominal: torch.Tensor) -> torch.Tensor:
        """The K proposals' actions [B, K, A] at step ``t`` from the nominal states [B, obs_dim]
        of B problems; also written into ``actions``."""
        K, H, A = self.actions.shape[-3:]
        taken = self.clip(self.policy(nominal)[:, None, :] + self.offsets.reshape(-1, K, H, A)[:, :, t])
        self.actions.view(-1, K, H, A)[:, :, t] = taken
        return taken


def trajectory_cost(
    model: DynamicsModel,
    obs: torch.Tensor,
    reward_fn: RewardFn,
    particles: int = 20,
    propagation: str = "ts_inf",
    termination_fn: TerminationFn | None = None,
    risk: float = 0.0,
    generator: torch.Generator | None = None,
    past: torch.Tensor | None = None,
    proposals: PolicyProposals | None = None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The cost of action sequences from state ``obs`` [obs_dim] under ``model``:
    differentiable in the actions where the model is (callers that only sample wrap it in
    ``torch.no_grad()``). Batched over start states: with ``obs`` [B, obs_dim] (and
    ``past`` [B, h, A]) the cost maps actions [B, N, H, A] to [B, N], each row of
    candidates scored from its own state (many plans in one call: DAgger's labels).

    Args:
        particles: rollouts per candidate, P (rounded up to a multiple of the ensemble
            size for the member-major layout); 1 for ``expectation``.
        termination_fn: ``(obs, act, next_obs) -> bool [B]``; a particle earns no reward
            after the step it terminates on.
        risk: k in the score ``mean - k · std`` over particles (0: risk-neutral,
            k < 0: optimistic about what the particles disagree on).
        past: [h, A] the actions sent before ``obs``, oldest first, for a model with
            ``history`` h (None: zeros).
        proposals: a policy's sequences, chosen and filled in (in ``actions`` too, which
            must then be contiguous) by the first call whose candidates hold them as NaN.
    """
    if propagation not in PROPAGATIONS:
        raise ValueError(f"propagation = {propagation!r}: choose one of {', '.join(PROPAGATIONS)}")
    members, history = model.members, model.history
    if propagation == "expectation":
        particles = 1
    else:
        particles = -(-particles // members) * members
    obs = torch.as_tensor(obs, dtype=torch.float32)
    batch = obs.shape[:-1]  # () or (B,)
    if history:
        sent = torch.zeros(*batch, history, model.act_dim) if past is None else torch.as_tensor(past, dtype=torch.float32)
        if sent.shape != (*batch, history, model.act_dim):
            raise ValueError(f"past must be {[*batch, history, model.act_dim]} (the model's history), got {list(sent.shape)}")

    def cost(actions: torch.Tensor) -> torch.Tensor:
        if actions.shape[:-3] != batch:
            raise ValueError(f"actions must be {[*batch, 'N', 'H', 'A']} for start states {list(obs.shape)}, got {list(actions.shape)}")
        shape = actions.shape[:-2]  # (*batch, N)
        flat = actions.reshape(-1, *actions.shape[-2:])  # [C, H, A], C candidates in all
        n, horizon, _ = flat.shape
        rows = n * particles
        chosen = None  # the policy's candidates [B·K] and their rows [P, B·K], where it acts in this call
        if proposals is not None and proposals.pending:
            proposals.pending = False
            chosen, waiting = torch.isnan(flat[:, 0, 0]).nonzero().flatten(), proposals.actions[..., 0, 0].numel()
            if len(chosen) != waiting:
                raise ValueError(f"{len(chosen)} candidates are NaN, but {waiting} proposals wait for the policy")
            chosen_rows = torch.arange(particles)[:, None] * n + chosen
            nominal_rows = chosen_rows.view(particles, -1, proposals.actions.shape[-3])[..., 0]  # [P, B]: each problem's first
        # particle-major rows (row = p·C + c) make the member-major blocks hold every candidate
        state = obs[..., None, :].expand(*shape, obs.shape[-1]).reshape(n, -1).repeat(particles, 1)
        repeated = flat.repeat(particles, 1, 1)  # [P·C, H, A]
        # step t reads the actions t-h … t-1 of [sent, candidate]
        if history:
            sent_rows = sent[..., None, :, :].expand(*shape, history, model.act_dim).reshape(n, history, -1)
            window = torch.cat([sent_rows.repeat(particles, 1, 1), repeated], dim=1)
        states = [state]
        for t in range(horizon):
            if chosen is not None:
                taken = proposals.choose(t, state[nominal_rows].mean(0)).reshape(-1, flat.shape[-1])  # [B·K, A]
                repeated[chosen_rows, t] = taken
                if history:
                    window[chosen_rows, history + t] = taken
            act = repeated[:, t]
            before = window[:, t : t + history] if history else None
            if propagation == "expectation":
                state = model.predict_mean(state, act, before)
            else:
                # common random numbers: particle p draws the same noise for every candidate,
                # so candidates are compared on the same futures, not on lucky draws
                noise = torch.randn((particles, 1, obs.shape[-1]), generator=generator).expand(-1, n, -1).reshape(rows, -1)
                if propagation == "ts_inf":
                    state = model.sample(state, act, before, noise)
                else:  # ts1: shuffle particles into member blocks, sample, unshuffle
                    order = torch.randperm(rows, generator=generator)
                    shuffled = model.sample(state[order], act[order], None if before is None else before[order], noise[order])
                    state = torch.empty_like(shuffled)
                    state[order] = shuffled
            states.append(state)
        if chosen is not None:  # in place: the optimiser reads its proposals back from its samples
            actions.view(flat.shape)[chosen] = proposals.actions.reshape(-1, *flat.shape[1:])
        # reward (and termination) of all H steps in one call each: rows [H·P·N]
        trajectory = torch.stack(states)  # [H + 1, P·N, obs_dim]
        step_obs, step_next = trajectory[:-1].reshape(horizon * rows, -1), trajectory[1:].reshape(horizon * rows, -1)
        step_act = repeated.transpose(0, 1).reshape(horizon * rows, -1)
        rewards = reward_fn(step_obs, step_act, step_next).view(horizon, rows)
        if termination_fn is not None:  # no reward after the step a particle terminates on
            done = termination_fn(step_obs, step_act, step_next).view(horizon, rows)
            ended_before = torch.cumsum(done.int(), 0) - done.int() > 0  # [H, rows]
            rewards = torch.where(ended_before, 0.0, rewards)
        returns = rewards.sum(0)
        per_particle = returns.view(particles, n)
        score = per_particle.mean(0)
        if risk and particles > 1:
            score = score - risk * per_particle.std(0)
        return -score.view(shape)

    return cost
