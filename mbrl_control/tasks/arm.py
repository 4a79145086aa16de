"""The arm's reaching task (``mbrl_control/ArmReach-v0``) in the task registry: its reward
is the env's own ``reward_fn``, which scores a state by the forward kinematics of its
joints (the env's URDF)."""

from __future__ import annotations

from mbrl_control import ENV_ID
from mbrl_control.tasks.base import Task


class ArmReach(Task):
    """Reach a target with the end effector; the target closes the observation."""

    env_id = ENV_ID
    goal_dims = 3

    def reward(self, obs, act, next_obs):
        return self.env.reward_fn(obs, act, next_obs)
