"""The real-arm path over an emulated Feetech bus: what the bus achieves, and whether the
arm learns through it as fast as the simulated arm does.

    .venv/bin/python benchmarks/servo_bus.py [--seconds 5] [--episodes 12] [--seeds 2]
        [--skip-bus] [--skip-learning] [--model gp] [--set NODE.NAME=VALUE ...] [--sdk-dir DIR ...] [--json PATH]

Part 1, the bus: 6 STS3215 at 1 Mbaud emulated in a process of their own (as on a real bus,
the servos do not share the driver's interpreter), read and commanded by the driver core on
the Feetech SDK (:class:`mbrl_control.feetech.bus.FeetechBus`):

* state rate: back-to-back sync reads of position, speed, load, voltage and temperature
  (8 bytes per servo), per second;
* the node's tick: reads at 100 Hz with a command every 50 ms, as servo_driver runs;
* command → goal-write latency (p50/p95/p99): from a command (``FeetechBus.write``, and
  over ROS 2 from the planner's message through a ``servo_driver`` process) to the moment
  the emulated servos take the goal (its sync write fully on the wire);
* the wire's own share: the bytes of a sync read (8 + 6 out, 6 × 14 back) at 10 bits each.

``--sdk-dir`` measures the raw sync-read rate of another copy of the SDK (e.g. ``pip install
--target DIR ftservo-python-sdk``; both are the module ``scservo_sdk``, so they cannot share
one environment): the table then compares SDKs side by side.

Part 2, learning: ``mbrl-control bringup emulated`` (servo_driver against the emulated bus)
and ``bringup sim`` (sim_node, no bus) for ``--episodes`` episodes and ``--seeds`` seeds, both
with the arm left where it is between episodes, as on a real arm: success per episode (final
distance under 2 cm) and the episodes until 90 % of the remaining ones succeed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SERVOS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


def calibration():
    """The packaged arm's calibration, and a sixth servo (the gripper) as on an SO-101."""
    from mbrl_control.arm.description import load_description
    from mbrl_control.feetech.calibration import Calibration, JointCalibration, calibration_for
    from mbrl_control.resources import default_urdf

    arm = calibration_for(load_description(default_urdf()))
    return Calibration({**arm.joints, "gripper": JointCalibration(6, 0, 0, 1400, 2700)})


def emulate(pipe, baudrate: int) -> None:
    """The emulated bus, in its own process: sends its port, then on request its goal writes."""
    from mbrl_control.feetech.emulator import EmulatedBus

    with EmulatedBus(calibration(), baudrate=baudrate) as bus:
        pipe.send(bus.port)
        while True:
            request = pipe.recv()
            if request == "stop":
                return
            pipe.send(list(bus.goal_writes))


def percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    p50, p95, p99 = np.percentile(np.asarray(values) * 1e3, [50, 95, 99])
    return f"{p50:.2f} / {p95:.2f} / {p99:.2f}"


def bus_figures(port: str, pipe, seconds: float, baudrate: int) -> dict:
    from mbrl_control.feetech.bus import BusConfig, BusError, FeetechBus

    cal = calibration()
    bus = FeetechBus(BusConfig(port=port, baudrate=baudrate), cal, SERVOS[:5]).open()
    figures = {}
    n, failed, start = 0, 0, time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            bus.read()
            n += 1
        except BusError:
            failed += 1
    figures["state rate (Hz), back to back"] = n / seconds
    figures["failed reads"] = failed
    # the node's tick: reads at 100 Hz, a command every 5th tick (20 Hz); latency to the servo
    sent, reads, start = [], 0, time.monotonic()
    rng = np.random.default_rng(0)
    tick = 0
    while time.monotonic() - start < seconds:
        due = start + tick * 0.01
        time.sleep(max(0.0, due - time.monotonic()))
        try:
            bus.read()
            reads += 1
        except BusError:
            pass
        if tick % 5 == 0:
            command = rng.uniform(-0.3, 0.3, 5)
            sent.append(time.monotonic())
            bus.write(command)
        tick += 1
    figures["state rate (Hz), node tick at 100 Hz"] = reads / seconds
    pipe.send("writes")
    writes = [w for w, _ in pipe.recv()][-len(sent):]
    figures["write latency ms p50/p95/p99 (FeetechBus.write)"] = percentiles([w - s for s, w in zip(sent, writes)])
    bus.close()
    wire = (8 + 6 + 6 * (6 + 8)) * 10 / baudrate
    figures["sync read on the wire (ms)"] = wire * 1e3
    return figures


def ros_latency(port: str, pipe, seconds: float) -> str:
    """Command message → goal write through a servo_driver process."""
    import rclpy
    from std_msgs.msg import Float64MultiArray

    from mbrl_control.nodes.bringup import RunningGraph
    from mbrl_control.nodes.graph import Graph

    folder = Path(tempfile.mkdtemp(prefix="servo_bus_"))
    cal = calibration().save(folder / "calibration.json")
    overrides = {"servo_driver": {"port": port, "calibration": str(cal)}}
    sent: dict[int, float] = {}
    with RunningGraph(Graph(("servo_driver",), "emulated.yaml", False), overrides, processes=True) as running:
        node = rclpy.create_node("servo_bus_benchmark", context=running.context)
        publisher = node.create_publisher(Float64MultiArray, "arm_controller/commands", 10)
        time.sleep(3.0)  # the driver process starts, opens the bus, discovers the publisher
        cal_arm = calibration()
        pipe.send("writes")
        before = len(pipe.recv())
        start, k = time.monotonic(), 0
        while time.monotonic() - start < seconds:
            pan = -0.4 + 0.0015 * (k % 500)  # one tick apart: each command is told by its goal
            ticks = int(cal_arm.to_ticks(np.array([pan]), ("shoulder_pan",))[0])
            sent[ticks] = time.monotonic()
            publisher.publish(Float64MultiArray(data=[pan, 0.0, 0.0, 0.0, 0.0]))
            k += 1
            time.sleep(0.05)
        time.sleep(0.5)
        pipe.send("writes")
        writes = pipe.recv()[before:]
        node.destroy_node()
    latencies = [when - sent[goals[1]] for when, goals in writes if goals.get(1) in sent and when >= sent[goals[1]]]
    return percentiles(latencies) + f"  ({len(latencies)} of {k} commands)"


RAW_PROBE = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import scservo_sdk as sdk
port = sdk.PortHandler(sys.argv[2]); port.openPort(); port.setBaudRate(1000000)
if hasattr(sdk, "PacketHandler"):  # feetech-servo-sdk (LeRobot's)
    handler = sdk.PacketHandler(0); reader = sdk.GroupSyncRead(port, handler, 56, 8)
else:  # ftservo-python-sdk: the handler owns the port
    handler = sdk.sms_sts(port); reader = sdk.GroupSyncRead(handler, 56, 8)
for i in range(1, 7): reader.addParam(i)
n, ok, start = 0, 0, time.monotonic()
while time.monotonic() - start < float(sys.argv[3]):
    ok += reader.txRxPacket() == 0; n += 1
print(n / float(sys.argv[3]), ok / max(n, 1), getattr(sdk, "__file__", ""))
"""


def sdk_rates(port: str, dirs: list[str], seconds: float) -> dict[str, str]:
    import scservo_sdk

    rows = {}
    for folder in [str(Path(scservo_sdk.__file__).parent.parent)] + dirs:
        out = subprocess.run([sys.executable, "-c", RAW_PROBE, folder, port, str(seconds)], capture_output=True, text=True)
        if out.returncode != 0:
            rows[folder] = f"failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
            continue
        rate, ok, where = out.stdout.split()
        rows[where] = f"{float(rate):.0f} sync reads/s, {100 * float(ok):.0f} % complete"
    return rows


def learning(graph: str, seed: int, episodes: int, out: Path, model: str, settings: list[str]) -> list[bool]:
    seeding = {"emulated": ["--set", f"emulated_arm.seed={seed}"],
               "sim": ["--set", f"sim_node.seed={seed}", "--set", "sim_node.reset_arm=false"]}[graph]
    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_DOMAIN_ID": str(60 + seed + (10 if graph == "sim" else 0))}
    extra = [arg for item in settings for arg in ("--set", item)]
    subprocess.run([sys.executable, "-m", "mbrl_control.cli", "bringup", graph, "--episodes", str(episodes), "--out", str(out),
                    "--model", model, *seeding, *extra],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = (out / "episodes.csv").read_text().splitlines()[1:]
    return [float(r.split(",")[2]) < 0.02 for r in rows]


def episodes_to_90(success: list[bool]) -> int | None:
    """The first episode from which at least 90 % of the remaining ones (3 or more) succeed."""
    for start in range(len(success) - 2):
        if np.mean(success[start:]) >= 0.9:
            return start
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--baudrate", type=int, default=1_000_000)
    parser.add_argument("--episodes", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--skip-learning", action="store_true")
    parser.add_argument("--model", default="ensemble", help="the learner's model in both graphs")
    parser.add_argument("--set", nargs="*", default=[], metavar="[NODE.]NAME=VALUE", help="parameters for both graphs, as bringup takes them")
    parser.add_argument("--skip-bus", action="store_true")
    parser.add_argument("--sdk-dir", nargs="*", default=[], help="folders holding another scservo_sdk to compare")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", "59")

    results: dict = {}
    if not args.skip_bus:
        context = mp.get_context("spawn")
        here, there = context.Pipe()
        emulator = context.Process(target=emulate, args=(there, args.baudrate), daemon=True)
        emulator.start()
        port = here.recv()
        results["bus"] = bus_figures(port, here, args.seconds, args.baudrate)
        results["bus"]["write latency ms p50/p95/p99 (ROS message → servo_driver → bus)"] = ros_latency(port, here, args.seconds)
        here.send("stop")
        emulator.join(timeout=5)
        emulator = context.Process(target=emulate, args=(there, args.baudrate), daemon=True)
        emulator.start()
        port = here.recv()
        results["sdk"] = sdk_rates(port, args.sdk_dir, args.seconds)
        here.send("stop")
        emulator.join(timeout=5)

        print(f"\nEmulated bus: 6 × STS3215 at {args.baudrate} baud, the emulator in its own process")
        for key, value in results["bus"].items():
            print(f"  {key:<64} {value:.1f}" if isinstance(value, float) else f"  {key:<64} {value}")
        print("\nSDK (raw GroupSyncRead of 8 bytes × 6 servos, back to back)")
        for key, value in results["sdk"].items():
            print(f"  {key:<64} {value}")

    if not args.skip_learning:
        runs: dict[str, list[list[bool]]] = {"emulated": [], "sim": []}
        with tempfile.TemporaryDirectory(prefix="servo_bus_learning_") as folder:
            for seed in range(args.seeds):
                for graph in runs:
                    print(f"bringup {graph}, seed {seed}: {args.episodes} episodes …", flush=True)
                    runs[graph].append(learning(graph, seed, args.episodes, Path(folder) / f"{graph}{seed}", args.model, args.set))
        results["learning"] = {g: {"success": r, "episodes_to_90": [episodes_to_90(s) for s in r]} for g, r in runs.items()}
        print(f"\nLearning to reach through the bus vs the simulator ({args.seeds} seeds, {args.episodes} episodes, "
              f"{args.model} model{', ' + ' '.join(args.set) if args.set else ''}; no reset between episodes; "
              "success: final distance < 2 cm)")
        print(f"  {'episode':<24}" + "".join(f"{e:>5}" for e in range(args.episodes)))
        for graph, success in runs.items():
            rate = np.mean(np.array(success, dtype=float), axis=0)
            print(f"  {'bringup ' + graph + ' success':<24}" + "".join(f"{100 * r:>4.0f}%" for r in rate))
        for graph, figures in results["learning"].items():
            print(f"  episodes to 90 % ({graph}): {figures['episodes_to_90']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
