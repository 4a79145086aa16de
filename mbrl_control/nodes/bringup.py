"""Run a node graph: what ``ros2 launch`` does, where the ``ros2`` CLI and ``launch`` are
missing (``make demo`` and the tests run it).

Two ways, with the same parameter file and overrides the launch files pass:

* ``processes=True``: one child process per node (``python -m <node module> --ros-args
  ...``), as ``ros2 launch`` starts them: the planner keeps a core to itself while the
  learner fits. Stopping sends SIGINT, then SIGKILL to a child that does not exit; a
  supervisor killed outright takes its children with it (SIGTERM, Linux's parent-death
  signal).
* in-process: each node spins in its own single-threaded executor on its own thread
  (rclpy's multi-threaded executor starves a wall-clock timer next to busy callbacks).
  Every node shares one Python interpreter, so the learner's fits slow the planner.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import Any, Iterable

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from mbrl_control.nodes.graph import GRAPHS, Graph, NodeSpec, namespace_remappings


class RunningGraph:
    """The nodes of ``graph`` started in ``context`` (a new one when None).

    Args:
        graph: a name in :data:`GRAPHS` or a :class:`Graph`.
        overrides: ``{node_name: {parameter: value}}``, on top of the parameter file;
            ``"*"`` applies to every node that declares the parameter.
        params_file: replaces the graph's parameter file.
        context: the rclpy context of in-process nodes and of nodes given to :meth:`spin`
            (a new one, initialised and shut down here, when None).
        processes: one child process per node instead of threads of this process.
        namespace: the namespace of every node (and of ``/clock`` and ``/diagnostics``:
            :func:`~mbrl_control.nodes.graph.namespace_remappings`), as launch's
            ``namespace:=``.

    Use as a context manager; leaving it shuts everything down. ``errors`` collects what
    stopped a node (an exception in a callback, a child process that exited).
    """

    def __init__(
        self,
        graph: str | Graph,
        overrides: dict[str, dict[str, Any]] | None = None,
        params_file: str | None = None,
        context: Context | None = None,
        processes: bool = False,
        namespace: str = "",
    ) -> None:
        self.graph = GRAPHS[graph] if isinstance(graph, str) else graph
        self.overrides = overrides or {}
        self.params_file = params_file or self.graph.params_file
        self.owns_context = context is None
        self.context = context or Context()
        self.nodes: dict[str, Node] = {}
        self._executors: list[SingleThreadedExecutor] = []
        self._threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self.processes = processes
        self.namespace = namespace.strip("/")
        self.children: dict[str, subprocess.Popen] = {}
        self._overrides_file: str | None = None

    def values(self, name: str) -> dict[str, Any]:
        """Parameter overrides of node ``name``."""
        return {"use_sim_time": self.graph.use_sim_time, **self.overrides.get("*", {}), **self.overrides.get(name, {})}

    def ros_args(self) -> list[str]:
        """The remappings every node of the graph gets: its namespace's clock and reports."""
        return [arg for old, new in namespace_remappings(self.namespace) for arg in ("-r", f"{old}:={new}")]

    def node_kwargs(self, name: str) -> dict[str, Any]:
        """What an in-process node of the graph is constructed with (also the monitor's)."""
        return {
            "context": self.context,
            "namespace": self.namespace,
            "cli_args": ["--ros-args", "--params-file", self.params_file, *self.ros_args()],
            "parameter_overrides": [Parameter(k, value=v) for k, v in self.values(name).items()],
        }

    def command(self, spec: NodeSpec, overrides_file: str) -> list[str]:
        """The command line of ``spec``'s node as a child process: the graph's parameter
        file, then a file of the overrides (a later file wins, as in a launch file; ``-p``
        would lose to the node's own section of the first)."""
        module = spec.target.partition(":")[0]
        namespace = ["-r", f"__ns:=/{self.namespace}"] if self.namespace else []
        return [sys.executable, "-m", module, "--ros-args", "--params-file", self.params_file, "--params-file", overrides_file,
                *namespace, *self.ros_args()]

    def write_overrides(self) -> str:
        """A parameter file with every node's overrides; removed on exit."""
        import tempfile

        import yaml

        sections = {f"/**/{spec.name}": {"ros__parameters": {k: list(v) if isinstance(v, tuple) else v for k, v in self.values(spec.name).items()}}
                    for spec in self.graph.specs()}
        fd, path = tempfile.mkstemp(prefix="mbrl_control_overrides_", suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(sections, f)
        self._overrides_file = path
        return path

    def check_children(self) -> None:
        """Book each child process that exited on its own as an error (once)."""
        for name, child in list(self.children.items()):
            if child.poll() is not None:
                self.errors.append(RuntimeError(f"node {name} exited with code {child.returncode} (see its log above)"))
                del self.children[name]

    def __enter__(self) -> "RunningGraph":
        if self.owns_context:
            rclpy.init(context=self.context)
        try:
            overrides_file = self.write_overrides() if self.processes else ""
            for spec in self.graph.specs():
                if self.processes:
                    self.children[spec.name] = subprocess.Popen(self.command(spec, overrides_file), preexec_fn=die_with_parent(os.getpid()))
                else:
                    self.nodes[spec.name] = spec.node_class()(**self.node_kwargs(spec.name))
            for node in self.nodes.values():
                self.spin(node)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def spin(self, node: Node) -> None:
        """Spin ``node`` (of this context) on a thread of its own until shutdown."""
        executor = SingleThreadedExecutor(context=self.context)
        executor.add_node(node)
        self._executors.append(executor)

        def run() -> None:
            try:
                executor.spin()
            except (ExternalShutdownException, KeyboardInterrupt):
                pass
            except BaseException as err:  # a node's callback raised: report, stop this node
                self.errors.append(err)
                node.get_logger().fatal(f"stopped: {type(err).__name__}: {err}")

        thread = threading.Thread(target=run, name=node.get_name(), daemon=True)
        thread.start()
        self._threads.append(thread)

    def __exit__(self, *exc: object) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for name, child in self.children.items():
            try:
                child.wait(timeout=60.0)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self._overrides_file is not None:
            os.unlink(self._overrides_file)
        for executor in self._executors:
            executor.shutdown(timeout_sec=5.0)
        for thread in self._threads:
            thread.join(timeout=10.0)
        for node in self.nodes.values():
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        if self.owns_context and self.context.ok():
            rclpy.shutdown(context=self.context)


def die_with_parent(parent: int):
    """A ``preexec_fn`` that has the child sent SIGTERM when ``parent`` dies, even by SIGKILL
    (Linux's parent-death signal; elsewhere None: children outlive a killed supervisor).
    A node left running without its supervisor would keep commanding the arm."""
    if not sys.platform.startswith("linux"):
        return None

    def arm() -> None:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


def parameter_overrides(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["mpc_planner.optimizer.population=128", "seed=3"]`` → ``{"mpc_planner":
    {"optimizer.population": 128}, "*": {"seed": 3}}``: a leading node name picks the node,
    the rest is the (dotted) parameter name; values parsed as JSON where they parse."""
    import json

    from mbrl_control.nodes.graph import NODES

    result: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected [NODE.]PARAMETER=VALUE")
        node, _, name = key.partition(".")
        if node != "*" and node not in NODES:  # no node named: every node's parameter
            node, name = "*", key
        if not name:
            raise ValueError(f"--set {item!r}: expected {node}.PARAMETER=VALUE")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        result.setdefault(node, {})[name] = value
    return result
