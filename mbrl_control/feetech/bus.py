"""The arm's servo bus, through the Feetech SDK (``scservo_sdk`` of ``feetech-servo-sdk``,
the one LeRobot uses): joint states in radians out, goal positions in, and the servo
makers' safety rules below the planner's safety layer.

Each tick reads every servo in one sync read (position, speed, load, voltage,
temperature: registers 56-63) and writes every goal in one sync write. At start it pings
every servo, reads the homing offset each holds (so the calibration file need not have been
written into it), sets the torque limit and acceleration, sets each goal to where the
servo is, and enables torque: nothing moves until a command comes.

Faults are latched per servo and the servo is held (its goal set to where it is), until
:meth:`FeetechBus.clear_faults`: a status error of overload, overheat or overcurrent; a
stall (load pinned at the torque limit while the position error stays, for
``stall_time``); a temperature at ``max_temperature``; a servo that stops answering (then
every servo holds: the arm's state is unknown). Every goal written is clamped to the
servo's calibrated range.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field

import numpy as np

from mbrl_control.config import Config, param
from mbrl_control.feetech import protocol as P
from mbrl_control.feetech.calibration import Calibration


@dataclass(frozen=True)
class BusConfig(Config):
    """Settings of a Feetech servo bus (``servo_driver``'s parameters)."""

    port: str = param("/dev/ttyACM0", "Serial port of the bus adapter.", read_only=True)
    baudrate: int = param(1_000_000, "Bus speed (bit/s); SO-100/SO-101 servos ship at 1 Mbaud.",
                          choices=(38_400, 57_600, 115_200, 128_000, 250_000, 500_000, 1_000_000), read_only=True)
    calibration: str = param("", "Calibration file: LeRobot's JSON, or the same as YAML (mbrl-control calibrate writes one).", read_only=True)
    torque_limit: float = param(0.8, "Torque limit written at start, a fraction of stall torque.", low=0.05, high=1.0, read_only=True)
    acceleration: int = param(254, "Acceleration register written at start (× 100 ticks/s²; 0: the servo's maximum).", low=0, high=254, read_only=True)
    stall_load: float = param(0.9, "Load, as a fraction of the torque limit, that with a lasting position error is a stall.", low=0.1, high=1.0)
    stall_error: float = param(0.05, "Position error (rad) that, with the load pinned, is a stall.", low=0.0, high=1.0)
    stall_time: float = param(0.5, "Seconds of pinned load and lasting error before a servo is held.", low=0.0, high=10.0)
    max_temperature: float = param(65.0, "Servo temperature (°C) at which it is held; the STS3215 cuts out at 70.", low=20.0, high=80.0)
    torque_off_on_estop: bool = param(False, "On e-stop, drop torque (the arm falls) instead of holding where it is.")


class BusError(RuntimeError):
    """The bus cannot be used: the port, or a servo at start."""


@dataclass
class BusState:
    """One sync read, per servo in the calibration's order: angles (rad), velocities
    (rad/s), loads (fraction of stall torque), voltages (V), temperatures (°C), and the
    status error bits each servo reported."""

    stamp: float
    position: np.ndarray
    velocity: np.ndarray
    load: np.ndarray
    voltage: np.ndarray
    temperature: np.ndarray
    status: np.ndarray


@dataclass
class Fault:
    """Why a servo is held."""

    joint: str
    reason: str
    since: float = field(default_factory=time.monotonic)


# s a frame may take to leave for the adapter: more means it is unplugged or nothing reads
# the bus (an emulator that stopped), and a write would otherwise block forever, deaf to
# SIGINT and SIGTERM
WRITE_TIMEOUT = 0.1
# after a failed exchange, the bus is drained until it has been quiet this long (s): an
# answer that comes after the SDK stopped waiting (~34 ms) would be taken for the next one's
DRAIN_QUIET = 0.03


def feetech_sdk():
    try:
        import scservo_sdk
    except ImportError as err:
        raise BusError("the Feetech SDK is not installed: pip install feetech-servo-sdk") from err
    return scservo_sdk


def guarded_port(sdk, port: str):
    """The SDK's ``PortHandler`` for ``port``, whose writes give up after
    :data:`WRITE_TIMEOUT` and whose I/O errors (pyserial's, the OS's) are :class:`BusError`,
    which the driver reports and survives."""
    import serial

    class GuardedPort(sdk.PortHandler):
        def setupPort(self, cflag_baud):
            opened = super().setupPort(cflag_baud)
            self.ser.write_timeout = WRITE_TIMEOUT
            return opened

        def writePort(self, packet):
            try:
                return super().writePort(packet)
            except (serial.SerialException, OSError) as err:
                raise BusError(f"{self.port_name}: a write did not go out within {WRITE_TIMEOUT} s ({err}): "
                               "is the adapter unplugged, or the bus not read?") from None

        def clearPort(self):
            """Before each instruction: the SDK only flushes what is going out; what came in
            since (a late answer) is dropped too."""
            super().clearPort()
            self.ser.reset_input_buffer()

        def drain(self, longest: float = 0.25) -> None:
            """Drop what is left of a failed exchange: wait until the bus has been quiet
            for :data:`DRAIN_QUIET` (``longest`` seconds at most)."""
            deadline = time.monotonic() + longest
            self.ser.reset_input_buffer()
            while time.monotonic() < deadline:
                time.sleep(DRAIN_QUIET)
                if not self.ser.in_waiting:
                    return
                self.ser.reset_input_buffer()

        def readPort(self, length):
            try:
                return super().readPort(length)
            except (serial.SerialException, OSError) as err:
                raise BusError(f"{self.port_name}: read failed ({err}): is the adapter unplugged?") from None

    return GuardedPort(port)


def ping(handler, port, servo_id: int) -> bool:
    """Whether ``servo_id`` answers a ping on ``port`` (a :func:`guarded_port`); after one
    that fails, what is left of it on the wire is drained (an answer that comes after the
    SDK gave up on it would be taken for the next one's, and the SDK then indexes an
    answer without data)."""
    sdk = feetech_sdk()
    try:
        _, result, _ = handler.ping(port, servo_id)
    except (IndexError, TypeError):  # the SDK indexing a garbled or stale answer
        result = sdk.COMM_RX_CORRUPT
    if result != sdk.COMM_SUCCESS:
        port.drain()
    return result == sdk.COMM_SUCCESS


class FeetechBus:
    """The servos of one arm on one serial bus (see the module docstring).

    Args:
        config: port, baud rate and the safety settings.
        calibration: the servos by joint name.
        commanded: the joints commands name, in command order (the others, a gripper,
            hold where they are).
    """

    def __init__(self, config: BusConfig, calibration: Calibration, commanded: tuple[str, ...]) -> None:
        unknown = [n for n in commanded if n not in calibration.joints]
        if unknown:
            raise BusError(f"joints {unknown} have no servo in the calibration ({', '.join(calibration.names)})")
        self.config, self.calibration = config, calibration
        self.names = calibration.names
        self.ids = calibration.ids
        self.commanded = tuple(commanded)
        self._commanded = np.array([self.names.index(n) for n in commanded], dtype=int)
        self.faults: dict[str, Fault] = {}
        self.reads = self.failed_reads = 0
        self._goal = np.zeros(len(self.names), dtype=int)  # ticks, the calibration's frame
        self._low = np.array([calibration.joints[n].range_min for n in self.names])  # the calibrated range (ticks)
        self._high = np.array([calibration.joints[n].range_max for n in self.names])
        self._offset = np.zeros(len(self.names), dtype=int)  # calibration frame − servo frame (ticks)
        self._stalling: dict[str, float] = {}
        self.last: BusState | None = None
        self._port = self._handler = self._reader = None

    # -- start and stop ----------------------------------------------------------------
    def open(self) -> "FeetechBus":
        """Open the port, find every servo, configure it and enable torque holding still.

        Raises:
            BusError: the port cannot be opened or a servo does not answer, naming it.
        """
        sdk = feetech_sdk()
        self._port = guarded_port(sdk, self.config.port)
        try:
            opened = self._port.openPort() and self._port.setBaudRate(self.config.baudrate)
        except Exception as err:  # noqa: BLE001 — pyserial's SerialException and OSError
            raise BusError(f"cannot open {self.config.port}: {err}") from None
        if not opened:
            raise BusError(f"cannot open {self.config.port} at {self.config.baudrate} baud")
        self._handler = sdk.PacketHandler(0)
        self._reader = status_sync_read(sdk)(self._port, self._handler, P.STATE_START, P.STATE_LENGTH)
        for servo_id in self.ids:
            self._reader.addParam(servo_id)
        missing = []
        for name, servo_id in zip(self.names, self.ids):
            if not any(ping(self._handler, self._port, servo_id) for _ in range(3)):
                missing.append(f"{name} (id {servo_id})")
        if missing:
            self.close()
            raise BusError(f"no answer on {self.config.port} at {self.config.baudrate} baud from {', '.join(missing)}: "
                           "check power, cabling, ids and baud rate")
        for i, servo_id in enumerate(self.ids):
            homing = P.decode(self._read(servo_id, P.HOMING_OFFSET), P.HOMING_OFFSET)
            self._offset[i] = homing - self.calibration.joints[self.names[i]].homing_offset
            self._write(servo_id, P.TORQUE_LIMIT, round(1000 * self.config.torque_limit))
            self._write(servo_id, P.ACCELERATION, self.config.acceleration)
        state = self.read()
        self._goal = self._clamp(self._frame(state))  # hold where each servo is
        self._sync_write_goals()
        for servo_id in self.ids:
            self._write(servo_id, P.TORQUE_ENABLE, 1)
        return self

    def close(self) -> None:
        """Close the port; the servos keep holding their last goal."""
        if self._port is not None and self._port.is_open:
            self._port.closePort()

    # -- the tick ------------------------------------------------------------------------
    def read(self) -> BusState:
        """One sync read of every servo; updates the faults.

        Raises:
            BusError: a servo did not answer (or answered garbled); every servo that does
                is held and the fault names the silent one.
        """
        sdk = feetech_sdk()
        reader = self._reader
        try:
            result = reader.txRxPacket()
        except (IndexError, TypeError):  # the SDK indexing a garbled or stale answer
            result = sdk.COMM_RX_CORRUPT
        self.reads += 1
        if result != sdk.COMM_SUCCESS:
            self.failed_reads += 1
            self._port.drain()
            silent = self._find_silent()
            if silent:
                for name in silent:
                    self._fault(name, "stopped answering")
                self.hold_all()
            raise BusError(f"sync read failed ({self._handler.getTxRxResult(result).removeprefix('[TxRxResult] ')})"
                           + (f"; not answering: {', '.join(silent)}" if silent else ""))
        raw = {}
        for register in (P.PRESENT_POSITION, P.PRESENT_SPEED, P.PRESENT_LOAD, P.PRESENT_VOLTAGE, P.PRESENT_TEMPERATURE):
            raw[register.address] = np.array([P.decode(reader.getData(i, register.address, register.size), register) for i in self.ids])
        sign = np.array([-1.0 if self.calibration.joints[n].drive_mode else 1.0 for n in self.names])
        per_tick = 2 * math.pi / self.calibration.resolution
        state = BusState(
            stamp=time.monotonic(),
            position=self.calibration.to_radians(raw[P.PRESENT_POSITION.address] + self._offset),
            velocity=sign * raw[P.PRESENT_SPEED.address] * per_tick,
            load=sign * raw[P.PRESENT_LOAD.address] / 1000.0,
            voltage=raw[P.PRESENT_VOLTAGE.address] / 10.0,
            temperature=raw[P.PRESENT_TEMPERATURE.address].astype(float),
            status=np.array([reader.errors.get(i, 0) for i in self.ids]),
        )
        self.last = state
        self._check(state)
        return state

    def write(self, command: np.ndarray) -> np.ndarray:
        """Goal angles [len(commanded)] (rad, command order) → one sync write. Held servos
        keep their hold position; every goal is clamped to the calibrated range.

        Returns:
            the goals written, [len(names)] ticks in the calibration's frame.

        Raises:
            ValueError: the command has the wrong size or is not finite.
        """
        command = np.asarray(command, dtype=float)
        if command.shape != (len(self.commanded),) or not np.all(np.isfinite(command)):
            raise ValueError(f"command must be {len(self.commanded)} finite angles ({', '.join(self.commanded)}), got {command!r}")
        goal = self._goal.copy()
        goal[self._commanded] = self.calibration.to_ticks(command, self.commanded)
        for name in self.faults:
            i = self.names.index(name)
            goal[i] = self._goal[i]
        self._goal = self._clamp(goal)
        self._sync_write_goals()
        return self._goal.copy()

    def hold_all(self) -> None:
        """Every servo that answers holds where it is."""
        if self.last is not None:
            self._goal = self._clamp(self._frame(self.last))
        self._sync_write_goals()

    def estop(self) -> None:
        """Hold where the arm is, or with ``torque_off_on_estop`` drop torque."""
        if self.config.torque_off_on_estop:
            for servo_id in self.ids:
                self._write(servo_id, P.TORQUE_ENABLE, 0, check=False)
        else:
            self.hold_all()

    def torque_on(self) -> None:
        """Enable every servo's torque holding where it is (after an e-stop that dropped it)."""
        self.read()
        self.hold_all()
        for servo_id in self.ids:
            self._write(servo_id, P.TORQUE_ENABLE, 1, check=False)

    def clear_faults(self) -> list[str]:
        """Release held servos (re-enabling torque clears a latched overload); returns their names."""
        cleared = list(self.faults)
        for name in cleared:
            self._write(self.calibration.joints[name].id, P.TORQUE_ENABLE, 1, check=False)
        self.faults.clear()
        self._stalling.clear()
        return cleared

    # -- safety --------------------------------------------------------------------------
    def _check(self, state: BusState) -> None:
        goal = self.calibration.to_radians(self._goal)
        pinned = np.abs(state.load) >= self.config.stall_load * self.config.torque_limit
        lagging = np.abs(goal - state.position) > self.config.stall_error
        for i, name in enumerate(self.names):
            bad = P.errors(int(state.status[i]) & (P.ERR_OVERLOAD | P.ERR_OVERHEAT | P.ERR_CURRENT))
            if bad:
                self._fault(name, "servo reports " + ", ".join(bad), state)
            if state.temperature[i] >= self.config.max_temperature:
                self._fault(name, f"temperature {state.temperature[i]:.0f} °C ≥ {self.config.max_temperature:g} °C", state)
            if pinned[i] and lagging[i]:
                since = self._stalling.setdefault(name, state.stamp)
                if state.stamp - since >= self.config.stall_time:
                    self._fault(name, f"stalled: load {100 * abs(state.load[i]):.0f} % with {abs(goal[i] - state.position[i]):.3f} rad "
                                      f"to go for {state.stamp - since:.1f} s", state)
            else:
                self._stalling.pop(name, None)

    def _fault(self, name: str, reason: str, state: BusState | None = None) -> None:
        if name in self.faults:
            return
        self.faults[name] = Fault(name, reason)
        if state is not None:  # hold where it is now
            i = self.names.index(name)
            self._goal[i] = self._clamp(self._frame(state))[i]
            self._sync_write_goals()

    def _find_silent(self) -> list[str]:
        """The servos that do not answer a ping (twice)."""
        return [name for name, servo_id in zip(self.names, self.ids)
                if not any(ping(self._handler, self._port, servo_id) for _ in range(2))]

    # -- ticks -----------------------------------------------------------------------------
    def _frame(self, state: BusState) -> np.ndarray:
        return np.rint(self.calibration.to_ticks_unclamped(state.position)).astype(int)

    def _clamp(self, ticks: np.ndarray) -> np.ndarray:
        return np.clip(ticks, self._low, self._high).astype(int)

    def _sync_write_goals(self) -> None:
        sdk = feetech_sdk()
        writer = sdk.GroupSyncWrite(self._port, self._handler, P.GOAL_POSITION.address, P.GOAL_POSITION.size)
        servo_ticks = self._goal - self._offset
        for servo_id, tick in zip(self.ids, servo_ticks):
            writer.addParam(servo_id, list(P.encode(int(tick), P.GOAL_POSITION)))
        writer.txPacket()

    def _read(self, servo_id: int, register: P.Register) -> bytes:
        sdk = feetech_sdk()
        data, result, _ = self._handler.readTxRx(self._port, servo_id, register.address, register.size)
        if result != sdk.COMM_SUCCESS:
            raise BusError(f"servo {servo_id}: reading register {register.address} failed: {self._handler.getTxRxResult(result)}")
        if len(data) != register.size:  # a stale answer (a ping's) taken for this one
            self._port.drain()
            raise BusError(f"servo {servo_id}: reading register {register.address}: an answer of {len(data)} bytes, not {register.size}")
        return bytes(data)

    def _write(self, servo_id: int, register: P.Register, value: int, check: bool = True) -> None:
        sdk = feetech_sdk()
        result, _ = self._handler.writeTxRx(self._port, servo_id, register.address, register.size, list(P.encode(value, register)))
        if check and result != sdk.COMM_SUCCESS:
            raise BusError(f"servo {servo_id}: writing register {register.address} failed: {self._handler.getTxRxResult(result)}")


@functools.cache
def status_sync_read(sdk) -> type:
    """The SDK's GroupSyncRead, keeping each servo's status error byte (the SDK drops it)
    and refusing an answer of the wrong length (the SDK takes it)."""

    class StatusSyncRead(sdk.GroupSyncRead):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            self.errors: dict[int, int] = {}

        def rxPacket(self) -> int:  # noqa: N802 — the SDK's name
            self.last_result = False
            result = sdk.COMM_RX_FAIL
            for servo_id in self.data_dict:
                self.data_dict[servo_id], result, self.errors[servo_id] = self.ph.readRx(self.port, servo_id, self.data_length)
                if result != sdk.COMM_SUCCESS:
                    return result
                if len(self.data_dict[servo_id]) != self.data_length:  # a stale answer (a ping's) taken for this one
                    return sdk.COMM_RX_CORRUPT
            self.last_result = True
            return result

    return StatusSyncRead
