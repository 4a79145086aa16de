"""The arm as the nodes see it: joint states in, commands out.

A node that plans, records or runs a policy needs the same few facts about the arm: the
joints (in the model's order, the URDF chain's, and in the controller's order, which a
ros2_control configuration chooses), the command range, the action scale, the forward
kinematics and the task's reward. :class:`ArmInterface` derives all of them from the
same config fields the simulator uses, so a real arm and the simulated one agree.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
import numpy as np

from mbrl_control.arm.commands import JointTargets
from mbrl_control.arm.description import load_description
from mbrl_control.arm.kinematics import ForwardKinematics
from mbrl_control.arm.reach import ReachConfig, reach_reward, state_bounds
from mbrl_control.arm.sim import SimConfig
from mbrl_control.config import ConfigError
from mbrl_control.resources import default_urdf


@dataclass(frozen=True)
class ArmInterface:
    """Observation and command conventions of one arm.

    Attributes:
        joint_names: the arm joints in URDF chain order: the order of observations and
            actions (n).
        controller_joints: the joints in the order of a command message (a permutation of
            ``joint_names``).
        low, high: [n] command range, the URDF limits less ``limit_margin``.
        lower, upper: [n] the URDF limits: where the joints can be.
        max_joint_step: rad per tick for an action of ±1.
        kinematics: ``q`` [..., n] → end effector [..., 3].
        reward_fn: the reaching task's batched reward (numpy or torch).
    """

    joint_names: tuple[str, ...]
    controller_joints: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    max_joint_step: float
    kinematics: ForwardKinematics
    reward_fn: object = field(repr=False)

    @classmethod
    def from_configs(cls, sim: SimConfig, task: ReachConfig) -> "ArmInterface":
        """From the simulator's arm settings (``urdf``, ``ee_link``, ``joints``,
        ``limit_margin``) and the task's (``max_joint_step``, ``action_cost``): the arm
        joints are those ``joints`` names (default: the chain to ``ee_link``), in chain
        order; commands come in the order of ``joints``.

        Raises:
            ConfigError: ``joints`` names a joint twice or one off the chain, or the margin
                leaves no range.
        """
        try:
            description = load_description(sim.urdf or default_urdf(), sim.ee_link, sim.joints)
        except ValueError as err:
            if not sim.joints:
                raise
            raise ConfigError(f"joints = {list(sim.joints)}: {err}") from None
        names = description.arm_joint_names
        controller = tuple(sim.joints) or names
        low, high = description.lower + sim.limit_margin, description.upper - sim.limit_margin
        if np.any(low >= high):
            raise ConfigError(f"SimConfig.limit_margin = {sim.limit_margin}: leaves no joint range to move in")
        kinematics = ForwardKinematics(description, sim.ee_link)
        reward_fn = functools.partial(reach_reward, action_cost=task.action_cost, kinematics=kinematics)
        return cls(names, controller, low, high, description.lower, description.upper, task.max_joint_step, kinematics, reward_fn)

    @property
    def n(self) -> int:
        return len(self.joint_names)

    @property
    def obs_dim(self) -> int:
        return 2 * self.n + 6

    # the observation [q, q̇, end effector, target]: the target is the goal, the end effector derived from q
    MODEL_LAYOUT = {"goal_dims": 3, "derived_dims": 3}

    def derive(self, state):
        """The end effector [..., 3] from the entries before it (``[q, q̇]`` [..., 2n]): the
        forward kinematics of ``q``, for a dynamics model's derived entries."""
        return self.kinematics(state[..., : self.n])

    @property
    def model_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Where a dynamics model's learned entries ``[q, q̇]`` stay (``bounds``): ``q`` within
        the joint limits."""
        return state_bounds(self.lower, self.upper)

    def targets(self) -> JointTargets:
        """A fresh command state for this arm."""
        return JointTargets(self.low, self.high, self.max_joint_step)

    @functools.cached_property
    def _to_controller(self) -> np.ndarray:
        return np.array([self.joint_names.index(name) for name in self.controller_joints])

    def to_controller(self, command: np.ndarray) -> np.ndarray:
        """A command [n] in chain order → the controller's order."""
        return np.asarray(command)[self._to_controller]

    def from_controller(self, command: np.ndarray) -> np.ndarray:
        """A command [n] in the controller's order → chain order."""
        result = np.empty(self.n)
        result[self._to_controller] = command
        return result
