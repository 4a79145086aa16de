"""The simulated arm: MuJoCo physics at ``physics_rate``, servo commands at ``control_rate``.

Commands are absolute joint position targets (rad), one per arm joint in URDF chain
order, as a ros2_control position forward-command controller takes them. The options
that make a real low-cost arm hard to model are here, each a config field:
observation noise (servo encoders), action latency (serial bus), servo deadband and a
payload at the gripper.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import mujoco
import numpy as np

from mbrl_control.arm.description import ArmDescription, load_description
from mbrl_control.arm.model import EE_SITE, TARGET_BODY, build_model, joint_dof_indices, joint_qpos_indices
from mbrl_control.arm.servos import SERVOS, servo_profile
from mbrl_control.config import Config, ConfigError, param
from mbrl_control.resources import default_urdf


@dataclass(frozen=True)
class SimConfig(Config):
    """Settings of the simulated arm."""

    urdf: str = param("", "URDF file of the arm; empty for the packaged so_arm5.urdf.", read_only=True)
    ee_link: str = param("tcp", "URDF link whose origin is the end effector (tool centre point); the arm joints are the chain to it.", read_only=True)
    joints: tuple = param((), "Arm joints in the command message's order (default: the revolute joints from the root to ee_link, in chain order); naming some holds the chain's others at 0.", read_only=True)
    servo: str = param("sts3215", "Servo profile for joint torque and speed ('urdf': the URDF's own effort and velocity limits).", choices=tuple(SERVOS), read_only=True)
    physics_rate: float = param(500.0, "Physics integration rate (Hz).", low=100.0, high=5000.0, read_only=True)
    control_rate: float = param(20.0, "Servo command rate (Hz); bus servos run at about 20 Hz.", low=1.0, high=500.0, read_only=True)
    servo_kp: float = param(25.0, "Servo position gain (N·m/rad).", low=0.0, low_exclusive=True, high=1000.0)
    servo_kv: float = param(1.5, "Servo velocity damping (N·m·s/rad); the default overdamps every joint.", low=0.0, high=100.0)
    servo_armature: float = param(0.01, "Reflected rotor inertia of each geared servo (kg·m²).", low=0.0, high=1.0)
    servo_deadband: float = param(0.002, "Position error below which a servo stops driving (rad).", low=0.0, high=0.1)
    action_latency: int = param(0, "Control ticks between sending a command and the servo acting on it.", low=0, high=20)
    joint_position_noise: float = param(0.001, "Std of encoder noise on measured joint positions (rad).", low=0.0, high=0.1)
    joint_velocity_noise: float = param(0.01, "Std of noise on measured joint velocities (rad/s).", low=0.0, high=1.0)
    payload_mass: float = param(0.0, "Mass held at the tool centre point (kg).", low=0.0, high=1.0)
    limit_margin: float = param(0.02, "Commands stay this far inside the URDF joint limits (rad).", low=0.0, high=0.3)
    gripper_opening: float = param(0.01, "Gripper position held while reaching (m for prismatic fingers, rad for a revolute jaw).", low=0.0, high=0.1)

    def check(self) -> None:
        ratio = self.physics_rate / self.control_rate
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ConfigError(
                f"SimConfig.physics_rate / control_rate = {self.physics_rate} / {self.control_rate} "
                "must be a whole number of physics steps per control tick"
            )

    @property
    def substeps(self) -> int:
        """Physics steps per control tick."""
        return round(self.physics_rate / self.control_rate)


class ArmSim:
    """MuJoCo simulation of the arm described by ``config.urdf``.

    Attributes:
        description: the parsed URDF.
        joint_names: the arm joints, in command order (n = 5 for so_arm5).
        velocity_limits: [n] the servos' no-load speed (rad/s), from ``config.servo``.
        command_low, command_high: the range commands are clipped to, shape [n]
            (URDF limits shrunk by ``limit_margin``).
        control_dt: seconds per control tick.
        rng: source of observation noise; the environment reseeds it.
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config = config or SimConfig()
        self.description: ArmDescription = load_description(config.urdf or default_urdf(), config.ee_link, config.joints)
        self.model = build_model(self.description, config)
        self.data = mujoco.MjData(self.model)
        self._scratch = mujoco.MjData(self.model)  # for forward kinematics of hypothetical poses
        self.joint_names = self.description.arm_joint_names
        self.n_joints = len(self.joint_names)
        self._qpos = joint_qpos_indices(self.model, self.joint_names)
        self._qvel = joint_dof_indices(self.model, self.joint_names)
        self._ctrl = np.array([self.model.actuator(n).id for n in self.joint_names])
        gripper = tuple(j.name for j in self.description.gripper_joints)
        chain_held = self.description.held_joints
        mimics = tuple(j for j in self.description.mimic_joints if j.mimic in gripper)
        held = gripper + tuple(j.name for j in chain_held)
        # the joints held still: the gripper's at gripper_opening and the chain's not commanded at
        # their hold position, each by its servo; then the mimics (q = multiplier·q_leader + offset)
        self._held_ctrl = np.array([self.model.actuator(n).id for n in held], dtype=int)
        self._held_qpos = joint_qpos_indices(self.model, held + tuple(j.name for j in mimics))
        self._held = np.array([config.gripper_opening] * len(gripper) + [self.description.hold_position(j) for j in chain_held]
                              + [j.mimic_multiplier * config.gripper_opening + j.mimic_offset for j in mimics])
        self._chain_held_qpos = joint_qpos_indices(self.model, tuple(j.name for j in chain_held))
        self._chain_held = np.array([self.description.hold_position(j) for j in chain_held])
        for joint in self.description.gripper_joints:
            if not joint.lower <= config.gripper_opening <= joint.upper:
                raise ConfigError(
                    f"SimConfig.gripper_opening = {config.gripper_opening}: outside the URDF range "
                    f"[{joint.lower}, {joint.upper}] of joint {joint.name!r}"
                )
        self.command_low = self.description.lower + config.limit_margin
        self.command_high = self.description.upper - config.limit_margin
        if np.any(self.command_low >= self.command_high):
            raise ConfigError(f"SimConfig.limit_margin = {config.limit_margin}: leaves no joint range to move in")
        self._ee = self.model.site(EE_SITE).id
        self._segment = _segments(self.model, self._qpos)
        self._target = self.model.body(TARGET_BODY).mocapid[0]
        self.control_dt = config.substeps * self.model.opt.timestep
        servo = servo_profile(config.servo)
        self.velocity_limits = np.array([servo.limits(j)[1] for j in self.description.arm_joints])
        self._max_slew = self.velocity_limits * self.model.opt.timestep  # rad per physics step
        self._setpoint = np.zeros(self.n_joints)  # where each servo's profile is now
        self._slew = np.zeros(self.n_joints)  # scratch buffer of step()
        self.rng = np.random.default_rng()
        self._pending: deque[np.ndarray] = deque()
        self.reset(np.zeros(self.n_joints), self.target)

    # -- state -------------------------------------------------------------------------
    @property
    def time(self) -> float:
        """Simulated time since reset (s)."""
        return float(self.data.time)

    @property
    def joint_positions(self) -> np.ndarray:
        """True arm joint positions (rad), shape [n]."""
        return self.data.qpos[self._qpos].copy()

    @property
    def joint_velocities(self) -> np.ndarray:
        """True arm joint velocities (rad/s), shape [n]."""
        return self.data.qvel[self._qvel].copy()

    @property
    def gripper_positions(self) -> np.ndarray:
        """Gripper joint positions, in the URDF's order of ``description.gripper_joints``."""
        return self.data.qpos[self._held_qpos[: len(self.description.gripper_joints)]].copy()

    @property
    def ee_position(self) -> np.ndarray:
        """End-effector (tool centre point) position in the base frame (m), shape [3]."""
        return self.data.site_xpos[self._ee].copy()

    @property
    def target(self) -> np.ndarray:
        """Target marker position (m), shape [3]."""
        return self.data.mocap_pos[self._target].copy()

    @target.setter
    def target(self, xyz: np.ndarray) -> None:
        self.data.mocap_pos[self._target] = _finite(xyz, (3,), "target")

    def measure(self) -> tuple[np.ndarray, np.ndarray]:
        """Joint positions and velocities as the servo encoders report them (with noise)."""
        q_std, qd_std = self.config.joint_position_noise, self.config.joint_velocity_noise
        q = self.joint_positions + q_std * self.rng.standard_normal(self.n_joints)
        qd = self.joint_velocities + qd_std * self.rng.standard_normal(self.n_joints)
        return q, qd

    # -- motion ------------------------------------------------------------------------
    def reset(self, joint_positions: np.ndarray, target: np.ndarray) -> None:
        """Place the arm at rest at ``joint_positions`` [n] (clipped to the command range)
        with the target marker at ``target`` [3]; clears pending commands."""
        q = np.clip(_finite(joint_positions, (self.n_joints,), "joint_positions"), self.command_low, self.command_high)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._qpos] = q
        self.data.qpos[self._held_qpos] = self._held
        self.data.ctrl[self._ctrl] = q
        self._setpoint[:] = q
        self.data.ctrl[self._held_ctrl] = self._held[: len(self._held_ctrl)]
        self.target = target
        mujoco.mj_forward(self.model, self.data)
        self._pending = deque([q] * self.config.action_latency)

    def step(self, command: np.ndarray) -> None:
        """Advance one control tick with absolute joint targets ``command`` [n] (rad).

        The command is clipped to ``[command_low, command_high]`` and delayed by
        ``action_latency`` ticks. Each servo then works as a bus servo's firmware does:
        its setpoint moves toward the command at no more than the URDF velocity limit,
        and an overdamped PD loop, its torque saturated at the URDF effort, follows the
        setpoint, not pushing while within ``servo_deadband`` of it.

        Raises:
            ValueError: the command has the wrong shape or is not finite.
        """
        command = np.clip(_finite(command, (self.n_joints,), "command"), self.command_low, self.command_high)
        if self.config.action_latency:
            self._pending.append(command)
            command = self._pending.popleft()
        # Servo torque kp·dead(e) - kv·q̇ with e = setpoint - q and dead(e) = e - clip(e, ±deadband)
        # is MuJoCo's position actuator (kp·(ctrl - q) - kv·q̇) with ctrl = setpoint - clip(e, ±deadband).
        # Clipping by np.maximum/np.minimum in place: np.clip's wrapper costs as much as a physics step.
        deadband, max_slew = self.config.servo_deadband, self._max_slew
        setpoint, slew, qpos, ctrl = self._setpoint, self._slew, self.data.qpos, self.data.ctrl
        for _ in range(self.config.substeps):
            np.subtract(command, setpoint, out=slew)
            np.minimum(np.maximum(slew, -max_slew, out=slew), max_slew, out=slew)
            setpoint += slew
            error = setpoint - qpos[self._qpos]
            np.minimum(np.maximum(error, -deadband, out=error), deadband, out=error)
            ctrl[self._ctrl] = setpoint - error
            mujoco.mj_step(self.model, self.data)
        mujoco.mj_kinematics(self.model, self.data)  # mj_step leaves poses of the state before its last step

    # -- kinematics of hypothetical poses ----------------------------------------------
    def forward_kinematics(self, joint_positions: np.ndarray) -> tuple[np.ndarray, bool]:
        """End-effector position [3] at ``joint_positions`` [n], and whether that pose
        touches the table or itself, with every other joint (the gripper) at its default.
        Does not read or change the simulation state: fingers jammed apart against the
        table in the last episode once made every pose "touch" and target sampling fail.
        Contacts within one rigid segment of the arm (a CAD export's fingers or base
        meshes interpenetrating) are there in every pose and do not count."""
        scratch = self._scratch
        scratch.qpos[:] = self.model.qpos0
        scratch.qpos[self._chain_held_qpos] = self._chain_held
        scratch.qpos[self._qpos] = joint_positions
        mujoco.mj_forward(self.model, scratch)
        pairs = self._segment[self.model.geom_bodyid[scratch.contact.geom]]  # [ncon, 2]
        return scratch.site_xpos[self._ee].copy(), bool(np.any(pairs[:, 0] != pairs[:, 1]))

    def ee_jacobian(self, joint_positions: np.ndarray) -> np.ndarray:
        """∂p_ee/∂q [3, n] at ``joint_positions`` [n]. Does not change the simulation state."""
        self.forward_kinematics(joint_positions)
        jacobian = np.zeros((3, self.model.nv))
        mujoco.mj_jacSite(self.model, self._scratch, jacobian, None, self._ee)
        return jacobian[:, self._qvel]


def _segments(model: mujoco.MjModel, arm_qpos: np.ndarray) -> np.ndarray:
    """For each body [nbody], the body of the innermost arm joint it hangs from (0 for the
    world, the base and what is fixed to them): bodies of one segment move together."""
    moved_by_arm = np.zeros(model.nbody, dtype=bool)
    moved_by_arm[model.jnt_bodyid[np.isin(model.jnt_qposadr, arm_qpos)]] = True
    segment = np.zeros(model.nbody, dtype=int)
    for body in range(1, model.nbody):  # parents come before their children
        segment[body] = body if moved_by_arm[body] else segment[model.body_parentid[body]]
    return segment


def _finite(value: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf: {array}")
    return array
