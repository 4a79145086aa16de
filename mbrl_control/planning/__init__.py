"""Trajectory optimisation and model-predictive control."""

from mbrl_control.planning.optimizers import (
    CEM,
    MPPI,
    CEMConfig,
    CEMGradient,
    CEMGradientConfig,
    GradientConfig,
    GradientShooting,
    MPPIConfig,
    OptimizerResult,
    RandomShooting,
    RandomShootingConfig,
    TrajectoryOptimizer,
)
from mbrl_control.planning.propagation import PROPAGATIONS, trajectory_cost

__all__ = [
    "CEM", "MPPI", "CEMConfig", "CEMGradient", "CEMGradientConfig", "GradientConfig", "GradientShooting", "MPPIConfig", "OptimizerResult", "RandomShooting",
    "RandomShootingConfig", "TrajectoryOptimizer", "PROPAGATIONS", "trajectory_cost",
]
