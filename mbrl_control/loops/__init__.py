"""Learning loops: model-based RL with MPC (:func:`train_mbrl`)."""

from mbrl_control.loops.mbrl import Episode, MBRLConfig, MBRLResult, train_mbrl

__all__ = ["Episode", "MBRLConfig", "MBRLResult", "train_mbrl"]
