"""Learning loops: model-based RL with MPC (:func:`train_mbrl`), policy search through the
model, and the policy trainer's methods (:data:`~mbrl_control.loops.policy_methods.POLICY_METHODS`)."""

from mbrl_control.loops.mbrl import Episode, MBRLConfig, MBRLResult, train_mbrl

__all__ = ["Episode", "MBRLConfig", "MBRLResult", "train_mbrl"]
