"""The reaching task: observation layout, reward, and its settings.

Observation ``obs`` [16] for the 5-joint arm (``n`` arm joints in general)::

    obs[0:n]         joint positions q (rad), as measured (encoder noise included)
    obs[n:2n]        joint velocities q̇ (rad/s), as measured
    obs[2n:2n+3]     end-effector position p_ee (m), base frame
    obs[2n+3:2n+6]   target position p_target (m), base frame

The end effector is computed from the measured joint positions by the arm's forward
kinematics (the URDF), as a real arm computes it from its encoders.

Reward on a transition ``(obs, act, next_obs)``::

    r = -‖fk(q') - p_target'‖ - c · ‖clip(act, -1, 1)‖²

where primes are read from ``next_obs``. Reading the end effector through the kinematics
rather than from ``next_obs[EE]`` matters to a planner: a learned model then only has to
predict the joints, whose dynamics are smooth and local, while the kinematics hold exactly
in poses no episode has visited (PETS's reacher cost does the same). Without
``kinematics`` the reward reads ``next_obs[EE]``. :func:`reach_reward` is written once for
numpy arrays and torch tensors alike (batched over any leading dims, differentiable in
torch), so the environment and the planners compute the very same number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from mbrl_control.config import Config, param

if TYPE_CHECKING:
    from mbrl_control.arm.kinematics import ForwardKinematics

Array = TypeVar("Array")  # numpy.ndarray or torch.Tensor

EE = slice(-6, -3)
TARGET = slice(-3, None)
_EPS = 1e-12  # keeps the gradient of the distance finite at zero distance


@dataclass(frozen=True)
class ReachConfig(Config):
    """Settings of the reaching task."""

    episode_length: int = param(100, "Control ticks per episode (100 = 5 s at 20 Hz).", low=1, high=100_000)
    max_joint_step: float = param(0.1, "Joint target change per tick for an action of ±1 (rad).", low=0.0, low_exclusive=True, high=1.0)
    action_cost: float = param(0.01, "Weight c of the action penalty c·‖a‖².", low=0.0, high=10.0)
    success_distance: float = param(0.02, "End-effector to target distance counted as success (m).", low=0.0, low_exclusive=True, high=1.0)
    target_min_height: float = param(0.03, "Lowest target height above the table (m).", low=0.0, high=1.0)
    target_min_radius: float = param(0.1, "Least horizontal distance of a target from the base axis (m).", low=0.0, high=1.0)
    initial_pose_noise: float = param(0.1, "Half-width of the uniform noise on the initial joint positions (rad).", low=0.0, high=1.0)


def observe(kinematics: "ForwardKinematics", q: np.ndarray, qd: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The observation [2n + 6] from measured joint positions ``q`` [n] and velocities ``qd``
    [n] and the ``target`` [3]: the end effector is ``kinematics(q)``."""
    return np.concatenate([q, qd, kinematics(q), target])


def state_bounds(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The range [2n] of the observation's ``[q, q̇]``, the entries a dynamics model learns:
    ``q`` within the joint limits ``lower``, ``upper`` [n], ``q̇`` unbounded."""
    free = np.full(len(lower), np.inf)
    return np.concatenate([lower, -free]), np.concatenate([upper, free])


def distance(obs: Array, kinematics: "ForwardKinematics | None" = None) -> Array:
    """End-effector to target distance (m), shape [...] for ``obs`` [..., obs_dim]; the end
    effector is ``kinematics(obs[..., :dof])`` when given, else ``obs[..., EE]``."""
    ee = obs[..., EE] if kinematics is None else kinematics(obs[..., : kinematics.dof])
    delta = ee - obs[..., TARGET]
    return ((delta * delta).sum(-1) + _EPS) ** 0.5


def reach_reward(
    obs: Array, act: Array, next_obs: Array, action_cost: float = 0.01, kinematics: "ForwardKinematics | None" = None
) -> Array:
    """Batched reward of the reaching task.

    Args:
        obs: [..., obs_dim] observation before the action (unused; part of the protocol).
        act: [..., act_dim] action in [-1, 1] (clipped like the environment does).
        next_obs: [..., obs_dim] observation after the action.
        action_cost: c in ``-c·‖a‖²``.
        kinematics: the arm's forward kinematics: the end effector is computed from the
            joint positions of ``next_obs``; None reads it from ``next_obs[..., EE]``.

    Returns:
        reward [...], a numpy array or a torch tensor like the inputs.
    """
    act = act.clip(-1.0, 1.0)
    return -distance(next_obs, kinematics) - action_cost * (act * act).sum(-1)
