"""Forward kinematics from the URDF: the simulator's end effector, in numpy and torch."""

import numpy as np
import pytest
import torch

from mbrl_control.arm.kinematics import ForwardKinematics
from mbrl_control.arm.sim import ArmSim, SimConfig
from mbrl_control.resources import default_urdf


@pytest.fixture(scope="module")
def sim():
    return ArmSim()


def random_poses(sim, count, seed=0):
    return np.random.default_rng(seed).uniform(sim.description.lower, sim.description.upper, size=(count, sim.n_joints))


def test_matches_the_simulators_end_effector(sim):
    fk = ForwardKinematics(sim.description, "tcp")
    poses = random_poses(sim, 40)
    expected = np.array([sim.forward_kinematics(q)[0] for q in poses])
    np.testing.assert_allclose(fk(poses), expected, atol=1e-12)
    as32 = fk(torch.from_numpy(poses).float().view(4, 10, -1))
    assert as32.shape == (4, 10, 3) and as32.dtype == torch.float32
    np.testing.assert_allclose(as32.reshape(-1, 3).numpy(), expected, atol=1e-6)


def test_gradient_is_the_end_effector_jacobian(sim):
    fk = ForwardKinematics(sim.description, "tcp")
    q = torch.from_numpy(random_poses(sim, 1, seed=3)[0])
    jacobian = torch.autograd.functional.jacobian(fk, q)  # [3, n]
    np.testing.assert_allclose(jacobian.numpy(), sim.ee_jacobian(q.numpy()), atol=1e-9)


def test_follows_origins_rotations_and_tilted_axes_of_another_urdf(tmp_path):
    """rpy and an unnormalised, tilted axis: the same numbers as MuJoCo's URDF import."""
    text = default_urdf().read_text()
    text = text.replace('<origin xyz="0 0 0.11" rpy="0 0 0"/>\n    <axis xyz="0 1 0"/>',
                        '<origin xyz="0.01 -0.02 0.11" rpy="0.3 -0.2 0.5"/>\n    <axis xyz="1 2 0"/>', 1)
    assert 'rpy="0.3 -0.2 0.5"' in text
    edited = tmp_path / "arm.urdf"
    edited.write_text(text)
    sim = ArmSim(SimConfig(urdf=str(edited)))
    fk = ForwardKinematics(sim.description, "tcp")
    poses = random_poses(sim, 20, seed=1)
    np.testing.assert_allclose(fk(poses), [sim.forward_kinematics(q)[0] for q in poses], atol=1e-12)


def test_refuses_a_chain_it_cannot_follow(sim):
    with pytest.raises(KeyError, match="no link named 'nowhere'"):
        ForwardKinematics(sim.description, "nowhere")
    with pytest.raises(ValueError, match="'gripper' .*prismatic.* not an arm joint"):
        ForwardKinematics(sim.description, "left_finger")
    with pytest.raises(ValueError, match=r"\[\.\.\., 5\]"):
        ForwardKinematics(sim.description, "tcp")(np.zeros(4))


def test_a_held_joint_between_commanded_ones_counts_as_fixed(sim):
    """Naming four of the five joints holds the middle one still (folded into its neighbours)."""
    names = sim.joint_names
    held = ArmSim(SimConfig(joints=names[:2] + names[3:]))
    assert [j.name for j in held.description.held_joints] == [names[2]]
    fk = ForwardKinematics(held.description, "tcp")
    poses = random_poses(held, 20, seed=2)
    np.testing.assert_allclose(fk(poses), [held.forward_kinematics(q)[0] for q in poses], atol=1e-12)
    full = np.insert(poses, 2, held.description.hold_position(held.description.held_joints[0]), axis=1)
    np.testing.assert_allclose(fk(poses), ForwardKinematics(sim.description, "tcp")(full), atol=1e-12)
