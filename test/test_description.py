"""The URDF is a valid description of the arm, and the MuJoCo model is built from it."""

import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

from mbrl_control.arm.description import load_description
from mbrl_control.arm.model import EE_SITE
from mbrl_control.arm.servos import servo_profile
from mbrl_control.arm.sim import ArmSim, SimConfig
from mbrl_control.resources import default_urdf

ARM_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll")


@pytest.fixture(scope="module")
def description():
    return load_description(default_urdf())


@pytest.fixture(scope="module")
def sim():
    return ArmSim()


def test_urdf_is_a_tree_of_known_links(description):
    root = ET.parse(default_urdf()).getroot()
    links = [link.get("name") for link in root.findall("link")]
    assert len(links) == len(set(links)), "link names repeat"
    children = [j.child for j in description.joints]
    assert len(children) == len(set(children)), "a link has two parents"
    roots = set(links) - set(children)
    assert roots == {"base_link"}, f"expected one root link, got {roots}"
    joint_names = [j.name for j in description.joints]
    assert len(joint_names) == len(set(joint_names))


def test_urdf_describes_a_5dof_bus_servo_arm_with_parallel_gripper(description):
    assert description.arm_joint_names == ARM_JOINTS
    for joint in description.arm_joints:
        assert joint.type == "revolute"
        assert joint.lower < 0 < joint.upper
        assert 2.0 <= joint.effort <= 3.0, f"{joint.name}: bus-servo effort is 2–3 N·m"
        assert 2.0 <= joint.velocity <= 8.0
    (gripper,) = description.gripper_joints
    mirror = description.joint("gripper_mirror")
    assert gripper.type == mirror.type == "prismatic" and mirror.mimic == "gripper"


def test_urdf_masses_and_inertias_are_physical():
    root = ET.parse(default_urdf()).getroot()
    total = 0.0
    for link in root.findall("link"):
        inertial = link.find("inertial")
        if inertial is None:
            continue
        mass = float(inertial.find("mass").get("value"))
        attrs = inertial.find("inertia").attrib
        inertia = np.array(
            [[float(attrs["ixx"]), float(attrs["ixy"]), float(attrs["ixz"])],
             [float(attrs["ixy"]), float(attrs["iyy"]), float(attrs["iyz"])],
             [float(attrs["ixz"]), float(attrs["iyz"]), float(attrs["izz"])]]
        )
        principal = np.linalg.eigvalsh(inertia)
        assert mass > 0 and np.all(principal > 0), link.get("name")
        a, b, c = principal
        assert a + b >= c * (1 - 1e-6), f"{link.get('name')}: inertia violates the triangle inequality"
        total += mass
    assert 0.5 < total < 2.0, f"a low-cost desktop arm weighs about a kilogram, got {total} kg"


def test_links_are_about_a_decimetre(sim):
    positions = {name: sim.model.body(name).pos for name in ("upper_arm_link", "forearm_link", "wrist_link")}
    for name in ("forearm_link", "wrist_link"):
        # a body's pos is its joint's offset from the parent: the parent's length
        assert 0.03 <= np.linalg.norm(positions[name]) <= 0.15


def test_mujoco_model_matches_the_urdf(description, sim):
    model = sim.model
    assert model.opt.timestep == pytest.approx(1 / 500)
    for joint in description.joints:
        if joint.type == "fixed":
            continue
        mj = model.joint(joint.name)
        np.testing.assert_allclose(model.jnt_range[mj.id], [joint.lower, joint.upper])
        assert model.jnt_limited[mj.id]
    for joint in description.arm_joints + description.gripper_joints:
        actuator = model.actuator(joint.name)
        assert model.actuator_trnid[actuator.id, 0] == model.joint(joint.name).id
        effort, _ = servo_profile(SimConfig().servo).limits(joint)  # the servo's stall torque, not the URDF's effort
        np.testing.assert_allclose(model.actuator_forcerange[actuator.id], [-effort, effort])
        np.testing.assert_allclose(model.actuator_ctrlrange[actuator.id], [joint.lower, joint.upper])
        assert model.actuator_biastype[actuator.id] == mujoco.mjtBias.mjBIAS_AFFINE  # a position servo
    assert model.nu == 6
    root = ET.parse(default_urdf()).getroot()
    for link in root.findall("link"):
        inertial = link.find("inertial")
        if inertial is not None:
            assert model.body(link.get("name")).mass[0] == pytest.approx(float(inertial.find("mass").get("value")))
    # the mimic joint became an equality constraint between the fingers
    assert model.neq == 1 and model.eq_type[0] == mujoco.mjtEq.mjEQ_JOINT
    assert model.site(EE_SITE).bodyid == model.body("tcp").id


def test_model_follows_a_different_urdf(tmp_path):
    """No second copy of the kinematics: editing the URDF changes the simulation."""
    text = default_urdf().read_text().replace('<limit lower="-2.0" upper="2.0"', '<limit lower="-1.0" upper="1.5"')
    edited = tmp_path / "arm.urdf"
    edited.write_text(text)
    sim = ArmSim(SimConfig(urdf=str(edited)))
    np.testing.assert_allclose(sim.model.jnt_range[sim.model.joint("shoulder_pan").id], [-1.0, 1.5])


@pytest.mark.parametrize(
    "text, reason",
    [
        ("<robot name='x'><link name='a'/>", "XML error"),
        ("<notrobot/>", "not a URDF"),
        (
            "<robot name='x'><link name='a'/><link name='b'/><joint name='j' type='revolute'>"
            "<parent link='a'/><child link='b'/></joint></robot>",
            "has no <limit>",
        ),
        (
            "<robot name='x'><link name='a'/><joint name='j' type='revolute'><parent link='a'/>"
            "<child link='c'/><limit lower='0' upper='1' effort='1' velocity='1'/></joint></robot>",
            "unknown link",
        ),
        (
            "<robot name='x'><link name='a'/><link name='b'/><joint name='j' type='revolute'><parent link='a'/>"
            "<child link='b'/><origin xyz='0 0'/><limit lower='0' upper='1' effort='1' velocity='1'/></joint></robot>",
            "not three numbers",
        ),
        (
            "<robot name='x'><link name='a'/><link name='b'/><joint name='j' type='revolute'><parent link='a'/>"
            "<child link='b'/><axis xyz='0 0 0'/><limit lower='0' upper='1' effort='1' velocity='1'/></joint></robot>",
            "zero vector",
        ),
    ],
)
def test_bad_urdf_is_refused_naming_file_and_reason(tmp_path, text, reason):
    path = tmp_path / "bad.urdf"
    path.write_text(text)
    with pytest.raises(ValueError, match=reason) as err:
        load_description(path)
    assert str(path) in str(err.value)
