"""An emulated Feetech bus: STS3215 servos on a pseudo-terminal, backed by the MuJoCo arm.

The driver under test opens ``bus.port`` with the real Feetech SDK and cannot tell it from
a USB serial adapter: each servo answers ping, read, write, sync read and sync write on its
control table (:mod:`mbrl_control.feetech.protocol`), checksums are checked, and answers
take as long as the wire would (10 bits per byte at ``baudrate``, plus each servo's return
delay), so measured rates mean something. The servos of arm joints move the simulated arm
(:class:`mbrl_control.arm.sim.ArmSim`, stepped in real time); others (a gripper) follow
their goal at the servo's speed. A servo protects itself as an STS3215 does: a load above
its torque limit for ``protection_time`` raises the overload error and drops torque.

Faults for tests: ``silence(id)`` (the servo stops answering), ``corrupt(n)`` (the next
``n`` answers carry a wrong checksum), ``set_error(id, bits)`` and ``set_temperature``.

    with EmulatedBus(calibration) as bus:       # or: mbrl-control bringup emulated
        ...  FeetechBus(bus.port, calibration) ...
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque
import time
import tty

import numpy as np

from mbrl_control.arm.sim import ArmSim, SimConfig
from mbrl_control.feetech import protocol as P
from mbrl_control.feetech.calibration import Calibration

SERVO_SPEED = math.pi / 3 / 0.222  # rad/s, an STS3215 at 12 V


class EmulatedServo:
    """One servo's control table and protection state."""

    def __init__(self, servo_id: int, homing_offset: int, return_delay: int) -> None:
        self.table = bytearray(P.TABLE_SIZE)
        self.silent = False
        self.overload_since: float | None = None
        for register, value in ((P.MODEL, P.STS3215_MODEL), (P.ID, servo_id), (P.RETURN_DELAY, return_delay),
                                (P.MIN_POSITION_LIMIT, 0), (P.MAX_POSITION_LIMIT, 4095), (P.MAX_TEMPERATURE, 70),
                                (P.HOMING_OFFSET, homing_offset), (P.TORQUE_LIMIT, 1000), (P.LOCK, 1),
                                (P.PRESENT_VOLTAGE, 120), (P.PRESENT_TEMPERATURE, 32)):
            self.set(register, value)
        self.error = 0

    def get(self, register: P.Register) -> int:
        return P.decode(self.table[register.address : register.address + register.size], register)

    def set(self, register: P.Register, value: int) -> None:
        self.table[register.address : register.address + register.size] = P.encode(int(value), register)

    def write(self, address: int, data: bytes) -> None:
        """A host's write: EEPROM (below 40) only while unlocked, as on the servo."""
        if address < P.TORQUE_ENABLE.address and self.get(P.LOCK):
            return
        end = min(address + len(data), P.TABLE_SIZE)
        self.table[address:end] = data[: end - address]


class EmulatedBus:
    """N emulated STS3215 servos on a pseudo-terminal (see the module docstring).

    Args:
        calibration: the arm as calibrated: the servos' ids, and how ticks map to the
            simulated joints (the emulated arm is that calibrated arm).
        sim: the simulated arm (its ``urdf``, ``ee_link`` …); stepped at ``control_rate``.
        baudrate: bits per second on the wire (the SO-101 bus: 1 Mbaud).
        return_delay: each servo's Return_Delay_Time register (× 2 µs; LeRobot sets 0).
        servo_homing: the offset each servo holds in its EEPROM (default: the file's, as
            after LeRobot wrote it).
    """

    def __init__(self, calibration: Calibration, sim: SimConfig | None = None, baudrate: int = 1_000_000,
                 return_delay: int = 0, servo_homing: dict[str, int] | None = None) -> None:
        self.calibration = calibration
        self.baudrate = baudrate
        self.sim = ArmSim((sim or SimConfig()).replace(control_rate=100.0, action_latency=0))
        self.names = calibration.names
        homing = {n: calibration.joints[n].homing_offset for n in self.names} | (servo_homing or {})
        self.servos = {calibration.joints[n].id: EmulatedServo(calibration.joints[n].id, homing[n], return_delay) for n in self.names}
        self._by_name = {n: self.servos[calibration.joints[n].id] for n in self.names}
        self._arm = [n for n in self.names if n in self.sim.joint_names]
        self._others = {n: 0.0 for n in self.names if n not in self._arm}  # kinematic servos' angles (rad)
        missing = [n for n in self.sim.joint_names if n not in self.names]
        if missing:
            raise ValueError(f"the calibration has no servo for the simulated arm's joints {missing}")
        self._actuators = np.array([self.sim.model.actuator(n).id for n in self._arm], dtype=int)
        self.stall_torque = self.sim.model.actuator_forcerange[self._actuators, 1].copy()  # [arm servos] N·m
        self.protection_time = 2.0  # s of load above the torque limit before the overload error
        self.hand: dict[str, float] = {}  # joint angles a person holds torque-free joints at
        self.lock = threading.Lock()
        self._corrupt = 0
        self._late = (0, 0.0)  # (answers still to delay, by how many seconds)
        self._stop = threading.Event()
        self.deaf = threading.Event()  # set: the bus takes no bytes (a hung adapter)
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self.stats = {"packets": 0, "bad_checksum": 0, "bytes_in": 0, "bytes_out": 0}
        self.goal_writes: deque[tuple[float, dict[int, int]]] = deque(maxlen=100_000)  # (when it took effect, {id: goal})
        self.sim.reset(np.zeros(self.sim.n_joints), self.sim.target)
        self._publish_state()
        for servo in self.servos.values():
            servo.set(P.GOAL_POSITION, servo.get(P.PRESENT_POSITION))
        self._threads = [threading.Thread(target=self._serve, name="emulated-bus", daemon=True),
                         threading.Thread(target=self._physics, name="emulated-arm", daemon=True)]

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "EmulatedBus":
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=2.0)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "EmulatedBus":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- faults and inspection ---------------------------------------------------------
    def servo(self, name: str) -> EmulatedServo:
        return self._by_name[name]

    def silence(self, name: str, silent: bool = True) -> None:
        self.servo(name).silent = silent

    def corrupt(self, answers: int) -> None:
        with self.lock:
            self._corrupt += answers

    def delay(self, answers: int, seconds: float) -> None:
        """The next ``answers`` answers leave ``seconds`` late (a servo, or a loaded host,
        answering after the SDK gave up waiting)."""
        with self.lock:
            self._late = (self._late[0] + answers, seconds)

    def set_error(self, name: str, bits: int) -> None:
        with self.lock:
            self.servo(name).error = bits

    def set_temperature(self, name: str, celsius: int) -> None:
        with self.lock:
            self.servo(name).set(P.PRESENT_TEMPERATURE, celsius)

    def joint_positions(self) -> dict[str, float]:
        """The true joint angles (rad) of every servo's joint."""
        with self.lock:
            q = dict(zip(self.sim.joint_names, self.sim.joint_positions))
            return {n: float(q[n]) if n in q else self._others[n] for n in self.names}

    def goal_ticks(self) -> dict[str, int]:
        with self.lock:
            return {n: self._by_name[n].get(P.GOAL_POSITION) for n in self.names}

    # -- the arm -----------------------------------------------------------------------
    def _ticks(self, names: list[str], q: np.ndarray) -> np.ndarray:
        """Present positions the servos report for joint angles ``q`` (their own frame)."""
        frame = np.rint(self.calibration.to_ticks_unclamped(q, tuple(names)))
        offsets = np.array([self.calibration.joints[n].homing_offset - self._by_name[n].get(P.HOMING_OFFSET) for n in names])
        return (frame + offsets).astype(int)

    def _angles(self, names: list[str], present: np.ndarray) -> np.ndarray:
        offsets = np.array([self._by_name[n].get(P.HOMING_OFFSET) - self.calibration.joints[n].homing_offset for n in names])
        return self.calibration.to_radians(np.asarray(present) + offsets, tuple(names))

    def _publish_state(self) -> None:
        """Present position, speed, load, moving into every servo's table (lock held)."""
        q, qd = self.sim.joint_positions, self.sim.joint_velocities
        index = {n: i for i, n in enumerate(self.sim.joint_names)}
        arm = np.array([index[n] for n in self._arm], dtype=int)
        force = self.sim.data.actuator_force[self._actuators]
        ticks = self._ticks(self._arm, q[arm])
        per_rad = self.calibration.resolution / (2 * math.pi)
        for k, name in enumerate(self._arm):
            servo = self._by_name[name]
            sign = -1 if self.calibration.joints[name].drive_mode else 1
            servo.set(P.PRESENT_POSITION, ticks[k])
            servo.set(P.PRESENT_SPEED, round(sign * qd[arm[k]] * per_rad))
            servo.set(P.PRESENT_LOAD, round(np.clip(1000 * sign * force[k] / self.stall_torque[k], -1000, 1000)))
            servo.set(P.MOVING, int(abs(qd[arm[k]]) > 0.02))
        if self._others:
            names = list(self._others)
            for name, tick in zip(names, self._ticks(names, np.array([self._others[n] for n in names]))):
                self._by_name[name].set(P.PRESENT_POSITION, tick)


    def _physics(self) -> None:
        """Step the arm in real time toward the goals of torque-enabled servos."""
        dt = self.sim.control_dt
        deadline = time.monotonic()
        while not self._stop.is_set():
            deadline += dt
            with self.lock:
                q = self.sim.joint_positions
                command = q.copy()
                index = {n: i for i, n in enumerate(self.sim.joint_names)}
                goals = self._angles(self._arm, np.array([self._by_name[n].get(P.GOAL_POSITION) for n in self._arm]))
                for k, name in enumerate(self._arm):
                    servo = self._by_name[name]
                    limit = self.stall_torque[k] * min(servo.get(P.TORQUE_LIMIT), 1000) / 1000  # the Torque_Limit register caps the motor
                    self.sim.model.actuator_forcerange[self._actuators[k]] = (-limit, limit)
                    if servo.get(P.TORQUE_ENABLE):
                        command[index[name]] = goals[k]
                    elif name in self.hand:
                        command[index[name]] = self.hand[name]
                self.sim.step(command)
                for name in self._others:
                    servo = self._by_name[name]
                    goal = self._angles([name], np.array([servo.get(P.GOAL_POSITION)]))[0]
                    target = goal if servo.get(P.TORQUE_ENABLE) else self.hand.get(name, self._others[name])
                    self._others[name] += float(np.clip(target - self._others[name], -SERVO_SPEED * dt, SERVO_SPEED * dt))
                self._protect(time.monotonic())
                self._publish_state()
            time.sleep(max(0.0, deadline - time.monotonic()))

    def _protect(self, now: float) -> None:
        """An STS3215's overload protection: load above the torque limit for
        ``protection_time`` sets the overload bit and drops torque (lock held)."""
        for servo in self.servos.values():
            limit = servo.get(P.TORQUE_LIMIT)
            if servo.get(P.TORQUE_ENABLE) and abs(servo.get(P.PRESENT_LOAD)) >= min(limit, 1000) * 0.95:
                servo.overload_since = servo.overload_since or now
                if now - servo.overload_since >= self.protection_time:
                    servo.error |= P.ERR_OVERLOAD
                    servo.set(P.TORQUE_ENABLE, 0)
            else:
                servo.overload_since = None
            if servo.get(P.PRESENT_TEMPERATURE) >= servo.get(P.MAX_TEMPERATURE):
                servo.error |= P.ERR_OVERHEAT

    # -- the wire ----------------------------------------------------------------------
    def _wire(self, n_bytes: int) -> float:
        return n_bytes * 10.0 / self.baudrate

    def _serve(self) -> None:
        buffer = bytearray()
        while not self._stop.is_set():
            if self.deaf.is_set():
                time.sleep(0.05)
                continue
            try:
                chunk = os.read(self.master, 1024) if _readable(self.master, 0.05) else b""
            except OSError:  # the pty closed
                return
            if not chunk:
                continue
            received = time.monotonic()
            self.stats["bytes_in"] += len(chunk)
            buffer += chunk
            while True:
                instruction = _take_packet(buffer)
                if instruction is None:
                    break
                if instruction is False:
                    self.stats["bad_checksum"] += 1
                    continue
                self.stats["packets"] += 1
                self._answer(instruction, received)

    def _answer(self, instruction: bytes, received: float) -> None:
        servo_id, code, params = instruction[2], instruction[4], instruction[5:-1]
        due = received + self._wire(len(instruction))
        answers: list[tuple[EmulatedServo, bytes]] = []
        with self.lock:
            if code == P.SYNC_WRITE and len(params) >= 2:
                address, length = params[0], params[1]
                goals = {}
                for i in range(2, len(params) - length, length + 1):
                    servo = self.servos.get(params[i])
                    if servo is not None and not servo.silent:
                        servo.write(address, bytes(params[i + 1 : i + 1 + length]))
                        goals[params[i]] = servo.get(P.GOAL_POSITION)
                if address == P.GOAL_POSITION.address:
                    self.goal_writes.append((due, goals))
            elif code == P.SYNC_READ and len(params) >= 2:
                address, length = params[0], params[1]
                for target in params[2:]:
                    servo = self.servos.get(target)
                    if servo is not None and not servo.silent:
                        answers.append((servo, P.packet(target, servo.error, bytes(servo.table[address : address + length]))))
            else:
                servo = self.servos.get(servo_id)
                if servo is None or servo.silent:
                    return
                if code == P.PING:
                    answers.append((servo, P.packet(servo_id, servo.error)))
                elif code == P.READ and len(params) == 2:
                    address, length = params
                    answers.append((servo, P.packet(servo_id, servo.error, bytes(servo.table[address : address + length]))))
                elif code == P.WRITE and len(params) >= 1:
                    servo.write(params[0], bytes(params[1:]))
                    if params[0] <= P.TORQUE_ENABLE.address < params[0] + len(params) - 1 and params[1 + P.TORQUE_ENABLE.address - params[0]]:
                        servo.error &= ~P.ERR_OVERLOAD  # torque back on clears the latched overload
                        servo.overload_since = None
                    answers.append((servo, P.packet(servo_id, servo.error)))
            corrupt, late = [], []
            for _ in answers:
                corrupt.append(self._corrupt > 0)
                self._corrupt = max(0, self._corrupt - 1)
                late.append(self._late[1] if self._late[0] > 0 else 0.0)
                self._late = (max(0, self._late[0] - 1), self._late[1])
        for (servo, answer), bad, lateness in zip(answers, corrupt, late):
            due += 2e-6 * servo.get(P.RETURN_DELAY) + self._wire(len(answer)) + lateness
            if bad:
                answer = answer[:-1] + bytes([answer[-1] ^ 0x5A])
            time.sleep(max(0.0, due - time.monotonic()))
            os.write(self.master, answer)
            self.stats["bytes_out"] += len(answer)


def _readable(fd: int, timeout: float) -> bool:
    import select

    return bool(select.select([fd], [], [], timeout)[0])


def _take_packet(buffer: bytearray) -> bytes | bool | None:
    """Remove and return the first whole packet in ``buffer``; False for one with a bad
    checksum (dropped, as a servo drops it); None when no whole packet is there yet."""
    start = buffer.find(b"\xff\xff")
    if start < 0:
        del buffer[: max(0, len(buffer) - 1)]
        return None
    del buffer[:start]
    while len(buffer) > 2 and buffer[2] == 0xFF:  # a third FF: the header starts one later
        del buffer[0]
    if len(buffer) < 4:
        return None
    end = 4 + buffer[3]
    if len(buffer) < end:
        return None
    packet = bytes(buffer[:end])
    del buffer[:end]
    return packet if P.checksum(packet[2:-1]) == packet[-1] else False
