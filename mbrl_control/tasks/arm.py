"""The arm's reaching task (``mbrl_control/ArmReach-v0``) in the task registry: its reward
is the env's own ``reward_fn``, which scores a state by the forward kinematics of its
joints (the env's URDF), and the observation's end effector is derived the same way."""

from __future__ import annotations

from mbrl_control import ENV_ID
from mbrl_control.tasks.base import Task


class ArmReach(Task):
    """Reach a target with the end effector. Observation ``[q, q̇, end effector, target]``:
    the target closes it (``goal_dims``), and the end effector before it is the forward
    kinematics of ``q`` (``derived_dims``)."""

    env_id = ENV_ID
    goal_dims = 3
    derived_dims = 3

    def derive(self, state):
        return self.env.kinematics(state[..., : self.env.kinematics.dof])

    def bounds(self):
        return self.env.model_bounds

    def reward(self, obs, act, next_obs):
        return self.env.reward_fn(obs, act, next_obs)
