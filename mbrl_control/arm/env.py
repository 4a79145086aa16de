"""``ArmReach``: the simulated arm reaching for targets, as a gymnasium environment."""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np

from mbrl_control.arm.kinematics import ForwardKinematics
from mbrl_control.arm.model import CAMERA, COLLISION_GROUP
from mbrl_control.arm.commands import JointTargets
from mbrl_control.arm.reach import EE, ReachConfig, observe, reach_reward, state_bounds
from mbrl_control.arm.sim import ArmSim, SimConfig
from mbrl_control.config import split_overrides


class ArmReach(gym.Env):
    """Move the end effector of a 5-DoF low-cost arm to a target.

    Observation (float64, 16 = 5 + 5 + 3 + 3)::

        [0:5]    joint positions (rad), measured: shoulder_pan, shoulder_lift,
                 elbow_flex, wrist_flex, wrist_roll
        [5:10]   joint velocities (rad/s), measured
        [10:13]  end-effector position (m), base frame: the forward kinematics of the
                 measured joint positions, as a real arm computes it from its encoders
        [13:16]  target position (m), base frame

    Action (float32, 5), in [-1, 1]: change of each joint's position target, scaled by
    ``max_joint_step`` (rad per control tick). Targets accumulate from the previous
    command and are kept inside the joint limits.

    Reward: ``-‖fk(q) - target‖ - action_cost·‖a‖²`` with ``fk`` the arm's forward
    kinematics (``self.kinematics``; :func:`mbrl_control.arm.reach.reach_reward`), also
    exposed as ``reward_fn`` for planners: ``reward_fn(obs, act, next_obs)`` batched over
    numpy arrays or torch tensors, so a planner scores a predicted state by its predicted
    joints. ``info["success"]`` is true while the
    end effector is within ``success_distance`` of the target; ``info["distance"]`` gives
    the true distance. ``goal_dims = 3``: the target is the observation's goal part, which
    learned dynamics models carry through instead of predicting. Episodes never
    terminate; they truncate after ``episode_length`` ticks. Each reset draws a new target in the reachable workspace: the end effector of
    a random collision-free pose, above the table and away from the base.

    Args:
        sim: settings of the simulated arm (noise, latency, deadband, payload, rates).
        task: settings of the reaching task.
        render_mode: ``"rgb_array"`` or None.
        **overrides: any field of :class:`SimConfig` or :class:`ReachConfig` by name, so
            ``gymnasium.make("mbrl_control/ArmReach-v0", action_latency=2)`` works.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        sim: SimConfig | None = None,
        task: ReachConfig | None = None,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        sim_overrides, task_overrides = split_overrides(overrides, SimConfig, ReachConfig)
        self.sim_config = (sim or SimConfig()).replace(**sim_overrides)
        self.config = (task or ReachConfig()).replace(**task_overrides)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode = {render_mode!r}: supported modes are {self.metadata['render_modes']}")
        self.render_mode = render_mode
        self.sim = ArmSim(self.sim_config)
        self.metadata = {**self.metadata, "render_fps": self.sim_config.control_rate}
        n = self.sim.n_joints
        self.kinematics = ForwardKinematics(self.sim.description, self.sim_config.ee_link)
        self.reward_fn = functools.partial(reach_reward, action_cost=self.config.action_cost, kinematics=self.kinematics)
        self.termination_fn = None
        self.goal_dims = 3  # the target closes the observation; dynamics models carry it through

        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)
        reach = 1.0  # m; every link origin lies within a metre of the base
        slack = 0.1  # rad; measured positions may stray past the limits by the encoder noise
        max_velocity = 10.0 * self.sim.velocity_limits  # well above what a servo can reach
        low = np.concatenate([self.sim.description.lower - slack, -max_velocity, np.full(6, -reach)])
        high = np.concatenate([self.sim.description.upper + slack, max_velocity, np.full(6, reach)])
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float64)

        self.targets = JointTargets(self.sim.command_low, self.sim.command_high, self.config.max_joint_step)
        self._steps = 0
        self._last_obs: np.ndarray | None = None
        self._renderer = None

    # -- gymnasium API -------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.sim.rng = self.np_random
        noise = self.config.initial_pose_noise
        q0 = self.np_random.uniform(-noise, noise, size=self.sim.n_joints)
        self.sim.reset(q0, self.sample_target())
        self.targets.reset(self.sim.joint_positions)
        self._steps = 0
        obs = self._observe()
        return obs, self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._last_obs is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape or not np.all(np.isfinite(action)):
            raise ValueError(f"action must be {self.action_space.shape} and finite, got {action!r}")
        obs = self._last_obs
        self.sim.step(self.targets.step(action))
        self._steps += 1
        next_obs = self._observe()
        reward = float(self.reward_fn(obs, action, next_obs))
        truncated = self._steps >= self.config.episode_length
        return next_obs, reward, False, truncated, self._info()

    def render(self) -> np.ndarray | None:
        """An RGB image [480, 640, 3] of the arm from the overview camera."""
        if self.render_mode != "rgb_array":
            return None
        import mujoco

        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.sim.model, height=480, width=640)
            self._scene_option = mujoco.MjvOption()
            self._scene_option.geomgroup[COLLISION_GROUP] = False
        self._renderer.update_scene(self.sim.data, camera=CAMERA, scene_option=self._scene_option)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # -- task ----------------------------------------------------------------------------
    def sample_target(self, max_tries: int = 1000) -> np.ndarray:
        """A reachable target [3]: the end effector of a random collision-free pose that
        lies at least ``target_min_height`` above the table and ``target_min_radius``
        from the base axis. Uses ``self.np_random``."""
        cfg = self.config
        for _ in range(max_tries):
            q = self.np_random.uniform(self.sim.command_low, self.sim.command_high)
            ee, touches = self.sim.forward_kinematics(q)
            if not touches and ee[2] >= cfg.target_min_height and np.hypot(ee[0], ee[1]) >= cfg.target_min_radius:
                return ee
        raise RuntimeError(
            f"no reachable target found in {max_tries} tries: target_min_height={cfg.target_min_height}, "
            f"target_min_radius={cfg.target_min_radius} leave no workspace"
        )

    def sample_goal(self) -> np.ndarray:
        """A goal [goal_dims] from the task's distribution (:meth:`sample_target`), for
        learners that imagine episodes with new goals."""
        return self.sample_target()

    @property
    def model_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Where a dynamics model's learned entries ``[q, q̇]`` stay: ``q`` within the joint limits."""
        return state_bounds(self.sim.description.lower, self.sim.description.upper)

    @staticmethod
    def achieved_goal(obs: np.ndarray) -> np.ndarray:
        """The goal [..., goal_dims] that ``obs`` [..., obs_dim] has reached: its end
        effector, for learners that relabel episodes in hindsight."""
        return obs[..., EE]

    def _observe(self) -> np.ndarray:
        q, qd = self.sim.measure()
        self._last_obs = observe(self.kinematics, q, qd, self.sim.target)
        return self._last_obs.copy()

    def _info(self) -> dict[str, Any]:
        d = float(np.linalg.norm(self.sim.ee_position - self.sim.target))
        return {"distance": d, "success": d < self.config.success_distance}
