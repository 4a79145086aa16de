"""Dynamics models behind one interface (:class:`DynamicsModel`).

    make_model("ensemble" | "pe" | "mlp" | "gp", obs_dim, act_dim, **overrides)
    load_model(path, obs_dim=None, act_dim=None)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mbrl_control.checkpoint import CheckpointError, load_torch, source_name
from mbrl_control.models.base import KIND, DynamicsModel, FitReport, Prediction
from mbrl_control.models.ensemble import EnsembleConfig, EnsembleModel
from mbrl_control.models.gp import GPConfig, GPModel

MODELS: dict[str, type[DynamicsModel]] = {EnsembleModel.name: EnsembleModel, GPModel.name: GPModel}

# Named presets: the probabilistic ensemble of PETS, and the deterministic MLP of Nagabandi et al.
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "ensemble": ("ensemble", {}),
    "pe": ("ensemble", {}),
    "de": ("ensemble", {"probabilistic": False}),
    "mlp": ("ensemble", {"probabilistic": False, "members": 1, "bootstrap": False}),
    "gp": ("gp", {}),
}


def make_model(name: str, obs_dim: int, act_dim: int, **overrides: Any) -> DynamicsModel:
    """A new, unfitted model: ``"ensemble"``/``"pe"`` (probabilistic ensemble), ``"de"``
    (deterministic ensemble), ``"mlp"`` (one deterministic network) or ``"gp"``."""
    if name not in PRESETS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(PRESETS)}")
    kind, preset = PRESETS[name]
    return MODELS[kind](obs_dim, act_dim, **{**preset, **overrides})


def load_model(source: str | Path | bytes, obs_dim: int | None = None, act_dim: int | None = None) -> DynamicsModel:
    """Load any model checkpoint (a file, or its bytes from ``/mbrl/model``); with dims
    given, refuse one made for other dims."""
    payload = load_torch(source, KIND)
    name = source_name(source)
    kind = str(payload["kind"]).removeprefix(f"{KIND}.")
    if kind not in MODELS:
        raise CheckpointError(f"{name}: unknown model type {kind!r}")
    return MODELS[kind].from_payload(payload, name, obs_dim, act_dim)


__all__ = [
    "DynamicsModel", "EnsembleConfig", "EnsembleModel", "FitReport", "GPConfig", "GPModel",
    "Prediction", "make_model", "load_model",
]
