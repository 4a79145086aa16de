"""Build the MuJoCo model of the arm from its URDF with ``mujoco.MjSpec``.

The URDF gives the kinematics, inertias, joint limits, damping, friction and the
gripper's mimic coupling; this module adds what a URDF cannot say: position-servo
actuators (force-limited by the servo profile's stall torque,
:mod:`mbrl_control.arm.servos`), servo armature, the end-effector site, a target marker,
a table to make contact with, lights, a camera, and an optional payload.

The URDF is read as its maker wrote it: meshes by relative path or ``package://`` URI
(:mod:`mbrl_control.arm.meshes`), and links on fixed joints kept as bodies (MuJoCo's URDF
import would fuse them into their parent, and the end effector is usually one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mujoco
import numpy as np

from mbrl_control.arm.description import ArmDescription
from mbrl_control.arm.meshes import resolve_mesh
from mbrl_control.arm.servos import servo_profile

if TYPE_CHECKING:
    from mbrl_control.arm.sim import SimConfig

EE_SITE = "ee"
TARGET_BODY = "target"
CAMERA = "overview"
COLLISION_GROUP = 0  # URDF <collision> geoms; hidden in renders
VISUAL_GROUP = 2  # geoms this module adds for the scene


def build_spec(description: ArmDescription, config: "SimConfig") -> mujoco.MjSpec:
    """The arm's MjSpec: the URDF plus servos, sites, table and scene.

    Raises:
        ValueError: the URDF has no link named ``config.ee_link``.
        MeshError: a mesh cannot be found or read.
    """
    spec = mujoco.MjSpec.from_file(str(description.path))
    spec.compiler.fusestatic = False
    for mesh in spec.meshes:
        mesh.file = str(resolve_mesh(mesh.file, description.path))
    spec.option.timestep = 1.0 / config.physics_rate
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST

    servo = servo_profile(config.servo)
    for joint in description.arm_joints + description.held_joints + description.gripper_joints:
        effort, _ = servo.limits(joint)
        mj_joint = spec.joint(joint.name)
        mj_joint.armature = config.servo_armature
        # MuJoCo's joint limits are soft: pressed hard (the arm jammed against the table)
        # they yield a little. Make them as stiff as the time step allows (time constant
        # of two steps) and engage them inside the URDF limits, so the give stays inside.
        mj_joint.solref_limit = [2 * spec.option.timestep, 1.0]
        mj_joint.margin = config.limit_margin / 2
        actuator = spec.add_actuator()
        actuator.name = joint.name
        actuator.target = joint.name
        actuator.trntype = mujoco.mjtTrn.mjTRN_JOINT
        actuator.set_to_position(kp=config.servo_kp, kv=config.servo_kv)
        actuator.ctrllimited = True
        actuator.ctrlrange = [joint.lower, joint.upper]
        actuator.forcelimited = True
        actuator.forcerange = [-effort, effort]

    # links a joint connects never collide: MuJoCo skips parent-child pairs itself, except
    # where the parent is fixed to the world (a CAD base's meshes, always touching the
    # shoulder's, made every pose of the SO-101 "collide")
    for joint in description.joints:
        if joint.type != "fixed" and spec.body(joint.parent) is not None:
            spec.add_exclude(bodyname1=joint.parent, bodyname2=joint.child)

    tcp = spec.body(config.ee_link)
    if tcp is None:
        raise ValueError(f"{description.path}: no link named {config.ee_link!r} for the end effector")
    tcp.add_site(name=EE_SITE, size=[0.006, 0, 0], rgba=[0.1, 0.4, 1.0, 1.0])
    if config.payload_mass > 0:
        payload = tcp.add_body(name="payload")
        payload.mass = config.payload_mass
        radius = 0.015
        payload.inertia = [0.4 * config.payload_mass * radius**2] * 3
        payload.explicitinertial = True
        payload.add_geom(
            type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[radius, 0, 0], contype=0, conaffinity=0,
            rgba=[0.6, 0.6, 0.6, 1.0], mass=0, group=VISUAL_GROUP,
        )

    world = spec.worldbody
    world.add_geom(
        name="table", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[1.0, 1.0, 0.05],
        rgba=[0.55, 0.5, 0.45, 1.0], group=VISUAL_GROUP,
    )
    world.add_light(pos=[0.3, -0.3, 1.2], dir=[-0.25, 0.25, -1.0], castshadow=False)
    world.add_light(pos=[-0.4, 0.4, 1.0], dir=[0.4, -0.4, -1.0], castshadow=False)
    world.add_camera(name=CAMERA, pos=CAMERA_POS, xyaxes=_look_at(CAMERA_POS, CAMERA_FOCUS))
    target = world.add_body(name=TARGET_BODY, mocap=True, pos=[0.2, 0.0, 0.1])
    target.add_geom(
        type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.012, 0, 0], contype=0, conaffinity=0,
        rgba=[1.0, 0.2, 0.2, 0.6], group=VISUAL_GROUP,
    )
    return spec


CAMERA_POS = (0.6, -0.6, 0.5)
CAMERA_FOCUS = (0.0, 0.0, 0.17)


def _look_at(position: tuple[float, ...], focus: tuple[float, ...]) -> list[float]:
    """MuJoCo camera ``xyaxes`` [6] looking from ``position`` at ``focus``, z up."""
    forward = np.subtract(focus, position)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return [*right, *up]


def build_model(description: ArmDescription, config: "SimConfig") -> mujoco.MjModel:
    """Compile :func:`build_spec` into an ``MjModel``."""
    return build_spec(description, config).compile()


def joint_qpos_indices(model: mujoco.MjModel, names: tuple[str, ...]) -> np.ndarray:
    """qpos addresses of the named 1-dof joints, shape [len(names)]."""
    return np.array([model.jnt_qposadr[model.joint(n).id] for n in names], dtype=int)


def joint_dof_indices(model: mujoco.MjModel, names: tuple[str, ...]) -> np.ndarray:
    """qvel addresses of the named 1-dof joints, shape [len(names)]."""
    return np.array([model.jnt_dofadr[model.joint(n).id] for n in names], dtype=int)
