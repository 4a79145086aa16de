"""The Feetech bus without hardware: the driver core on the real Feetech SDK against the
emulated bus (a pty answering the protocol for an SO-101-like arm in MuJoCo)."""

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mbrl_control.arm.sim import SimConfig
from mbrl_control.feetech import protocol as P
from mbrl_control.feetech.bus import BusConfig, BusError, FeetechBus
from mbrl_control.feetech.calibration import Calibration, CalibrationError, calibration_for, load_calibration
from mbrl_control.feetech.emulator import EmulatedBus

HERE = Path(__file__).parent
LEROBOT = HERE / "fixtures" / "so101_follower.json"  # a file in LeRobot's layout, as LeRobot writes it
SIM = SimConfig(urdf=str(HERE / "urdf" / "cad_jaw.urdf"), ee_link="gripper_frame_link", joint_position_noise=0.0)
ARM = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll")
TICK = 2 * math.pi / 4096


@pytest.fixture
def calibration():
    return load_calibration(LEROBOT)


@pytest.fixture
def emulated(calibration):
    with EmulatedBus(calibration, SIM) as bus:
        yield bus


@pytest.fixture
def driver(emulated, calibration):
    bus = FeetechBus(BusConfig(port=emulated.port), calibration, ARM).open()
    yield bus
    bus.close()


def read(bus: FeetechBus):
    """A read, retried while it fails with no servo at fault: the emulator shares this
    process (and its GIL) with the SDK's busy wait, and a loaded test machine can delay an
    answer past the SDK's 35 ms timeout (the node, too, reads again on the next tick)."""
    for _ in range(5):
        try:
            return bus.read()
        except BusError:
            if bus.faults:
                raise
    return bus.read()


def settle(bus: FeetechBus, command, seconds: float):
    """Command and read for ``seconds`` (about 100 Hz), as the node does."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        read(bus)
        if command is not None:
            bus.write(np.asarray(command))
        time.sleep(0.01)
    return read(bus)


def test_packets_and_sign_magnitude_registers_round_trip():
    for register, value in ((P.GOAL_POSITION, -1234), (P.HOMING_OFFSET, -2047), (P.PRESENT_LOAD, -1000), (P.PRESENT_LOAD, 999), (P.ID, 7)):
        assert P.decode(P.encode(value, register), register) == value
    assert P.encode(-5, P.HOMING_OFFSET) == (5 | 1 << 11).to_bytes(2, "little")
    packet = P.packet(1, P.READ, bytes([56, 8]))
    assert packet == bytes([0xFF, 0xFF, 1, 4, 2, 56, 8, (~(1 + 4 + 2 + 56 + 8)) & 0xFF])
    assert P.errors(P.ERR_OVERLOAD | P.ERR_OVERHEAT) == ["overheat", "overload"]


def test_lerobot_calibration_reads_as_it_is_and_round_trips(calibration, tmp_path):
    assert calibration.names == ARM + ("gripper",) and calibration.ids == (1, 2, 3, 4, 5, 6)
    assert calibration.joints["wrist_flex"].drive_mode == 1
    # the middle of each range is the joint's zero; drive_mode 1 turns the other way
    np.testing.assert_allclose(calibration.to_radians(np.array([2025, 2020, 1980, 2045 + 100, 2050, 2755])),
                               [0, 0, 0, -100 * TICK, 0, 0], atol=1e-12)
    for path in (tmp_path / "c.json", tmp_path / "c.yaml"):
        assert load_calibration(calibration.save(path)) == calibration
    assert json.loads((tmp_path / "c.json").read_text()) == json.loads(LEROBOT.read_text())


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_ticks_to_radians_and_back_is_exact(data):
    calibration = load_calibration(LEROBOT)
    ticks = np.array([data.draw(st.integers(j.range_min, j.range_max)) for j in calibration.joints.values()])
    np.testing.assert_array_equal(calibration.to_ticks(calibration.to_radians(ticks)), ticks)


@pytest.mark.parametrize("edit, reason", [
    (lambda d: d["elbow_flex"].pop("range_min"), "joint 'elbow_flex': missing range_min"),
    (lambda d: d["elbow_flex"].update(range_min=4000), "range_min 4000 is not below range_max"),
    (lambda d: d["gripper"].update(id=2), "id 2 is also joint 'shoulder_lift'"),
    (lambda d: d["wrist_roll"].update(homing_offset="12"), "homing_offset = '12' is not an integer"),
    (lambda d: d.clear(), "expected a mapping"),
])
def test_a_bad_calibration_is_refused_naming_the_joint(tmp_path, edit, reason):
    data = json.loads(LEROBOT.read_text())
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match=reason):
        load_calibration(path)
    path.write_text("{not json")
    with pytest.raises(CalibrationError, match="cannot read"):
        load_calibration(path)


def test_joint_states_track_the_arm_and_commands_move_it(emulated, driver):
    state = settle(driver, None, 0.5)  # the arm settles where torque caught it
    truth = emulated.joint_positions()
    np.testing.assert_allclose(state.position, [truth[n] for n in driver.names], atol=2 * TICK)
    assert np.all(state.voltage == 12.0) and np.all(state.temperature > 0)
    goal = np.array([0.4, -0.3, 0.5, 0.2, -0.6])
    state = settle(driver, goal, 2.0)
    np.testing.assert_allclose(state.position[:5], goal, atol=0.05)  # the servos got there (less their sag)
    np.testing.assert_allclose([emulated.joint_positions()[n] for n in ARM], state.position[:5], atol=2 * TICK)
    assert not driver.faults


def test_a_calibration_not_written_into_the_servos_still_reads_true(calibration):
    """The servos hold other homing offsets than the file (LeRobot never wrote them): the
    driver reads each servo's offset at start and corrects for it."""
    others = {n: j.homing_offset + 37 * (i + 1) for i, (n, j) in enumerate(calibration.joints.items())}
    with EmulatedBus(calibration, SIM, servo_homing=others) as emulated:
        bus = FeetechBus(BusConfig(port=emulated.port), calibration, ARM).open()
        state = settle(bus, [0.3, 0.2, -0.2, 0.1, 0.5], 1.5)
        np.testing.assert_allclose(state.position[:5], [emulated.joint_positions()[n] for n in ARM], atol=TICK)
        np.testing.assert_allclose(state.position[:5], [0.3, 0.2, -0.2, 0.1, 0.5], atol=0.05)  # the servos sag under gravity (P control)
        bus.close()


def test_a_corrupted_answer_is_reported_and_the_next_read_recovers(emulated, driver):
    emulated.corrupt(1)
    with pytest.raises(BusError, match="sync read failed"):
        driver.read()
    assert driver.failed_reads >= 1 and not driver.faults  # every servo still answers a ping
    read(driver)


@pytest.mark.parametrize("late", [1, 2])
def test_answers_that_come_after_the_sdk_gave_up_do_not_stop_the_bus_opening(emulated, calibration, late):
    """The first answers at start come late (a loaded host): each is then on the wire when
    the next exchange starts, and the SDK would take it for that one's."""
    emulated.delay(late, 0.06)  # the SDK waits ~34 ms for a ping's answer
    bus = FeetechBus(BusConfig(port=emulated.port), calibration, ARM).open()
    state = read(bus)
    assert not bus.faults
    # the arm settles under its just-enabled torque while it is read: within 0.05 rad
    np.testing.assert_allclose([emulated.joint_positions()[n] for n in ARM], state.position[:5], atol=0.05)
    bus.close()


def test_a_servo_that_stops_answering_is_named_and_the_arm_held(emulated, driver):
    settle(driver, [0.3, 0.0, 0.0, 0.0, 0.0], 1.0)
    emulated.silence("elbow_flex")
    with pytest.raises(BusError, match="not answering: elbow_flex"):
        driver.read()
    assert list(driver.faults) == ["elbow_flex"] and "stopped answering" in driver.faults["elbow_flex"].reason
    where = emulated.joint_positions()["elbow_flex"]
    emulated.silence("elbow_flex", False)
    settle(driver, [-0.5, 0.4, 0.4, 0.4, 0.4], 0.5)  # commands do not move a held servo: it holds where it was
    assert emulated.joint_positions()["elbow_flex"] == pytest.approx(where, abs=0.05)  # (it sags as the others move)
    assert emulated.joint_positions()["shoulder_pan"] == pytest.approx(-0.5, abs=0.05)
    assert driver.clear_faults() == ["elbow_flex"]
    settle(driver, [-0.5, 0.4, 0.4, 0.4, 0.4], 1.5)
    assert emulated.joint_positions()["elbow_flex"] == pytest.approx(0.4, abs=0.03)


def test_a_bus_that_takes_no_more_bytes_is_a_bus_error_not_a_hang(emulated, driver):
    """A hung adapter (or an emulator that stopped reading): once the port's buffer is full a
    write would block forever, deaf to SIGINT and SIGTERM; it fails within the write timeout."""
    emulated.deaf.set()
    with pytest.raises(BusError, match="did not go out within"):
        for _ in range(100_000):  # until the pty's buffer is full
            driver.write(np.zeros(len(ARM)))
    emulated.deaf.clear()


def test_an_overloaded_or_hot_servo_is_held_and_reported(emulated, driver):
    emulated.set_error("wrist_flex", P.ERR_OVERLOAD)
    emulated.set_temperature("shoulder_pan", 66)
    state = settle(driver, [0.5, 0.5, 0.5, 0.5, 0.5], 1.0)
    assert "overload" in driver.faults["wrist_flex"].reason
    assert "temperature 66 °C" in driver.faults["shoulder_pan"].reason
    held = {"wrist_flex": 3, "shoulder_pan": 0}
    for name, i in held.items():
        assert abs(state.position[i]) < 0.05, f"{name} moved while held"  # still where it was
    assert state.position[1] == pytest.approx(0.5, abs=0.03)  # the others follow


def test_a_stalled_servo_is_held_before_it_cooks(calibration):
    """Too little torque to lift the arm: the load pins at the limit while the error stays."""
    with EmulatedBus(calibration, SIM.replace(payload_mass=0.5)) as emulated:
        bus = FeetechBus(BusConfig(port=emulated.port, torque_limit=0.1, stall_time=0.3), calibration, ARM).open()
        settle(bus, [0.0, 1.4, 0.0, 0.0, 0.0], 1.5)
        assert "stalled" in bus.faults["shoulder_lift"].reason, bus.faults
        goal = emulated.goal_ticks()["shoulder_lift"]
        settle(bus, [0.0, 1.4, 0.0, 0.0, 0.0], 0.3)
        assert emulated.goal_ticks()["shoulder_lift"] == goal  # held where it stalled
        bus.close()


@pytest.fixture(scope="module")
def shared_bus():
    calibration = load_calibration(LEROBOT)
    with EmulatedBus(calibration, SIM) as emulated:
        bus = FeetechBus(BusConfig(port=emulated.port), calibration, ARM).open()
        yield emulated, bus, calibration
        bus.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.floats(-50, 50) | st.sampled_from([math.pi, -math.pi, 1e9, -1e9]), min_size=5, max_size=5),
                min_size=1, max_size=5))
def test_no_goal_ever_leaves_the_calibrated_range(shared_bus, commands):
    emulated, bus, calibration = shared_bus
    for command in commands:
        written = bus.write(np.array(command))
        goals = emulated.goal_ticks()
        for i, name in enumerate(calibration.names):
            joint = calibration.joints[name]
            assert joint.range_min <= written[i] <= joint.range_max
            assert joint.range_min <= goals[name] <= joint.range_max  # as the servo holds it (its frame = the file's here)


def test_bad_commands_are_refused_with_the_reason(driver):
    for bad in ([0.0] * 4, [0.0, float("nan"), 0, 0, 0]):
        with pytest.raises(ValueError, match="5 finite angles"):
            driver.write(np.array(bad))


def test_no_bus_no_start_and_the_reason_names_what_is_missing(tmp_path, calibration):
    with pytest.raises(BusError, match="cannot open"):
        FeetechBus(BusConfig(port=str(tmp_path / "ttyUSB9")), calibration, ARM).open()
    with EmulatedBus(calibration, SIM) as emulated:
        emulated.silence("gripper")
        with pytest.raises(BusError, match=r"gripper \(id 6\)"):
            FeetechBus(BusConfig(port=emulated.port), calibration, ARM).open()
    with pytest.raises(BusError, match="no servo in the calibration"):
        FeetechBus(BusConfig(), calibration, ARM + ("elbow_roll",))


def test_an_arm_with_no_calibration_gets_one_from_its_urdf():
    from mbrl_control.arm.description import load_description

    calibration = calibration_for(load_description(SIM.urdf, SIM.ee_link))
    assert calibration.names == ARM + ("gripper",)
    low, high = calibration.range_radians()
    # zero in the middle (LeRobot's convention), wide enough for the URDF's (asymmetric) limits
    np.testing.assert_allclose(high[:5], [1.92, 1.75, 1.69, 1.66, 2.84], atol=TICK)
    np.testing.assert_allclose(low, -high)


def test_calibrate_records_what_lerobot_would_from_a_person_moving_the_arm(calibration, tmp_path, monkeypatch):
    """mbrl-control calibrate, torque off: the 'person' (the test) holds the middle pose,
    then sweeps each joint to its mechanical limits (the URDF's); the file it writes reads
    the arm with each joint's zero in the middle of its range, as LeRobot's does."""
    from mbrl_control import cli
    from mbrl_control.arm.description import load_description

    limits = {j.name: (j.lower, j.upper) for j in load_description(SIM.urdf, SIM.ee_link).arm_joints}  # the mechanical stops
    from dataclasses import replace

    calibration = Calibration({n: replace(j, drive_mode=0) for n, j in calibration.joints.items()})  # an SO-101 as built
    others = {n: 0 for n in calibration.names}  # servos fresh from the factory: no offset in EEPROM
    with EmulatedBus(calibration, SIM, servo_homing=others) as emulated:
        answers = iter([0, 1])

        def person(prompt: str = "") -> str:
            if next(answers) == 0:  # hold the middle pose
                emulated.hand.update({n: 0.0 for n in calibration.names})
                time.sleep(0.3)
            else:  # sweep every joint to both ends, then back
                for name in ARM:
                    at = 0.0
                    for q in (*limits[name], 0.0):
                        emulated.hand[name] = q
                        time.sleep(abs(q - at) / 4.0 + 0.2)  # the servo's speed: ~4.7 rad/s
                        at = q
                emulated.hand["gripper"] = 1.0
                time.sleep(0.5)
            return ""

        monkeypatch.setattr("builtins.input", person)
        ids = [f"{n}={j.id}" for n, j in calibration.joints.items()]
        assert cli.main(["calibrate", "--port", emulated.port, "--out", str(tmp_path / "arm.json"), "--ids", *ids]) == 0
        recorded = load_calibration(tmp_path / "arm.json")
        assert recorded.names == calibration.names
        pose = np.array([0.35, -0.3, 0.4, 0.2, -0.5])
        emulated.hand.update(zip(ARM, pose))
        time.sleep(0.6)
        bus = FeetechBus(BusConfig(port=emulated.port), recorded, ARM).open()
        state = read(bus)
        truth = np.array([emulated.joint_positions()[n] for n in ARM])
        # the held middle pose read half a turn; the middle of the range swept reads zero (the
        # table stops shoulder_lift early, so its range is not the URDF's)
        shift = np.array([recorded.joints[n].middle - 2047 for n in ARM]) * TICK
        np.testing.assert_allclose(state.position[:5], truth - shift, atol=0.04)  # as well as the person held the middle
        assert abs(shift[0]) < 0.01  # shoulder_pan swept freely: its range is the URDF's, its zero the pose held
        bus.close()
