"""Trajectory optimisation and model-predictive control."""

from mbrl_control.planning.optimizers import (
    CEM,
    MPPI,
    CEMConfig,
    MPPIConfig,
    OptimizerResult,
    RandomShooting,
    RandomShootingConfig,
    TrajectoryOptimizer,
)

__all__ = [
    "CEM", "MPPI", "CEMConfig", "MPPIConfig", "OptimizerResult", "RandomShooting",
    "RandomShootingConfig", "TrajectoryOptimizer",
]
