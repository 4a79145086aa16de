"""The Feetech STS serial protocol, as the STS3215 speaks it: packets, instructions,
status errors and the control-table registers this package uses.

A packet is ``FF FF id length instruction|error params… checksum`` with ``length`` the
count of bytes after it and ``checksum = ~(id + length + instruction + params) & 0xFF``.
Multi-byte registers are little-endian; some are sign-magnitude (the sign in bit 15 of a
speed, bit 11 of the homing offset, bit 10 of a load).
"""

from __future__ import annotations

from dataclasses import dataclass

BROADCAST = 0xFE

# instructions
PING, READ, WRITE, REG_WRITE, ACTION, SYNC_READ, SYNC_WRITE = 0x01, 0x02, 0x03, 0x04, 0x05, 0x82, 0x83

# status error bits, as the servo reports them in every status packet
ERR_VOLTAGE, ERR_SENSOR, ERR_OVERHEAT, ERR_CURRENT, ERR_OVERLOAD = 0x01, 0x02, 0x04, 0x08, 0x20
ERROR_NAMES = {ERR_VOLTAGE: "input voltage", ERR_SENSOR: "angle sensor", ERR_OVERHEAT: "overheat",
               ERR_CURRENT: "overcurrent", ERR_OVERLOAD: "overload"}


@dataclass(frozen=True)
class Register:
    """A control-table entry: address, size in bytes, sign bit (None: unsigned)."""

    address: int
    size: int
    sign_bit: int | None = None


# the STS3215's control table (EEPROM below 40, RAM from 40); the registers this package uses
MODEL = Register(3, 2)
ID = Register(5, 1)
RETURN_DELAY = Register(7, 1)  # × 2 µs
MIN_POSITION_LIMIT = Register(9, 2)
MAX_POSITION_LIMIT = Register(11, 2)
MAX_TEMPERATURE = Register(13, 1)  # °C
HOMING_OFFSET = Register(31, 2, sign_bit=11)
TORQUE_ENABLE = Register(40, 1)
ACCELERATION = Register(41, 1)  # × 100 steps/s²; 0: the servo's maximum
GOAL_POSITION = Register(42, 2, sign_bit=15)
GOAL_SPEED = Register(46, 2, sign_bit=15)
TORQUE_LIMIT = Register(48, 2)  # ‰ of stall torque
LOCK = Register(55, 1)
PRESENT_POSITION = Register(56, 2, sign_bit=15)
PRESENT_SPEED = Register(58, 2, sign_bit=15)  # steps/s
PRESENT_LOAD = Register(60, 2, sign_bit=10)  # ‰ of stall torque
PRESENT_VOLTAGE = Register(62, 1)  # × 0.1 V
PRESENT_TEMPERATURE = Register(63, 1)  # °C
MOVING = Register(66, 1)
PRESENT_CURRENT = Register(69, 2, sign_bit=15)  # × 6.5 mA

# what the driver reads each tick: position, speed, load, voltage, temperature (56…63)
STATE_START, STATE_LENGTH = PRESENT_POSITION.address, 8
STS3215_MODEL = 777
TABLE_SIZE = 71


def checksum(body: bytes | bytearray) -> int:
    """``~sum(body) & 0xFF`` over id, length, instruction/error and parameters."""
    return ~sum(body) & 0xFF


def packet(servo_id: int, code: int, params: bytes = b"") -> bytes:
    """An instruction (``code`` an instruction) or status (``code`` an error byte) packet."""
    body = bytes([servo_id, len(params) + 2, code]) + bytes(params)
    return b"\xff\xff" + body + bytes([checksum(body)])


def encode(value: int, register: Register) -> bytes:
    """``value`` as the register's little-endian bytes (sign-magnitude where it has a sign bit)."""
    if register.sign_bit is not None and value < 0:
        value = -value | (1 << register.sign_bit)
    return int(value).to_bytes(register.size, "little")


def decode(raw: bytes | list[int] | int, register: Register) -> int:
    """The register's value from its bytes (or its unsigned integer)."""
    value = raw if isinstance(raw, int) else int.from_bytes(bytes(raw), "little")
    if register.sign_bit is not None and value & (1 << register.sign_bit):
        value = -(value & ((1 << register.sign_bit) - 1))
    return value


def errors(status: int) -> list[str]:
    """The names of the status error bits set in ``status``."""
    return [name for bit, name in ERROR_NAMES.items() if status & bit]
