"""Policy gradient (REINFORCE, actor-critic, NPG/TRPO, PPO) for Box action spaces."""

from mbrl_control.policies.config import ALGOS, PolicyConfig
from mbrl_control.policies.deployed import DeployedPolicy
from mbrl_control.policies.networks import GaussianPolicy, ValueNetwork
from mbrl_control.policies.train import PolicyResult, load_policy, save_policy, train_policy

__all__ = ["ALGOS", "DeployedPolicy", "GaussianPolicy", "PolicyConfig", "PolicyResult", "ValueNetwork", "load_policy", "save_policy", "train_policy"]
