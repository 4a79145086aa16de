"""Config dataclasses: the one place a component's parameters, defaults, ranges and
descriptions are defined.

A component declares its settings as a frozen dataclass deriving from :class:`Config`,
each field made with :func:`param`. Construction validates every field, so an invalid
value never reaches the component; the error names the field, the value and the rule.
ROS nodes declare their parameters from the same fields (descriptions and ranges
included), and ``config/*.yaml`` only overrides values.

Example::

    @dataclass(frozen=True)
    class PlannerConfig(Config):
        horizon: int = param(15, "Planning horizon in control steps.", low=1, high=200)

    PlannerConfig(horizon=0)   # ConfigError: PlannerConfig.horizon = 0: must be >= 1
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence, TypeVar

C = TypeVar("C", bound="Config")


class ConfigError(ValueError):
    """A configuration value was refused; the message names the field and the reason."""


def param(
    default: Any,
    description: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_exclusive: bool = False,
    choices: Sequence[Any] | Mapping[str, Any] | None = None,
    read_only: bool = False,
    ros_name: str = "",
) -> Any:
    """A config field with its description and the values it accepts.

    Args:
        default: default value; its type is the field's type (an int default makes an
            integer field, a float default accepts ints too, a tuple a list of strings).
        description: one sentence for users, shown in ROS parameter descriptors.
        low, high: inclusive numeric bounds (``low_exclusive`` makes ``low`` strict).
        choices: the allowed values, for string fields; a registry (a dict of classes by
            name) is read when a value is checked, so a variant registered later is a choice.
        read_only: may not change while a node runs (ROS read-only parameter).
        ros_name: the ROS parameter's name, where it is not the field's: a variant's type
            is declared inside the variant's namespace (``optimizer.type`` beside
            ``optimizer.population``), as a parameter file nests it and ``ros2 param
            dump`` writes it.
    """
    return dataclasses.field(
        default=default,
        metadata={
            "description": description,
            "low": low,
            "high": high,
            "low_exclusive": low_exclusive,
            "choices": choices if isinstance(choices, Mapping) or choices is None else tuple(choices),
            "read_only": read_only,
            "ros_name": ros_name,
        },
    )


def _check_field(owner: str, field: dataclasses.Field, value: Any) -> Any:
    """Return ``value`` coerced to the field's type, or raise ConfigError with the reason."""
    meta = field.metadata
    name = f"{owner}.{field.name}"
    kind = type(field.default)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} = {value!r}: must be true or false")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} = {value!r}: must be an integer")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} = {value!r}: must be a number")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{name} = {value!r}: must be finite")
    elif kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} = {value!r}: must be a string")
    elif kind is tuple:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name} = {value!r}: must be a list of strings")
        value = tuple(value)
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise ConfigError(f"{name} = {value!r}: must be one of {', '.join(map(repr, meta['choices']))}")
    low, high = meta.get("low"), meta.get("high")
    if low is not None:
        if meta.get("low_exclusive") and not value > low:
            raise ConfigError(f"{name} = {value!r}: must be > {low}")
        if not value >= low:
            raise ConfigError(f"{name} = {value!r}: must be >= {low}")
    if high is not None and not value <= high:
        raise ConfigError(f"{name} = {value!r}: must be <= {high}")
    return value


@dataclasses.dataclass(frozen=True)
class Config:
    """Base of all config dataclasses: validates each field, then :meth:`check`."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for field in dataclasses.fields(self):
            value = _check_field(owner, field, getattr(self, field.name))
            object.__setattr__(self, field.name, value)
        self.check()

    def check(self) -> None:
        """Cross-field rules; subclasses raise ConfigError naming the fields involved."""

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self: C, **overrides: Any) -> C:
        """A validated copy with ``overrides`` applied; unknown names are refused."""
        unknown = sorted(set(overrides) - set(self.field_names()))
        if unknown:
            raise ConfigError(
                f"{type(self).__name__}: unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(self.field_names())}"
            )
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def split_overrides(overrides: dict[str, Any], *configs: type[Config] | tuple[str, type[Config]]) -> list[dict[str, Any]]:
    """Route ``overrides`` to the config class that owns each name.

    A config given as ``(prefix, cls)`` (a variant's own: ``("optimizer", CEMConfig)``)
    also takes its fields by dotted name, ``optimizer.iterations``. A plain name goes to
    the one config that has it; a name several configs share is refused with their dotted
    names, as is a name none has, with the list of known names.

    Returns one dict per config, in order.
    """
    pairs = [item if isinstance(item, tuple) else ("", item) for item in configs]
    routed: list[dict[str, Any]] = [{} for _ in pairs]
    for key, value in overrides.items():
        prefix, _, name = key.rpartition(".")
        owners = [i for i, (p, cls) in enumerate(pairs) if (p == prefix or not prefix) and name in cls.field_names()]
        if len(owners) > 1:
            names = [f"{pairs[i][0]}.{name}" if pairs[i][0] else f"{pairs[i][1].__name__}.{name}" for i in owners]
            raise ConfigError(f"setting {key!r} is ambiguous: it is {' and '.join(names)}; give the dotted name")
        if not owners:
            known = sorted(f"{p}.{n}" if p else n for p, cls in pairs for n in cls.field_names())
            raise ConfigError(f"unknown setting {key!r}; known: {', '.join(known)}")
        routed[owners[0]][name] = value
    return routed
