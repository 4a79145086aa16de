"""End-to-end control loop over DDS on this machine: from a /joint_states message to the
command it produces, the achieved command rate and its jitter, for the MPC planner (PE
ensemble, GP) and the policy controller, each in its own process as launch starts them.

A driver stand-in publishes joint states at 100 Hz (each stamped with its send time) and a
target; every command received is matched to the newest state sent before it, so the
latency counts a state's wait for the next tick, the planning and both DDS hops.

    python benchmarks/control_loop.py [--seconds 20] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 100 + 1))

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from geometry_msgs.msg import PointStamped  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from mbrl_control.arm.env import ArmReach  # noqa: E402
from mbrl_control.data.transitions import TransitionDataset  # noqa: E402
from mbrl_control.models import make_model  # noqa: E402
from mbrl_control.nodes.bringup import RunningGraph  # noqa: E402
from mbrl_control.nodes.graph import Graph  # noqa: E402


def random_data(steps: int) -> TransitionDataset:
    env, rng = ArmReach(), np.random.default_rng(0)
    data = TransitionDataset(16, 5)
    obs, _ = env.reset(seed=0)
    for t in range(steps):
        if t and t % 100 == 0:
            obs, _ = env.reset()
        action = rng.uniform(-1, 1, 5)
        next_obs, *_ = env.step(action)
        data.append(obs, action, next_obs, episode=t // 100)
        obs = next_obs
    return data


class Driver:
    """Joint states at 100 Hz and a target; commands matched to the newest state before them."""

    def __init__(self, node) -> None:
        self.node = node
        self.sent: list[float] = []
        self.latencies: list[float] = []
        self.arrivals: list[float] = []
        self.names = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll"]
        self.states = node.create_publisher(JointState, "joint_states", 10)
        self.target = node.create_publisher(PointStamped, "mbrl/target", 10)
        node.create_subscription(Float64MultiArray, "arm_controller/commands", self.on_command, 10)
        node.create_timer(0.01, self.publish)

    def publish(self) -> None:
        msg = JointState()
        msg.name, msg.position, msg.velocity = self.names, [0.1, -0.2, 0.3, 0.1, 0.0], [0.0] * 5
        self.sent.append(time.monotonic())
        self.states.publish(msg)
        target = PointStamped()
        target.point.x, target.point.y, target.point.z = 0.2, 0.1, 0.15
        self.target.publish(target)

    def on_command(self, msg: Float64MultiArray) -> None:
        now = time.monotonic()
        before = [t for t in self.sent[-20:] if t < now]
        if before:
            self.latencies.append(now - before[-1])
            self.arrivals.append(now)


def measure(name: str, node_name: str, overrides: dict, seconds: float) -> dict:
    graph = Graph((node_name,), "sim.yaml", False)
    with RunningGraph(graph, {node_name: overrides}, processes=True) as running:
        node = rclpy.create_node("bench_driver", context=running.context)
        driver = Driver(node)
        running.spin(node)
        deadline = time.monotonic() + 60
        while len(driver.latencies) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        driver.latencies.clear(), driver.arrivals.clear()
        time.sleep(seconds)
        latencies, arrivals = np.array(driver.latencies) * 1e3, np.array(driver.arrivals)
        node.destroy_node()
    intervals = np.diff(arrivals) * 1e3
    row = {"loop": name, "commands": len(latencies), "rate_hz": len(latencies) / seconds}
    for q in (50, 95, 99):
        row[f"latency_p{q}_ms"] = float(np.percentile(latencies, q)) if len(latencies) else float("nan")
    row["jitter_std_ms"] = float(np.std(intervals)) if len(intervals) > 1 else float("nan")
    row["interval_p99_ms"] = float(np.percentile(intervals, 99)) if len(intervals) > 1 else float("nan")
    print(f"  {name}: {row['rate_hz']:.1f} Hz, latency p50 {row['latency_p50_ms']:.1f} ms, p95 {row['latency_p95_ms']:.1f} ms", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="control_loop_"))
    print("fitting models on 500 random transitions and training a small policy ...", flush=True)
    data = random_data(500)
    paths = {}
    for kind in ("ensemble", "gp"):
        model = make_model(kind, 16, 5, goal_dims=3)
        model.fit(data)
        paths[kind] = str(model.save(work / f"{kind}.pt"))
    from mbrl_control.policies.train import save_policy, train_policy

    policy = train_policy("mbrl_control/ArmReach-v0", algo="ppo", total_steps=2048, eval_every=2048, eval_episodes=1)
    paths["policy"] = str(save_policy(policy, work / "policy.pt"))

    rows = [
        measure("MPC, PE ensemble (cem, defaults)", "mpc_planner", {"model_path": paths["ensemble"]}, args.seconds),
        measure("MPC, GP (cem, expectation)", "mpc_planner", {"model_path": paths["gp"], "propagation": "expectation"}, args.seconds),
        measure("policy (PPO MLP 64x64)", "policy_controller", {"policy_path": paths["policy"]}, args.seconds),
    ]
    header = f"| {'loop':34s} | commands | rate Hz | latency p50 ms | p95 ms | p99 ms | interval std ms | interval p99 ms |"
    print("\n" + header + "\n|" + "---|" * 8)
    for r in rows:
        print(f"| {r['loop']:34s} | {r['commands']:8d} | {r['rate_hz']:7.1f} | {r['latency_p50_ms']:14.1f} | "
              f"{r['latency_p95_ms']:6.1f} | {r['latency_p99_ms']:6.1f} | {r['jitter_std_ms']:15.1f} | {r['interval_p99_ms']:15.1f} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
