"""What the nodes share: QoS for checkpoints, byte messages, diagnostics, the arm's
parameters, and a ``main`` that spins one node."""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Generic, Sequence, TypeVar

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import UInt8MultiArray

from mbrl_control.arm.description import load_description
from mbrl_control.arm.interface import ArmInterface
from mbrl_control.arm.reach import ReachConfig
from mbrl_control.arm.sim import SimConfig
from mbrl_control.checkpoint import CheckpointError
from mbrl_control.config import Config, param
from mbrl_control.data.transitions import TransitionDataset
from mbrl_control.nodes.params import ParameterBinding
from mbrl_control.resources import default_urdf

T = TypeVar("T")

# The newest checkpoint, kept for subscribers that join later (another machine, a restart).
LATCHED = QoSProfile(
    depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
# Every episode recorded, kept for a learner that starts late.
EPISODES = QoSProfile(
    depth=1000, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
# Commands and states between nodes that record them.
CONTROL = 10
# A controller's inputs: only the newest state counts. A deeper queue let states wait behind
# a 50 ms planning tick, and the planner planned on states 150 ms old (benchmarks/control_loop.py).
NEWEST = 1

# Topic names, relative so that a namespace applies; remap them to a robot's.
JOINT_STATES = "joint_states"
COMMANDS = "arm_controller/commands"
TARGET = "mbrl/target"
EPISODES_TOPIC = "mbrl/episodes"
MODEL_TOPIC = "mbrl/model"
POLICY_TOPIC = "mbrl/policy"
ESTOP = "mbrl/estop"
DIAGNOSTICS = "/diagnostics"


def arm_topic(arm: str, topic: str) -> str:
    """``topic`` of the arm in namespace ``arm`` (``/arm1/mbrl/episodes``); ``''``: the
    node's own namespace (``topic`` as it is, relative)."""
    return f"/{arm.strip('/')}/{topic}" if arm.strip("/") else topic

ARM_SETTINGS = ((SimConfig(), ("urdf", "ee_link", "limit_margin")), (ReachConfig(), ("max_joint_step", "action_cost")))


def bind_arm(node: Node) -> tuple[ParameterBinding, ArmInterface]:
    """Declare the arm's parameters (urdf, ee_link, limit_margin, max_joint_step,
    action_cost, joints) on ``node``, all read-only (the joint limits among them), and
    build its :class:`ArmInterface`."""
    read_only = [name for _, names in ARM_SETTINGS for name in names]
    binding = ParameterBinding(node, *ARM_SETTINGS, read_only=read_only)
    return binding, ArmInterface.from_configs(bind_joints(node, binding[SimConfig]), binding[ReachConfig])


def bind_joints(node: Node, sim: SimConfig) -> SimConfig:
    """Declare ``joints`` (read-only; by default the URDF's arm joints, so that ROS types
    it a string array, as an empty list would not be) and return ``sim`` with it."""
    default = load_description(sim.urdf or default_urdf(), sim.ee_link).arm_joint_names
    return sim.replace(joints=ParameterBinding(node, (SimConfig(joints=default), ("joints",)))[SimConfig].joints)


class LatestCheckpoint(Generic[T]):
    """The newest good checkpoint a node works with: from ``path`` at start (when given)
    and then from each message on the latched ``topic``. One that fails to load (truncated,
    corrupt, made for another arm) is refused with a logged reason and the last good one
    stays.

    Args:
        load: ``load(path_or_bytes) -> T``, raising CheckpointError.
        what: how logs name it ("model", "policy").
        on_change: called with each newly loaded value.

    Attributes:
        value: the current checkpoint (None before the first); loaded: how many were loaded.

    Raises:
        CheckpointError: ``path`` is given and cannot be loaded.
    """

    def __init__(self, node: Node, topic: str, load: Callable[[str | bytes], T], what: str,
                 path: str = "", on_change: Callable[[T], None] | None = None) -> None:
        self.node, self.load, self.what, self.on_change = node, load, what, on_change
        self.value: T | None = None
        self.loaded = 0
        if path and not self.set(path, path):
            raise CheckpointError(f"{what} path {path!r} could not be loaded (see the error above)")
        node.create_subscription(UInt8MultiArray, topic, lambda msg: self.set(bytes(msg.data), f"{topic} message"), LATCHED)

    def set(self, source: str | bytes, name: str) -> bool:
        try:
            value = self.load(source)
        except CheckpointError as err:
            self.node.get_logger().error(f"{self.what} from {name} refused, keeping the last good {self.what}: {err}")
            return False
        self.value = value
        self.loaded += 1
        self.node.get_logger().info(f"new {self.what} from {name}")
        if self.on_change is not None:
            self.on_change(value)
        return True


def new_episodes(node: Node, msg: UInt8MultiArray, arm: ArmInterface, seen: set[int]) -> TransitionDataset | None:
    """The transitions of the episodes in a ``mbrl/episodes`` message whose ids are not in
    ``seen`` (a latched history is heard again after a restart); None, with the reason
    logged, when there are none or the message is unreadable or of another arm."""
    try:
        part = TransitionDataset.load(bytes(msg.data))
    except CheckpointError as err:
        node.get_logger().error(f"episode refused: {err}")
        return None
    if (part.obs_dim, part.act_dim) != (arm.obs_dim, arm.n):
        node.get_logger().error(f"episode refused: obs_dim={part.obs_dim}, act_dim={part.act_dim} is not this arm's "
                                f"({arm.obs_dim}, {arm.n})")
        return None
    new = [e for e in part.episodes.tolist() if e not in seen]
    return part.subset(np.isin(part.episode, new)) if new else None


class Worker:
    """One background job at a time (a fit, a training round), so a node keeps receiving
    and answering while torch works; the job's thread runs ``nice`` steps below the
    node's own priority (Linux: niceness is per thread), so on a computer it shares with
    the planner and the arm's driver the job gets what they leave."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, target: Callable[..., None], *args: object, nice: int = 0) -> None:
        def run() -> None:
            lower_priority(nice)
            target(*args)

        self.thread = threading.Thread(target=run, name=self.name, daemon=True)
        self.thread.start()

    def join(self, node_name: str) -> None:
        """Wait for the job in progress: a process must not exit under a thread inside
        torch. (Printed, not logged: after Ctrl-C the context that carries /rosout is
        already shut down.)"""
        if self.busy:
            print(f"[{node_name}] waiting for the {self.name} in progress to finish", file=sys.stderr, flush=True)
            self.thread.join()


def warm_up_torch() -> None:
    """Take one Adam step on a scalar, here: torch imports its compiler stack (torch._dynamo)
    at an optimiser's first step, seconds of work that no fit can cancel. In a fitting
    thread at low priority on a busy computer it took 18 s, past launch's SIGINT and
    SIGTERM timeouts; a node calls this at start-up instead."""
    import torch

    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([weight])
    weight.sum().backward()
    optimizer.step()


def lower_priority(nice: int) -> None:
    """Raise the calling thread's niceness by ``nice`` (at most to 19). On Linux niceness
    is per thread; elsewhere the call would lower the whole process (the node's control
    loop too), so it does nothing."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + nice))


def bytes_message(data: bytes) -> UInt8MultiArray:
    msg = UInt8MultiArray()
    msg.data = data
    return msg


def status(node: Node, name: str, message: str, values: dict[str, object], level: int = DiagnosticStatus.OK) -> DiagnosticArray:
    """A ``/diagnostics`` message with one status named ``<node>: <name>``."""
    array = DiagnosticArray()
    array.header.stamp = node.get_clock().now().to_msg()
    array.status = [DiagnosticStatus(
        level=level, name=f"{node.get_name()}: {name}", message=message, hardware_id=node.get_fully_qualified_name(),
        values=[KeyValue(key=k, value=f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in values.items()],
    )]
    return array


class Throttle:
    """Lets a repeated warning through at most once per ``period`` seconds, with the count."""

    def __init__(self, period: float = 5.0) -> None:
        self.period, self._last, self.count = period, -float("inf"), 0

    def __call__(self, log: Callable[[str], object], message: str) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self._last >= self.period:
            text, level = f"{message} ({self.count} so far)", getattr(log, "__name__", "")
            # rclpy fixes a log call site's severity at its first call and raises on another,
            # so each severity logs from a line of its own (throttles of a node share these)
            if level == "error":
                log(text)
            elif level.startswith("warn"):
                log(text)
            else:
                log(text)
            self._last = now


def spin(node_factory: Callable[[], Node], args: Sequence[str] | None = None) -> None:
    """``main`` of a node executable: init, spin until Ctrl-C or shutdown, clean up."""
    import rclpy
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
    from rclpy.executors import ExternalShutdownException

    rclpy.init(args=args)
    node = None
    try:
        node = node_factory()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, InvalidParameterValueException, InvalidParameterTypeException) as err:
        # a refused setting or an unreadable file at start-up: one line, not a traceback
        # (ConfigError and CheckpointError are ValueErrors)
        print(f"[FATAL] {getattr(node_factory, '__name__', 'node')}: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except Exception:
        if rclpy.ok():
            raise
        # a callback racing the shutdown (a publish after Ctrl-C invalidated the context): not
        # an error, and no traceback for the user who pressed Ctrl-C
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
