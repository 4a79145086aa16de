"""The safety layer and the message conversions in front of it, on any input (hypothesis):
what goes to the arm is finite, within the joint limits and within the step limit; what
goes into a dataset is finite and of the right shape."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mbrl_control.arm.commands import JointTargets
from mbrl_control.arm.interface import ArmInterface
from mbrl_control.arm.reach import ReachConfig
from mbrl_control.arm.safety import (
    CLAMPED_LIMIT, CLAMPED_STEP, FAILED, HELD_STALE, REFUSED, STOPPED, SafetyConfig, SafetyLayer,
)
from mbrl_control.arm.sim import SimConfig
from mbrl_control.config import ConfigError
from mbrl_control.data.joints import select_joints
from mbrl_control.data.recorder import TransitionRecorder

ARM = ArmInterface.from_configs(SimConfig(), ReachConfig())
N = ARM.n
CONFIG = SafetyConfig(max_step=0.15, max_velocity=3.0, state_timeout=0.25)
DT = 0.05

anything = st.floats(allow_nan=True, allow_infinity=True, width=64)
positions = hnp.arrays(np.float64, N, elements=st.floats(-4.0, 4.0))
proposals = st.one_of(
    st.none(),
    hnp.arrays(np.float64, N, elements=anything),  # NaN, inf, huge
    hnp.arrays(np.float64, st.integers(0, 2 * N), elements=st.floats(-10, 10)),  # wrong sizes
)
# a tick: (seconds since the previous one, joint state or None (none arrived), proposal, e-stop event)
ticks = st.tuples(
    st.floats(0.0, 0.5), st.one_of(st.none(), positions), proposals,
    st.sampled_from([None, None, None, "stop", "reset"]),
)


def within_limits(command: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(command)) and np.all(command >= ARM.low) and np.all(command <= ARM.high))


@settings(max_examples=300, deadline=None)
@given(st.lists(ticks, min_size=1, max_size=40))
def test_every_command_is_finite_within_limits_and_steps_no_more_than_allowed(sequence):
    safety = SafetyLayer(ARM.low, ARM.high, CONFIG)
    now, previous, previous_at, hold, reason = 0.0, None, -np.inf, None, None
    for dt, q, proposal, event in sequence:
        now += dt
        if q is not None:
            safety.measured(q, now)
        if event == "stop":
            safety.estop("test")
        elif event == "reset":
            safety.reset()
        command = safety.command(proposal, now)
        if safety.holding != reason:  # a new hold (or none) begins where the arm is
            hold, reason = None, safety.holding
        if command is None:
            continue
        assert command.shape == (N,) and within_limits(command)
        if safety.holding is not None:  # a hold stays where it began (the arm's measured position)
            assert hold is None or np.array_equal(command, hold)
            hold = command
        else:
            if previous is not None and now - previous_at <= CONFIG.state_timeout:
                step = min(CONFIG.max_step, CONFIG.max_velocity * (now - previous_at))
                assert np.all(np.abs(command - previous) <= step + 1e-12)
        previous, previous_at = command, now


@settings(max_examples=200, deadline=None)
@given(positions, st.lists(hnp.arrays(np.float64, N, elements=anything), min_size=1, max_size=20))
def test_actions_of_any_value_integrate_into_commands_within_limits(q, actions):
    """JointTargets (what the planner integrates) then the safety layer: NaN actions hold."""
    targets, safety = ARM.targets(), SafetyLayer(ARM.low, ARM.high, CONFIG)
    safety.measured(q, 0.0)
    targets.reset(q)
    for k, action in enumerate(actions):
        command = safety.command(targets.step(action), k * DT)
        assert command is not None and within_limits(command)
        targets.reset(command)
        assert within_limits(targets.command)


def test_the_watchdog_holds_the_last_measured_position_and_resumes_on_a_fresh_state():
    safety = SafetyLayer(ARM.low, ARM.high, CONFIG)
    q = np.full(N, 0.3)
    safety.measured(q, 0.0)
    assert np.allclose(safety.command(q + 0.05, 0.05), q + 0.05)
    held = safety.command(q + 0.1, 0.4)  # 0.4 s since the state > 0.25 s
    assert safety.holding == HELD_STALE and np.array_equal(held, q)
    assert np.array_equal(safety.command(None, 0.45), q)  # held without a proposal too
    safety.measured(q + 0.02, 0.5)
    resumed = safety.command(q + 0.04, 0.55)
    assert safety.holding is None and np.allclose(resumed, q + 0.04)
    assert safety.interventions[HELD_STALE] == 2


def test_the_estop_latches_until_reset_and_holds_where_the_arm_was():
    safety = SafetyLayer(ARM.low, ARM.high, CONFIG)
    q = np.full(N, 0.2)
    safety.measured(q, 0.0)
    safety.estop("button")
    safety.estop("second")  # the first reason stays
    for k in range(1, 5):  # the arm keeps reporting states (it sags): the hold stays put
        safety.measured(q - 0.01 * k, k * DT)
        assert np.array_equal(safety.command(q + 0.1, k * DT), q) and safety.holding == STOPPED
    assert safety.stop_reason == "button"
    assert safety.reset() == "button" and safety.reset() is None
    after = safety.command(q, 5 * DT)
    assert safety.holding is None and np.all(np.abs(after - q) <= CONFIG.max_step + 1e-12)


def test_clamps_are_counted_by_reason_and_bad_proposals_hold():
    safety = SafetyLayer(ARM.low, ARM.high, CONFIG)
    q = ARM.high - 0.05
    safety.measured(q, 0.0)
    command = safety.command(q + 1.0, DT)  # beyond the limits and far beyond the step
    assert np.array_equal(command, ARM.high)
    assert safety.interventions[CLAMPED_LIMIT] == 1 and safety.interventions[CLAMPED_STEP] == 1
    command = safety.command(q - 1.0, 2 * DT)
    assert np.allclose(command, ARM.high - CONFIG.max_step)  # one step from the previous command
    for bad in (np.full(N, np.nan), np.ones(N + 1), np.array([np.inf] * N)):
        assert np.array_equal(safety.command(bad, 3 * DT), np.clip(q, ARM.low, ARM.high))
    assert safety.interventions[REFUSED] == 3
    assert safety.hold(FAILED, 4 * DT) is not None and safety.interventions[FAILED] == 1


def test_a_new_episode_steps_from_the_measured_joints_and_nothing_is_sent_before_a_state():
    safety = SafetyLayer(ARM.low, ARM.high, CONFIG)
    assert safety.command(np.zeros(N), 0.0) is None and safety.holding is None
    safety.measured(np.full(N, 0.5), 0.0)
    safety.command(np.full(N, 0.5), DT)
    safety.measured(np.zeros(N), 2 * DT)  # the simulator reset the arm
    safety.restart()
    assert np.allclose(safety.command(np.full(N, 0.05), 3 * DT), 0.05)
    with pytest.raises(ValueError, match="finite"):
        safety.measured(np.full(N, np.nan), 0.0)


def test_settings_that_would_disable_it_are_refused():
    for bad in ({"max_step": 0.0}, {"max_step": -1.0}, {"max_velocity": float("inf")}, {"state_timeout": 0.0},
                {"state_timeout": float("nan")}):
        with pytest.raises(ConfigError):
            SafetyConfig(**bad)


values = st.one_of(st.floats(-4.0, 4.0), anything)


@st.composite
def joint_state_names(draw) -> list[str]:
    """The arm's joints and others in any order, sometimes one missing or repeated."""
    names = draw(st.permutations(list(ARM.joint_names) + draw(st.lists(st.sampled_from(["gripper", "other", ""]),
                                                                       max_size=2, unique=True))))
    change = draw(st.sampled_from(["none", "none", "drop", "repeat"]))
    if change == "drop":
        names.pop(draw(st.integers(0, len(names) - 1)))
    elif change == "repeat":
        names.append(draw(st.sampled_from(names)))
    return names


@settings(max_examples=300, deadline=None)
@given(joint_state_names(), st.data())
def test_joint_state_conversion_returns_finite_values_in_order_or_refuses(message_names, data):
    """Any JointState (names in any order, missing, repeated, unknown; arrays of any
    length; NaN/inf): the conversion returns finite [n] arrays in the arm's order or raises
    ValueError with a reason."""
    sizes = {"min_size": len(message_names) - 1, "max_size": len(message_names) + 1}
    position = data.draw(st.lists(values, **sizes))
    velocity = data.draw(st.one_of(st.just([]), st.lists(values, **sizes)))
    try:
        q, qd = select_joints(message_names, position, velocity, ARM.joint_names)
    except ValueError as err:
        assert str(err)
        return
    assert q.shape == qd.shape == (N,) and np.all(np.isfinite(q)) and np.all(np.isfinite(qd))
    for i, name in enumerate(ARM.joint_names):
        assert q[i] == position[message_names.index(name)]


def test_joints_are_mapped_by_name_from_a_reordered_message_with_extra_joints():
    names = ["gripper"] + list(reversed(ARM.joint_names))
    q, qd = select_joints(names, [9.0] + list(range(N)), [], ARM.joint_names)
    assert q.tolist() == list(reversed(range(N))) and qd.tolist() == [0.0] * N


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["state", "command", "target"]),
                          hnp.arrays(np.float64, N, elements=st.floats(-3.0, 3.0))), max_size=60))
def test_the_recorder_only_records_finite_transitions_with_actions_in_bounds(events):
    recorder = TransitionRecorder(ARM.kinematics, JointTargets(ARM.low, ARM.high, ARM.max_joint_step))
    for k, (kind, values) in enumerate(events):
        if kind == "state":
            recorder.state(values, np.zeros(N))
        elif kind == "command":
            recorder.command(values, k * DT)
        else:
            recorder.target(values[:3] * 0.1, k * DT)
    data = recorder.dataset
    assert np.all(np.isfinite(data.obs)) and np.all(np.isfinite(data.next_obs))
    assert np.all(np.abs(data.act) <= 1.0)
