"""The simulator: servos, rates, and each realism option doing what it says."""

import numpy as np
import pytest

from mbrl_control.arm.sim import ArmSim, SimConfig
from mbrl_control.config import ConfigError

POSE = np.array([0.3, 0.6, 0.9, 0.5, 0.2])
TARGET = np.array([0.2, 0.0, 0.1])


def settle(sim: ArmSim, command: np.ndarray, ticks: int) -> None:
    for _ in range(ticks):
        sim.step(command)


def test_rates():
    sim = ArmSim()
    assert sim.config.substeps == 25
    assert sim.control_dt == pytest.approx(0.05)
    sim.reset(POSE, TARGET)
    settle(sim, POSE, 4)
    assert sim.time == pytest.approx(0.2)
    fast = ArmSim(SimConfig(control_rate=50.0))
    assert fast.config.substeps == 10 and fast.control_dt == pytest.approx(0.02)


def test_servos_track_commands_against_gravity():
    sim = ArmSim()
    sim.reset(np.zeros(5), TARGET)
    settle(sim, POSE, 20)
    np.testing.assert_allclose(sim.joint_positions, POSE, atol=0.05)
    assert np.all(np.abs(sim.joint_velocities) < 0.05)


def test_commands_beyond_limits_are_clipped():
    sim = ArmSim()
    sim.reset(np.zeros(5), TARGET)
    settle(sim, np.full(5, 10.0), 30)
    assert np.all(sim.joint_positions <= sim.description.upper)
    assert np.all(sim.joint_positions >= sim.description.lower)


def test_bad_command_is_refused_and_changes_nothing():
    sim = ArmSim()
    sim.reset(POSE, TARGET)
    before = sim.data.qpos.copy()
    with pytest.raises(ValueError, match="NaN"):
        sim.step(np.array([0.0, np.nan, 0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        sim.step(np.zeros(4))
    np.testing.assert_array_equal(sim.data.qpos, before)
    assert sim.time == 0.0


def pan_motion(deadband: float, offset: float) -> float:
    """How far the base (no gravity load) moves when commanded ``offset`` away."""
    sim = ArmSim(SimConfig(servo_deadband=deadband))
    sim.reset(POSE, TARGET)
    settle(sim, POSE, 10)
    start = sim.joint_positions[0]
    settle(sim, POSE + np.array([offset, 0, 0, 0, 0]), 10)
    return abs(sim.joint_positions[0] - start)


def test_servo_deadband_ignores_small_commands():
    assert pan_motion(deadband=0.01, offset=0.006) < 0.001
    assert pan_motion(deadband=0.0, offset=0.006) > 0.004
    # beyond the deadband the servo moves, stopping within a deadband of the target
    assert 0.02 - 0.01 - 1e-3 < pan_motion(deadband=0.01, offset=0.02) < 0.02 + 1e-3


@pytest.mark.parametrize("latency", [0, 1, 3])
def test_action_latency_delays_the_response(latency):
    sim = ArmSim(SimConfig(action_latency=latency))
    sim.reset(POSE, TARGET)
    goal = POSE + np.array([0.3, 0, 0, 0, 0])
    moved = []
    for _ in range(latency + 1):
        start = sim.joint_positions[0]
        sim.step(goal)
        moved.append(sim.joint_positions[0] - start)
    assert all(abs(m) < 1e-3 for m in moved[:latency])
    assert moved[latency] > 0.05


def test_payload_adds_mass_and_sag():
    horizontal = np.array([0.0, 1.4, 0.2, 0.0, 0.0])

    def sag(payload: float) -> tuple[float, float]:
        sim = ArmSim(SimConfig(payload_mass=payload, servo_deadband=0.0))
        sim.reset(horizontal, TARGET)
        settle(sim, horizontal, 30)
        return float(sim.model.body_mass.sum()), abs(sim.joint_positions[1] - horizontal[1])

    mass_empty, sag_empty = sag(0.0)
    mass_loaded, sag_loaded = sag(0.2)
    assert mass_loaded - mass_empty == pytest.approx(0.2)
    assert sag_loaded > sag_empty + 0.01


def test_observation_noise_has_the_configured_spread():
    sim = ArmSim(SimConfig(joint_position_noise=0.01, joint_velocity_noise=0.05))
    sim.rng = np.random.default_rng(0)
    sim.reset(POSE, TARGET)
    samples = [sim.measure() for _ in range(2000)]
    q = np.array([s[0] for s in samples]) - sim.joint_positions
    qd = np.array([s[1] for s in samples]) - sim.joint_velocities
    np.testing.assert_allclose(q.std(0), 0.01, rtol=0.1)
    np.testing.assert_allclose(qd.std(0), 0.05, rtol=0.1)
    quiet = ArmSim(SimConfig(joint_position_noise=0.0, joint_velocity_noise=0.0))
    quiet.reset(POSE, TARGET)
    np.testing.assert_array_equal(quiet.measure()[0], quiet.joint_positions)


def test_forward_kinematics_leaves_the_state_alone():
    sim = ArmSim()
    sim.reset(POSE, TARGET)
    before = sim.data.qpos.copy()
    ee, touches = sim.forward_kinematics(np.zeros(5))
    np.testing.assert_allclose(ee, [0, 0, 0.425], atol=1e-9)  # straight up: 0.1 + 0.11 + 0.11 + 0.04 + 0.065
    assert not touches
    _, touches = sim.forward_kinematics(np.array([0.0, 1.7, 1.5, 1.0, 0.0]))  # folded into the table
    assert touches
    np.testing.assert_array_equal(sim.data.qpos, before)


def test_hypothetical_poses_ignore_the_grippers_state():
    """Fingers pushed past their limits (jammed against the table) overlap; a pose check
    must not inherit that, or target sampling finds no free pose at all."""
    sim = ArmSim()
    sim.reset(POSE, TARGET)
    for name in ("gripper", "gripper_mirror"):
        sim.data.qpos[sim.model.jnt_qposadr[sim.model.joint(name).id]] = -0.01
    assert not sim.forward_kinematics(POSE)[1]


def test_ee_jacobian_matches_finite_differences():
    sim = ArmSim()
    q, eps = POSE.copy(), 1e-6
    columns = []
    for i in range(5):
        dq = np.zeros(5)
        dq[i] = eps
        columns.append((sim.forward_kinematics(q + dq)[0] - sim.forward_kinematics(q - dq)[0]) / (2 * eps))
    np.testing.assert_allclose(sim.ee_jacobian(q), np.stack(columns, axis=1), atol=1e-6)


@pytest.mark.parametrize(
    "overrides, reason",
    [
        ({"servo_kp": 0.0}, "servo_kp = 0.0: must be > 0"),
        ({"joint_position_noise": -0.1}, "joint_position_noise = -0.1: must be >= 0"),
        ({"action_latency": 1.5}, "action_latency = 1.5: must be an integer"),
        ({"control_rate": float("nan")}, "must be finite"),
        ({"control_rate": 30.0}, "whole number of physics steps"),
        ({"payload_mass": "heavy"}, "must be a number"),
        ({"speed": 2.0}, "unknown setting"),
    ],
)
def test_bad_settings_are_refused_with_a_reason(overrides, reason):
    with pytest.raises(ConfigError, match=reason.replace("(", r"\(")):
        SimConfig().replace(**overrides)


def test_gripper_opening_must_fit_the_urdf():
    with pytest.raises(ConfigError, match="gripper_opening.*outside the URDF range"):
        ArmSim(SimConfig(gripper_opening=0.05))
