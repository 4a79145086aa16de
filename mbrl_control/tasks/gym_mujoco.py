"""Gymnasium's MuJoCo tasks (v5): rewards and terminations as batched torch functions.

Each is written from the env's own ``step`` and reads its weights from the env instance.
The locomotion tasks reward the x velocity ``(x' - x) / dt`` of the root, which their
default observation leaves out: their ``env_kwargs`` keep it
(``exclude_current_positions_from_observation=False``) and ``free_dims`` tells a dynamics
model not to take it as an input (PETS's HalfCheetah drops it from the inputs the same way).
"""

from __future__ import annotations

import torch

from mbrl_control.tasks.base import Task

KEEP_POSITION = {"exclude_current_positions_from_observation": False}


class _MuJoCoTask(Task):
    """A gymnasium MuJoCo task: its observation is the simulator's whole state (positions
    and velocities, the x position kept) and actions act at once, so the next state depends
    on no earlier action."""

    history = 0


def _squared_norm(x: torch.Tensor) -> torch.Tensor:
    return (x * x).sum(-1)


def _norm(x: torch.Tensor) -> torch.Tensor:
    """‖x‖ over the last dim, with a gradient that stays finite at 0 (off by at most 1e-6 there)."""
    return (_squared_norm(x) + 1e-12).sqrt()


def _inside(x: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """``low < x < high`` elementwise (the envs' open intervals)."""
    low, high = bounds
    return (x > low) & (x < high)


class _Runner(_MuJoCoTask):
    """Forward motion of the root along x, less the control cost:
    ``w_f · (x' - x) / dt - w_c · ‖a‖²`` with x the observation's first entry."""

    env_kwargs = KEEP_POSITION
    free_dims = 1

    def __init__(self, env) -> None:
        super().__init__(env)
        self.dt = float(self.env.dt)
        self.forward_weight = float(self.env._forward_reward_weight)
        self.ctrl_weight = float(self.env._ctrl_cost_weight)

    def forward_reward(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        return self.forward_weight * (next_obs[..., 0] - obs[..., 0]) / self.dt - self.ctrl_weight * _squared_norm(act)

    def reward(self, obs, act, next_obs):
        return self.forward_reward(obs, act, next_obs)


class HalfCheetah(_Runner):
    """HalfCheetah-v5: observation [x, z, angles (7), velocities (9)] = 18."""

    env_id = "HalfCheetah-v5"


class Swimmer(_Runner):
    """Swimmer-v5: observation [x, y, angles (3), velocities (5)] = 10; both x and y are free."""

    env_id = "Swimmer-v5"
    free_dims = 2


class _Walker(_Runner):
    """A runner that must stay healthy: ``+ w_h`` while healthy; the episode ends when it
    is not (``terminate_when_unhealthy``). Observation [x, z, angle, ...]: healthy while z
    and the torso angle are inside their ranges."""

    terminates = True

    def __init__(self, env) -> None:
        super().__init__(env)
        self.healthy_reward = float(self.env._healthy_reward)
        self.z_range = tuple(self.env._healthy_z_range)
        self.angle_range = tuple(self.env._healthy_angle_range)
        self.terminate_when_unhealthy = bool(self.env._terminate_when_unhealthy)

    def healthy(self, next_obs: torch.Tensor) -> torch.Tensor:
        """Bool [...]: the state after the step is healthy."""
        return _inside(next_obs[..., 1], self.z_range) & _inside(next_obs[..., 2], self.angle_range)

    def reward(self, obs, act, next_obs):
        return self.forward_reward(obs, act, next_obs) + self.healthy_reward * self.healthy(next_obs).to(next_obs.dtype)

    def termination(self, obs, act, next_obs):
        return ~self.healthy(next_obs) if self.terminate_when_unhealthy else super().termination(obs, act, next_obs)


class Hopper(_Walker):
    """Hopper-v5: observation [x, z, angle, joint angles (3), velocities (6), clipped to
    ±10] = 12; healthy also needs every entry after x and z inside ``healthy_state_range``
    (the env checks unclipped velocities, which the observation cannot show past ±10; its
    range is ±100)."""

    env_id = "Hopper-v5"

    def __init__(self, env) -> None:
        super().__init__(env)
        self.state_range = tuple(self.env._healthy_state_range)

    def healthy(self, next_obs):
        return super().healthy(next_obs) & _inside(next_obs[..., 2:], self.state_range).all(-1)


class Walker2d(_Walker):
    """Walker2d-v5: observation [x, z, angle, joint angles (6), velocities (9), clipped to ±10] = 18."""

    env_id = "Walker2d-v5"


class InvertedPendulum(_MuJoCoTask):
    """InvertedPendulum-v5: observation [cart x, pole angle, their velocities]; reward 1 per
    step; the episode ends when the pole leans more than 0.2 rad."""

    env_id = "InvertedPendulum-v5"
    terminates = True

    def termination(self, obs, act, next_obs):
        return ~torch.isfinite(next_obs).all(-1) | (next_obs[..., 1].abs() > 0.2)

    def reward(self, obs, act, next_obs):
        return (~self.termination(obs, act, next_obs)).to(next_obs.dtype)


class InvertedDoublePendulum(_MuJoCoTask):
    """InvertedDoublePendulum-v5: observation [cart x, sin θ1, sin θ2, cos θ1, cos θ2,
    velocities (3, clipped to ±10), constraint force]. With the tip at (x_tip, y_tip),

        r = w_h · [y_tip > 1] - 0.01 · x_tip² - (y_tip - 2)² - 1e-3 · θ̇1² - 5e-3 · θ̇2²

    and the episode ends once ``y_tip <= 1``. The env reads the tip from MuJoCo's
    ``site_xpos``, which ``mj_step`` leaves a little behind the final state; the tip
    computed here from the observed angles differs from it by at most ~1e-4 m (measured
    on random episodes), so rewards agree to ~1e-3 and a termination can differ only
    within that of ``y_tip = 1``.
    """

    env_id = "InvertedDoublePendulum-v5"
    terminates = True

    def __init__(self, env) -> None:
        super().__init__(env)
        model = self.env.model
        self.healthy_reward = float(self.env._healthy_reward)
        self.pivot_height = float(model.body("cart").pos[2] + model.body("pole").pos[2])
        self.lengths = (float(model.body("pole2").pos[2]), float(model.site("tip").pos[2]))

    def tip(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, height) [...] of the pole's tip: the cart's x plus the two poles, at angles
        θ1 and θ1 + θ2 from the vertical (sin and cos of a sum, from the observed ones)."""
        (l1, l2), sin1, sin2, cos1, cos2 = self.lengths, obs[..., 1], obs[..., 2], obs[..., 3], obs[..., 4]
        sin12, cos12 = sin1 * cos2 + cos1 * sin2, cos1 * cos2 - sin1 * sin2
        return obs[..., 0] + l1 * sin1 + l2 * sin12, self.pivot_height + l1 * cos1 + l2 * cos12

    def termination(self, obs, act, next_obs):
        return self.tip(next_obs)[1] <= 1

    def reward(self, obs, act, next_obs):
        x, y = self.tip(next_obs)
        alive = self.healthy_reward * (y > 1).to(next_obs.dtype)
        return alive - 0.01 * x**2 - (y - 2) ** 2 - 1e-3 * next_obs[..., 6] ** 2 - 5e-3 * next_obs[..., 7] ** 2


class Reacher(_MuJoCoTask):
    """Reacher-v5: observation [cos q (2), sin q (2), target xy (2), q̇ (2), fingertip -
    target (2)]; ``r = -w_d · ‖fingertip - target‖ - w_c · ‖a‖²`` after the step."""

    env_id = "Reacher-v5"

    def __init__(self, env) -> None:
        super().__init__(env)
        self.dist_weight = float(self.env._reward_dist_weight)
        self.ctrl_weight = float(self.env._reward_control_weight)

    def reward(self, obs, act, next_obs):
        return -self.dist_weight * _norm(next_obs[..., 8:10]) - self.ctrl_weight * _squared_norm(act)


class Pusher(_MuJoCoTask):
    """Pusher-v5: observation [q (7), q̇ (7), fingertip (3), object (3), goal (3)];
    ``r = -w_near · ‖object - fingertip‖ - w_dist · ‖object - goal‖ - w_c · ‖a‖²`` after
    the step. The goal closes the observation (``goal_dims = 3``)."""

    env_id = "Pusher-v5"
    goal_dims = 3

    def __init__(self, env) -> None:
        super().__init__(env)
        self.near_weight = float(self.env._reward_near_weight)
        self.dist_weight = float(self.env._reward_dist_weight)
        self.ctrl_weight = float(self.env._reward_control_weight)

    def reward(self, obs, act, next_obs):
        tip, item, goal = next_obs[..., 14:17], next_obs[..., 17:20], next_obs[..., 20:23]
        return (-self.near_weight * _norm(item - tip) - self.dist_weight * _norm(item - goal)
                - self.ctrl_weight * _squared_norm(act))
