"""ROS parameters declared from config dataclasses.

A node hands its configs to :class:`ParameterBinding`; every field becomes a parameter
with the field's description, range and read-only flag in its ``ParameterDescriptor``,
named as the field (or its ``ros_name``: a variant's type, ``optimizer.type``).
A ``ros2 param set`` is checked by ROS against the descriptor, then by the configs' own
rules (exclusive bounds, choices, cross-field checks): a value either rule refuses is
refused as a whole with ``SetParametersResult(successful=False, reason=...)`` naming the
parameter and the rule, and the node keeps its current settings. Accepted changes bump
:attr:`ParameterBinding.version`, which nodes check on their next tick.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Iterable, Sequence, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

from mbrl_control.config import Config, ConfigError

C = TypeVar("C", bound=Config)

INT64_MAX = 2**63 - 1
TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
         float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
         tuple: ParameterType.PARAMETER_STRING_ARRAY}


def descriptor(field: dataclasses.Field, read_only: bool = False, name: str = "") -> ParameterDescriptor:
    """The ``ParameterDescriptor`` of a config field (declared as ``name``, default the
    field's): type, description, range, read-only."""
    meta, kind = field.metadata, type(field.default)
    text = meta.get("description", "")
    if meta.get("choices"):
        text += f" One of: {', '.join(map(str, meta['choices']))}."
    result = ParameterDescriptor(
        name=name or field.name, type=TYPES[kind], description=text,
        read_only=read_only or bool(meta.get("read_only")),
    )
    low, high = meta.get("low"), meta.get("high")
    if meta.get("low_exclusive") and low is not None:
        result.additional_constraints = f"> {low}"
    if kind is int and (low is not None or high is not None):
        result.integer_range = [IntegerRange(
            from_value=int(low) if low is not None else -INT64_MAX,
            to_value=int(high) if high is not None else INT64_MAX, step=0,
        )]
    elif kind is float and (low is not None or high is not None):
        result.floating_point_range = [FloatingPointRange(
            from_value=float(low) if low is not None else -1e308,
            to_value=float(high) if high is not None else 1e308, step=0.0,
        )]
    return result


def _ros_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _widen_integer_override(node: Node, name: str, field: dataclasses.Field) -> None:
    """Read an integer given for a float parameter (``fit_seconds: 0`` in a parameter file,
    ``--set learner.fit_seconds=0``) as that float: ROS would refuse it as the wrong type and
    the node would not start."""
    given = node._parameter_overrides.get(name)
    if type(field.default) is float and given is not None and given.type_ == Parameter.Type.INTEGER:
        node._parameter_overrides[name] = Parameter(name, Parameter.Type.DOUBLE, float(given.value))


class ParameterBinding:
    """Declares ``node``'s parameters from ``configs`` and keeps validated copies.

    Args:
        node: the node that owns the parameters.
        configs: the node's settings with their starting values: each field of a config
            becomes a parameter of the same name, or only the fields named in a
            ``(config, names)`` pair (a node that needs a few of a component's settings).
            Names must not repeat across configs.
        read_only: names (fields) that may not change while the node runs, besides the
            fields marked read-only in their config.
        prefix: the parameters' namespace, for a variant's own config: ``"optimizer"``
            declares CEM's ``population`` as ``optimizer.population``.

    Raises:
        ConfigError: a value given at start-up (parameter file, launch) breaks a rule.
    """

    def __init__(
        self, node: Node, *configs: Config | tuple[Config, Sequence[str]], read_only: Iterable[str] = (), prefix: str = ""
    ) -> None:
        self.node = node
        self.prefix = f"{prefix}." if prefix else ""
        self._lock = threading.Lock()
        self._configs: dict[type, Config] = {}
        self._owner: dict[str, type] = {}  # parameter name -> the config class that owns its field
        self._field: dict[str, str] = {}  # parameter name -> that field's name
        read_only = set(read_only)
        for item in configs:
            config, names = item if isinstance(item, tuple) else (item, item.field_names())
            for field in dataclasses.fields(config):
                if field.name not in names:
                    continue
                name = self.prefix + (field.metadata.get("ros_name") or field.name)
                if name in self._owner:
                    raise ValueError(f"parameter {name!r} is in both {self._owner[name].__name__} and {type(config).__name__}")
                self._owner[name], self._field[name] = type(config), field.name
                _widen_integer_override(node, name, field)
                node.declare_parameter(name, _ros_value(getattr(config, field.name)), descriptor(field, field.name in read_only, name))
            values = {self._field[name]: node.get_parameter(name).value for name, owner in self._owner.items() if owner is type(config)}
            self._configs[type(config)] = config.replace(**values)
        self.version = 0
        node.add_on_set_parameters_callback(self._validate)
        node.add_post_set_parameters_callback(self._commit)

    def __getitem__(self, cls: type[C]) -> C:
        """The current settings of config class ``cls``."""
        with self._lock:
            return self._configs[cls]  # type: ignore[return-value]

    def _candidates(self, parameters: list[Parameter]) -> dict[type, Config]:
        changes: dict[type, dict[str, Any]] = {}
        for parameter in parameters:
            owner = self._owner.get(parameter.name)
            if owner is not None:
                changes.setdefault(owner, {})[self._field[parameter.name]] = parameter.value
        with self._lock:
            return {cls: self._configs[cls].replace(**values) for cls, values in changes.items()}

    def _validate(self, parameters: list[Parameter]) -> SetParametersResult:
        try:
            self._candidates(parameters)
        except ConfigError as err:
            return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    def _commit(self, parameters: list[Parameter]) -> None:
        candidates = self._candidates(parameters)
        with self._lock:
            self._configs.update(candidates)
            self.version += 1
        for parameter in parameters:
            if parameter.name in self._owner:
                self.node.get_logger().info(f"parameter {parameter.name} = {parameter.value!r}")
