"""Tasks: batched torch rewards and terminations of gymnasium environments, by env id.

    task = task_for(env)                       # None for an id without a task
    task.reward(obs, act, next_obs)            # [B], equal to the env's reward
    task.termination_fn                        # bool [B] function, or None
    env = make_env("HalfCheetah-v5")           # gym.make with what the task needs

Registered: ArmReach and gymnasium's MuJoCo tasks (:mod:`mbrl_control.tasks.gym_mujoco`).
:func:`mbrl_control.train_mbrl` finds an env's task by its id; a user's own env passes its
own ``reward_fn`` (and ``termination_fn``).
"""

from mbrl_control.tasks import arm, gym_mujoco  # noqa: F401  (defining a task registers it)
from mbrl_control.tasks.base import TASKS, Task, env_id, make_env, model_layout, task_for

__all__ = ["TASKS", "Task", "env_id", "make_env", "model_layout", "task_for"]
