"""Dynamics models: registered regressors (:mod:`mbrl_control.models.base`) behind one
dynamics interface (:class:`DynamicsModel`).

    make_model(name, obs_dim, act_dim, **overrides)    # name: any key of REGRESSORS
    load_model(path_or_bytes, obs_dim=None, act_dim=None)

Registered: ``ensemble`` (alias ``pe``, PETS's probabilistic ensemble), ``de``
(deterministic ensemble), ``mlp`` (one deterministic network), ``gp`` (Gaussian process).
"""

from __future__ import annotations

from mbrl_control.models.base import REGRESSORS, FitCancelled, FitReport, ModelConfig, Prediction, Regressor, cancellable, out_of_time, raise_if_cancelled, time_limited
from mbrl_control.models.dynamics import KIND, DynamicsModel, load_model, make_model
from mbrl_control.models.ensemble import MLP, DeterministicEnsemble, Ensemble, EnsembleConfig
from mbrl_control.models.gp import GP, GPConfig

__all__ = [
    "DeterministicEnsemble", "DynamicsModel", "Ensemble", "EnsembleConfig", "FitReport", "GP", "GPConfig", "KIND", "MLP",
    "FitCancelled", "ModelConfig", "Prediction", "REGRESSORS", "Regressor", "cancellable", "load_model", "make_model",
    "out_of_time", "raise_if_cancelled", "time_limited",
]
