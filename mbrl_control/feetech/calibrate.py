"""Record a calibration on the bus, as LeRobot does (``mbrl-control calibrate``).

With torque off, a person puts the arm in the middle of its range (each joint's zero,
the SO-101 URDF's): each servo's homing offset is then ``actual − 2047``, so the middle
reads half a turn. Then they move every joint through its whole range: the extremes seen
are ``range_min`` and ``range_max``. Nothing is written into the servos' EEPROM; the file
is LeRobot's layout, so LeRobot reads it too.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from mbrl_control.feetech import protocol as P
from mbrl_control.feetech.bus import BusError, feetech_sdk, guarded_port, ping, status_sync_read
from mbrl_control.feetech.calibration import Calibration, JointCalibration

HALF_TURN = 2047  # LeRobot's: int((4096 - 1) / 2)


class RawBus:
    """Servo positions in the servos' own ticks, torque off: what calibrating needs."""

    def __init__(self, port: str, baudrate: int, joints: dict[str, int]) -> None:
        sdk = feetech_sdk()
        self.joints = joints
        self.port = guarded_port(sdk, port)
        try:
            opened = self.port.openPort() and self.port.setBaudRate(baudrate)
        except Exception as err:  # noqa: BLE001 — pyserial's errors
            raise BusError(f"cannot open {port}: {err}") from None
        if not opened:
            raise BusError(f"cannot open {port} at {baudrate} baud")
        self.handler = sdk.PacketHandler(0)
        missing = [f"{n} (id {i})" for n, i in joints.items() if not any(ping(self.handler, self.port, i) for _ in range(3))]
        if missing:
            self.close()
            raise BusError(f"no answer on {port} from {', '.join(missing)}")
        self.homing = {}
        for name, servo_id in joints.items():
            data, result, _ = self.handler.readTxRx(self.port, servo_id, P.HOMING_OFFSET.address, P.HOMING_OFFSET.size)
            if result != sdk.COMM_SUCCESS:
                raise BusError(f"{name}: cannot read its homing offset")
            self.homing[name] = P.decode(data, P.HOMING_OFFSET)
            self.handler.write1ByteTxRx(self.port, servo_id, P.TORQUE_ENABLE.address, 0)
        self.reader = status_sync_read(sdk)(self.port, self.handler, P.PRESENT_POSITION.address, P.PRESENT_POSITION.size)
        for servo_id in joints.values():
            self.reader.addParam(servo_id)

    def actual(self) -> dict[str, int] | None:
        """Each servo's position before any homing offset (ticks); None if a read failed."""
        sdk = feetech_sdk()
        try:
            if self.reader.txRxPacket() != sdk.COMM_SUCCESS:
                return None
        except (IndexError, TypeError):
            return None
        return {n: P.decode(self.reader.getData(i, P.PRESENT_POSITION.address, 2), P.PRESENT_POSITION) + self.homing[n]
                for n, i in self.joints.items()}

    def close(self) -> None:
        if self.port.is_open:
            self.port.closePort()


def record_calibration(bus: RawBus, at_middle: Callable[[], None], sweeping: Callable[[dict[str, tuple[int, int, int]]], bool],
                       period: float = 0.02) -> Calibration:
    """The calibration of the arm on ``bus``.

    Args:
        at_middle: returns once the person holds the arm in the middle of its range.
        sweeping: called with ``{joint: (range_min, now, range_max)}`` (ticks, the new
            calibration's frame) every ``period`` while the joints are moved; returns
            True once every joint has been through its range.

    Raises:
        BusError: the middle pose cannot be read, or a joint did not move.
    """
    at_middle()
    middle = None
    for _ in range(10):
        middle = bus.actual()
        if middle is not None:
            break
    if middle is None:
        raise BusError("cannot read the servo positions at the middle pose")
    offset = {n: middle[n] - HALF_TURN for n in bus.joints}
    low = {n: HALF_TURN for n in bus.joints}
    high = dict(low)
    while True:
        actual = bus.actual()
        if actual is not None:
            now = {n: actual[n] - offset[n] for n in bus.joints}
            for n, p in now.items():
                low[n], high[n] = min(low[n], p), max(high[n], p)
            if sweeping({n: (low[n], now[n], high[n]) for n in bus.joints}):
                break
        time.sleep(period)
    still = [n for n in bus.joints if high[n] - low[n] < 20]
    if still:
        raise BusError(f"joints {still} did not move (range under 20 ticks): sweep every joint through its range")
    return Calibration({n: JointCalibration(i, 0, offset[n], int(np.clip(low[n], 0, 4095)), int(np.clip(high[n], 0, 4095)))
                        for n, i in bus.joints.items()})
