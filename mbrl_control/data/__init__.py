"""Transitions and datasets."""

from mbrl_control.data.transitions import TransitionDataset

__all__ = ["TransitionDataset"]
