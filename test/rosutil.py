"""What the ROS tests share: a stand-in for an arm's driver and task, waiting, and
setting parameters through the parameter service."""

import os
import random
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PointStamped
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class FakeArm:
    """A test node standing in for a driver and a task: joint states and a target at 20 Hz;
    records the commands it receives."""

    def __init__(self, node, names=("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll")):
        self.node, self.names = node, list(names)
        self.paused = False  # True: silence (no joint states, no target)
        self.commands: list[np.ndarray] = []
        self.q = np.zeros(len(names))
        self.states = node.create_publisher(JointState, "joint_states", 10)
        self.targets = node.create_publisher(PointStamped, "mbrl/target", 10)
        node.create_subscription(Float64MultiArray, "arm_controller/commands", lambda m: self.commands.append(np.array(m.data)), 10)
        node.create_timer(0.05, self.publish)

    def publish(self) -> None:
        if self.paused:
            return
        state = JointState()
        state.header.stamp = self.node.get_clock().now().to_msg()
        state.name, state.position, state.velocity = self.names, self.q.tolist(), [0.0] * len(self.q)
        self.states.publish(state)
        target = PointStamped()
        target.point.x, target.point.y, target.point.z = 0.2, 0.1, 0.15
        self.targets.publish(target)


def set_parameters(node, target: str, **values):
    client = AsyncParameterClient(node, target)
    assert client.wait_for_services(timeout_sec=10.0)
    future = client.set_parameters([Parameter(k, value=v) for k, v in values.items()])
    wait_for(future.done, 10, "the parameter service")
    return future.result().results


def stand_in_ros2(folder: Path, script: str, monkeypatch) -> None:
    """A `ros2` executable running ``script`` (bash), first on PATH, and a ros2bag module."""
    (folder / "ros2bag").mkdir(parents=True)
    (folder / "ros2bag" / "__init__.py").write_text("")
    ros2 = folder / "ros2"
    ros2.write_text(f"#!/bin/bash\n{script}\n")
    ros2.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.syspath_prepend(str(folder))


def stand_in_packages(monkeypatch, prefix: Path, *names: str, executables: dict[str, str] | None = None) -> None:
    """An ament prefix where packages ``names`` are installed, ahead of the environment's;
    ``executables`` maps ``package/executable`` to the script (with its #! line) to run."""
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    for name in names:
        (index / name).write_text("")
        (prefix / "share" / name).mkdir()
    for path, script in (executables or {}).items():
        executable = prefix / "lib" / path
        executable.parent.mkdir(parents=True, exist_ok=True)
        executable.write_text(script)
        executable.chmod(0o755)
    monkeypatch.setenv("AMENT_PREFIX_PATH", os.pathsep.join(filter(None, [str(prefix), os.environ.get("AMENT_PREFIX_PATH")])))


class NamespacesUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, no iproute2)."""


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True)


@dataclass(frozen=True)
class Host:
    """A network namespace standing for a computer: its name, address and link's name."""

    name: str
    address: str
    link: str

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside this host."""
        return ["ip", "netns", "exec", self.name, *argv]

    def links(self) -> set[str]:
        return {line.split(":")[1].strip().split("@")[0] for line in _ip("-n", self.name, "-o", "link").stdout.splitlines()}

    def env(self, peer: "Host", folder: Path, domain: int) -> dict[str, str]:
        """The environment of a node process here: DDS over UDP on the link alone (no
        shared-memory transport), ``peer`` as its static peer, logs in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        return {**os.environ, "ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET",
                "ROS_STATIC_PEERS": peer.address, "FASTDDS_BUILTIN_TRANSPORTS": "UDPv4",
                "ROS_LOG_DIR": str(folder / "log"), "HOME": str(folder)}


class TwoHosts:
    """Two network namespaces of their own (neither is the machine's), joined by a veth
    pair: the only interfaces DDS sees in them are their loopbacks and that link. Removed
    on exit.

    Raises:
        NamespacesUnavailable: on entry, saying why.
    """

    def __init__(self) -> None:
        tag, subnet = f"{os.getpid() % 100000}", random.randrange(1, 250)
        self.hosts = (Host(f"mbrl{tag}arm", f"10.211.{subnet}.1", f"va{tag}"), Host(f"mbrl{tag}ws", f"10.211.{subnet}.2", f"vw{tag}"))
        self.made: list[str] = []

    def __enter__(self) -> tuple[Host, Host]:
        if shutil.which("ip") is None:
            raise NamespacesUnavailable("iproute2's `ip` is not installed: no network namespaces")
        for host in self.hosts:
            result = _ip("netns", "add", host.name)
            if result.returncode != 0:
                self.__exit__()
                raise NamespacesUnavailable(f"cannot make a network namespace here ({result.stderr.strip()}): needs root (CAP_SYS_ADMIN)")
            self.made.append(host.name)
        a, b = self.hosts
        commands = [
            ("link", "add", a.link, "netns", a.name, "type", "veth", "peer", "name", b.link, "netns", b.name),
            *[("-n", h.name, "addr", "add", f"{h.address}/24", "dev", h.link) for h in self.hosts],
            *[("-n", h.name, "link", "set", dev, "up") for h in self.hosts for dev in ("lo", h.link)],
            # DDS discovery's multicast goes out on the link (there is no default route)
            *[("-n", h.name, "route", "add", "224.0.0.0/4", "dev", h.link) for h in self.hosts],
        ]
        for command in commands:
            result = _ip(*command)
            if result.returncode != 0:
                self.__exit__()
                raise NamespacesUnavailable(f"cannot link the namespaces (ip {' '.join(command)}: {result.stderr.strip()})")
        return self.hosts

    def __exit__(self, *exc: object) -> None:
        for name in self.made:
            _ip("netns", "del", name)
        self.made.clear()
