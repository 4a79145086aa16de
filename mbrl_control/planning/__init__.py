"""Trajectory optimisation and model-predictive control."""

from mbrl_control.planning.optimizers import (
    CEM,
    ICEM,
    MPPI,
    OPTIMIZERS,
    CEMConfig,
    CEMGradient,
    CEMGradientConfig,
    GradientConfig,
    GradientShooting,
    ICEMConfig,
    MPPIConfig,
    OptimizerResult,
    RandomShooting,
    RandomShootingConfig,
    TrajectoryOptimizer,
    colored_noise,
)
from mbrl_control.planning.propagation import PROPAGATIONS, trajectory_cost

__all__ = [
    "CEM", "ICEM", "MPPI", "OPTIMIZERS", "CEMConfig", "CEMGradient", "CEMGradientConfig", "GradientConfig", "GradientShooting",
    "ICEMConfig", "MPPIConfig", "OptimizerResult", "RandomShooting", "RandomShootingConfig", "TrajectoryOptimizer",
    "PROPAGATIONS", "colored_noise", "trajectory_cost",
]
