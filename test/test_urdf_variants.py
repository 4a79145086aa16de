"""A maker's URDF works as its CAD exporter wrote it (test/urdf/, one file per case): the end
effector a dummy link on a fixed joint, the gripper a revolute jaw, a prismatic pair with or
without <mimic>, or absent; meshes by relative path or package:// URI; placeholder limits."""

import shutil

import numpy as np
import pytest
from transforms3d.euler import euler2mat

from mbrl_control.arm.description import load_description
from mbrl_control.arm.env import ArmReach
from mbrl_control.arm.interface import ArmInterface
from mbrl_control.arm.kinematics import ForwardKinematics
from mbrl_control.arm.meshes import MeshError
from mbrl_control.arm.model import EE_SITE
from mbrl_control.arm.reach import ReachConfig
from mbrl_control.arm.servos import KG_CM
from mbrl_control.arm.sim import ArmSim, SimConfig
from mbrl_control.config import ConfigError

from pathlib import Path

URDFS = Path(__file__).parent / "urdf"
EE = "gripper_frame_link"
ARM_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll")
CASES = {  # file: the gripper joints the stack must find (mimic followers are not among them)
    "cad_jaw.urdf": ("gripper",),
    "cad_mimic.urdf": ("left_finger",),
    "cad_pair.urdf": ("left_finger", "right_finger"),
    "cad_no_gripper.urdf": (),
}


def urdf_pose(description, q: np.ndarray) -> np.ndarray:
    """The 4×4 pose of ``ee_link`` in the root frame, multiplied out joint by joint from the
    URDF (a second, plain implementation to check MuJoCo's import and the kinematics)."""
    names = description.arm_joint_names
    T = np.eye(4)
    for joint in description.chain(description.ee_link):
        origin = np.eye(4)
        origin[:3, :3], origin[:3, 3] = euler2mat(*joint.rpy, axes="sxyz"), joint.xyz
        motion = np.eye(4)
        if joint.type != "fixed":
            a, angle = np.array(joint.axis), q[names.index(joint.name)]
            K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
            motion[:3, :3] = np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K
        T = T @ origin @ motion
    return T


@pytest.mark.parametrize("name", CASES)
def test_cad_urdf_loads_and_sim_env_kinematics_agree(name):
    config = SimConfig(urdf=str(URDFS / name), ee_link=EE)
    sim = ArmSim(config)
    assert sim.joint_names == ARM_JOINTS
    assert tuple(j.name for j in sim.description.gripper_joints) == CASES[name]
    kinematics = ForwardKinematics(sim.description, EE)
    rng = np.random.default_rng(0)
    sim.reset(np.zeros(5), np.array([0.2, 0.0, 0.1]))
    for _ in range(10):  # the arm moving under commands, grippers held
        sim.step(rng.uniform(sim.command_low, sim.command_high))
        q = sim.joint_positions
        T = urdf_pose(sim.description, q)
        np.testing.assert_allclose(sim.ee_position, T[:3, 3], atol=1e-9)
        np.testing.assert_allclose(sim.data.site_xmat[sim.model.site(EE_SITE).id].reshape(3, 3), T[:3, :3], atol=1e-9)
        np.testing.assert_allclose(kinematics(q), T[:3, 3], atol=1e-9)
    assert np.all(np.isfinite(sim.gripper_positions)) and sim.gripper_positions.shape == (len(CASES[name]),)

    env = ArmReach(sim=config)
    interface = ArmInterface.from_configs(config, ReachConfig())
    assert interface.joint_names == env.sim.joint_names == ARM_JOINTS
    obs, _ = env.reset(seed=1)
    for _ in range(5):
        obs, *_ = env.step(env.action_space.sample())
        q = obs[:5]
        np.testing.assert_allclose(obs[10:13], urdf_pose(env.sim.description, q)[:3, 3], atol=1e-9)
        np.testing.assert_allclose(interface.derive(obs[:10]), obs[10:13], atol=1e-9)


def test_placeholder_limits_give_way_to_the_servo_profile():
    path = str(URDFS / "cad_jaw.urdf")
    assert all(j.effort == 10 and j.velocity == 10 for j in load_description(path, EE).arm_joints)
    sim = ArmSim(SimConfig(urdf=path, ee_link=EE))  # servo: sts3215 by default
    for name in ARM_JOINTS + ("gripper",):
        np.testing.assert_allclose(sim.model.actuator_forcerange[sim.model.actuator(name).id], [-30 * KG_CM, 30 * KG_CM])
    np.testing.assert_allclose(sim.velocity_limits, np.pi / 3 / 0.222)
    as_written = ArmSim(SimConfig(urdf=path, ee_link=EE, servo="urdf"))
    np.testing.assert_allclose(as_written.model.actuator_forcerange[as_written.model.actuator("elbow_flex").id], [-10, 10])
    np.testing.assert_allclose(as_written.velocity_limits, 10.0)
    with pytest.raises(ConfigError, match="servo = 'sts9999'.*must be one of"):
        SimConfig(servo="sts9999")


def test_a_wrong_end_effector_is_refused_with_the_candidates():
    with pytest.raises(ValueError, match="no link named 'tcp'.*gripper_frame_link, moving_jaw_link"):
        load_description(URDFS / "cad_jaw.urdf")  # the default ee_link, which a CAD export does not have
    with pytest.raises(ValueError, match="'left_finger' .*prismatic.*finger"):
        load_description(URDFS / "cad_pair.urdf", "left_finger_link")
    with pytest.raises(ValueError, match="'right_finger' .*mimics 'left_finger'"):
        load_description(URDFS / "cad_mimic.urdf", "right_finger_link")


def test_package_meshes_resolve_through_the_search_path(tmp_path, monkeypatch):
    """A URDF away from its description package finds it through ROS_PACKAGE_PATH, and
    says where it looked when it cannot."""
    shutil.copy(URDFS / "cad_mimic.urdf", tmp_path / "arm.urdf")
    monkeypatch.delenv("ROS_PACKAGE_PATH", raising=False)
    monkeypatch.delenv("AMENT_PREFIX_PATH", raising=False)
    with pytest.raises(MeshError, match="package://test_arm_description/meshes/link.obj.*ROS_PACKAGE_PATH"):
        ArmSim(SimConfig(urdf=str(tmp_path / "arm.urdf"), ee_link=EE))
    monkeypatch.setenv("ROS_PACKAGE_PATH", str(URDFS))
    sim = ArmSim(SimConfig(urdf=str(tmp_path / "arm.urdf"), ee_link=EE))
    assert sim.model.nmesh == 1 and sim.model.mesh_vertnum[0] == 8


def test_a_missing_or_unreadable_mesh_is_named(tmp_path):
    text = (URDFS / "cad_jaw.urdf").read_text()
    (tmp_path / "missing.urdf").write_text(text)  # no assets/ beside it
    with pytest.raises(MeshError, match=r"mesh 'assets/link.stl' not found; looked in .*missing"):
        ArmSim(SimConfig(urdf=str(tmp_path / "missing.urdf"), ee_link=EE))
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "link.dae").write_text("<COLLADA/>")
    (tmp_path / "dae.urdf").write_text(text.replace("assets/link.stl", "assets/link.dae"))
    with pytest.raises(MeshError, match=r"\.dae; MuJoCo reads \.stl, \.obj"):
        ArmSim(SimConfig(urdf=str(tmp_path / "dae.urdf"), ee_link=EE))


def test_check_urdf_prints_what_the_stack_will_use(capsys):
    from mbrl_control.cli import main

    assert main(["check-urdf", str(URDFS / "cad_mimic.urdf"), "--ee-link", EE]) == 0
    out = capsys.readouterr().out
    rows = [line.split()[1] for line in out.splitlines() if line[:3].strip().isdigit()]
    assert rows == list(ARM_JOINTS), out
    assert "right_finger = 1·left_finger + 0" in out and "left_finger (prismatic" in out
    assert "effort=10 velocity=10: placeholders" in out and "sts3215" in out
    assert "a frame on fixed joint 'gripper_frame_joint'" in out and "OK:" in out
    assert main(["check-urdf", str(URDFS / "cad_jaw.urdf")]) == 1  # no ee_link 'tcp' there
    assert "gripper_frame_link, moving_jaw_link" in capsys.readouterr().out


def test_links_a_joint_connects_never_collide_even_on_a_fixed_base(tmp_path):
    """CAD meshes of a base and the shoulder it carries interpenetrate at the joint (the
    SO-101's do); MuJoCo filters parent-child contacts except against the world's bodies."""
    text = (URDFS / "cad_jaw.urdf").read_text().replace('<origin xyz="0.0388 0 0.12"', '<origin xyz="0 0 0.1"')
    (tmp_path / "assets").mkdir()
    shutil.copy(URDFS / "assets" / "link.stl", tmp_path / "assets" / "link.stl")
    (tmp_path / "arm.urdf").write_text(text)
    sim = ArmSim(SimConfig(urdf=str(tmp_path / "arm.urdf"), ee_link=EE))
    _, touches = sim.forward_kinematics(np.zeros(5))
    assert not touches
    rng = np.random.default_rng(0)
    free = np.mean([not sim.forward_kinematics(q)[1] for q in rng.uniform(sim.command_low, sim.command_high, (100, 5))])
    assert free > 0.5, free


def test_joints_choose_the_arm_joints_and_the_rest_of_the_chain_holds(tmp_path):
    """``joints`` names the joints to command (in the command order); the chain's others
    hold at zero in the simulator and count as fixed there in the kinematics."""
    order = ("elbow_flex", "shoulder_pan", "shoulder_lift", "wrist_flex")  # wrist_roll held
    config = SimConfig(urdf=str(URDFS / "cad_jaw.urdf"), ee_link=EE, joints=order)
    sim = ArmSim(config)
    assert sim.joint_names == ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex")  # chain order
    interface = ArmInterface.from_configs(config, ReachConfig())
    assert interface.controller_joints == order and interface.obs_dim == 2 * 4 + 6
    rng = np.random.default_rng(0)
    roll = sim.model.joint("wrist_roll").qposadr[0]
    for _ in range(10):
        sim.step(rng.uniform(sim.command_low, sim.command_high))
        assert abs(sim.data.qpos[roll]) < 0.01  # held
        full = np.insert(sim.joint_positions, 4, sim.data.qpos[roll])
        np.testing.assert_allclose(interface.kinematics(sim.joint_positions), urdf_pose(load_description(config.urdf, EE), full)[:3, 3], atol=1e-4)
        np.testing.assert_allclose(sim.forward_kinematics(sim.joint_positions)[0], interface.kinematics(sim.joint_positions), atol=1e-9)
    env = ArmReach(sim=config)
    assert env.observation_space.shape == (14,) and env.action_space.shape == (4,)
    with pytest.raises(ConfigError, match=r"\['gripper'\] are not on the chain"):
        ArmInterface.from_configs(config.replace(joints=("shoulder_pan", "gripper")), ReachConfig())
    with pytest.raises(ValueError, match="names a joint twice"):
        ArmSim(config.replace(joints=("shoulder_pan", "shoulder_pan")))
