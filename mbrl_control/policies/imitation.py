"""Behaviour cloning and DAgger (seed 002): distil an expert — the MPC planner — into a
policy that costs microseconds per action.

Behaviour cloning maximises ``Σ log π_θ(a* | s)`` over the expert's state-action pairs; its
policy drifts into states the expert never visited (compounding error). DAgger asks the
expert what it would have done in the states the *policy* visits and trains on the
aggregate:

    D ← expert rollouts;  π ← BC(D)
    repeat: run π, label its states s with a* = expert(s), D ← D ∪ {(s, a*)}, π ← BC(D)

Each π is a new policy fitted to all of D, as the algorithm reads; continuing to train the
previous one did worse on ArmReach (20 % vs 40-70 % success on the same 16 000 labels). It is
:data:`MEMBERS` networks cloned side by side, each from its own initialisation, that act with
their mean action: what a single clone misses on ArmReach is mostly its own seed.

For a goal-conditioned task (the observation ends in the goal) the expert can also label each
visited episode again with other goals from the task: the same states, in time order, with
the goal part replaced. A reaching policy must generalise across goals, and a few episodes
show it only a few; relabelled goals cost expert compute but no steps on the arm. Goals drawn
from the task are mostly far from where the episode went; *hindsight* goals (as in hindsight
experience replay) are places the episode reached, so the expert also labels the last
centimetres of an approach, where a reaching policy needs its precision. *Stay* goals put
each state's goal where that state already is, so the expert also labels holding still at
a goal: without them a cloned ArmReach policy reached its targets and drifted 2-6 cm off
(on the same 9 600 labels, 3 clones: 77 % success without, 90 % with a quarter more
states labelled "hold").

What the policy needs to finish a reach is the goal's direction among its inputs
(``relative_goal``, see :func:`~mbrl_control.policies.networks.with_goal_difference`), and
labels with little planner noise: an expert that plans through the model's mean rather than
sampled trajectories (``pg_trainer``'s DAgger's expert; 93 % against 88 % on ArmReach, 4
seeds), or with a larger sampling budget than the deployed controller, which costs compute
offline only.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import gymnasium as gym
import numpy as np
import torch

from mbrl_control.data.transitions import TransitionDataset
from mbrl_control.devices import resolve_device
from mbrl_control.models.base import raise_if_cancelled
from mbrl_control.policies.config import MODEL_BASED_NETWORK, PolicyConfig
from mbrl_control.policies.networks import GaussianPolicy, goal_inputs
from mbrl_control.policies.rollout import EpisodeStats, evaluate
from mbrl_control.policies.train import make_networks

# Each round's clone, for dagger() and pg_trainer's DAgger alike: MEMBERS networks side by side,
# each from its own initialisation, acting with their mean, fitted for EPOCHS epochs. On ArmReach
# (the 20 000 labels of each of 4 DAgger runs, benchmarks/model_based_policies.py seeds 0-3, whose
# expert planned through the model's mean; 30 targets; mean success over clone seeds, worst in ()):
#   1 network, 50 epochs 94 % (87 %), 25 epochs 95 % (83 %); 2 networks, 25 epochs 97 % (90 %);
#   3 networks 97 % (93 %); 4 networks 97 % (93 %), and 97.5 % (90 %) at 50 epochs.
# What one clone misses is mostly its own seed, and the mean of two about halves it. Two
# networks for 25 epochs take as long as one for 50 (11 s against 12 s on 20 000 labels, one
# thread); 50 epochs suited one network on labels planned by trajectory sampling (83 % against
# 77 % at 25), whose noise a longer fit chases (100 epochs 76 %).
MEMBERS = 2
EPOCHS = 25

Expert = Callable[[np.ndarray], np.ndarray]  # obs [obs_dim] -> action [A]
# sequences of states in time order [B, T, obs_dim], the actions taken at them [B, T, A] (or None) -> the expert's [B, T, A]
Labeller = Callable[[np.ndarray, np.ndarray | None], np.ndarray]


def label_states(expert: Expert, obs: np.ndarray, episode: np.ndarray, reset_expert: Callable[[], None] | None = None) -> np.ndarray:
    """The expert's actions [N, A] for recorded states ``obs`` [N, obs_dim] in time order,
    ``reset_expert`` called where the ``episode`` id [N] changes (DAgger's labelling of the
    states a policy visited, one state at a time)."""
    actions = []
    for k, state in enumerate(obs):
        raise_if_cancelled()  # a node shutting down mid-round (models.cancellable)
        if reset_expert is not None and (k == 0 or episode[k] != episode[k - 1]):
            reset_expert()
        actions.append(np.asarray(expert(state), dtype=np.float64))
    return np.array(actions).reshape(len(obs), -1)


def one_by_one(expert: Expert, reset_expert: Callable[[], None] | None = None) -> Labeller:
    """A :data:`Labeller` that asks ``expert`` state by state, each sequence from a reset
    (:func:`label_states`)."""

    def labeller(sequences: np.ndarray, sent: np.ndarray | None = None) -> np.ndarray:
        B, T = sequences.shape[:2]
        flat = sequences.reshape(B * T, -1)
        return label_states(expert, flat, np.repeat(np.arange(B), T), reset_expert).reshape(B, T, -1)

    return labeller


@dataclass(frozen=True)
class Relabelling:
    """The other goals each visited episode is labelled again for (goal-conditioned tasks,
    whose observation ends in the goal's ``goal_dims`` entries): ``relabelled`` goals from
    the task (``sample_goal()``), ``hindsight`` goals the episode achieved
    (``achieved_goal(obs)`` at uniformly drawn steps), and with ``stay`` one copy whose
    every state has its own achieved goal as goal (what holding still at a goal looks like)."""

    goal_dims: int = 0
    relabelled: int = 0
    hindsight: int = 0
    sample_goal: Callable[[], np.ndarray] | None = None
    achieved_goal: Callable[[np.ndarray], np.ndarray] | None = None
    stay: bool = False

    def __post_init__(self) -> None:
        for name, count, needs in (("relabelled_goals", self.relabelled, self.sample_goal),
                                   ("hindsight_goals", self.hindsight, self.achieved_goal),
                                   ("stay_goals", int(self.stay), self.achieved_goal)):
            if count > 0 and not (self.goal_dims > 0 and needs is not None):
                what = "sample_goal()" if name == "relabelled_goals" else "achieved_goal()"
                raise ValueError(f"{name} = {count}: the task has no goal_dims and {what} to relabel with")

    @classmethod
    def of(cls, task: object, relabelled: int = 0, hindsight: int = 0, stay: bool = False) -> "Relabelling":
        """From a task with ``goal_dims``, ``sample_goal()`` and ``achieved_goal(obs)``."""
        try:
            return cls(int(getattr(task, "goal_dims", 0)), relabelled, hindsight,
                       getattr(task, "sample_goal", None), getattr(task, "achieved_goal", None), stay)
        except ValueError as err:
            raise ValueError(f"{err} ({type(task).__name__})") from None

    def states(self, visited: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``visited`` [T, obs_dim] (one episode) again for each of K goals: [K, T, obs_dim]."""
        goals = [self.sample_goal() for _ in range(self.relabelled)]
        goals += [self.achieved_goal(visited[rng.integers(len(visited))]) for _ in range(self.hindsight)]
        copies = np.repeat(visited[None], len(goals) + self.stay, axis=0)  # [K, T, obs_dim]
        if goals:
            copies[: len(goals), :, -self.goal_dims :] = np.asarray(goals)[:, None]
        if self.stay:
            copies[-1, :, -self.goal_dims :] = self.achieved_goal(visited)
        return copies


def aggregate(labels: TransitionDataset, label: Labeller, episodes: TransitionDataset, relabelling: Relabelling,
              rng: np.random.Generator, expert_acted: bool = False) -> float:
    """DAgger's ``D ← D ∪ {(s, expert(s))}``: each episode of ``episodes`` and its copies
    with other goals (:class:`Relabelling`) labelled as sequences, in one ``label`` call per
    episode, and appended to ``labels`` (the episode's states, then each copy's; a copy
    keeps the episode's id and steps). ``expert_acted``: the episodes' own actions are the
    expert's (behaviour cloning data), only the copies are labelled. Returns the seconds
    the expert spent."""
    seconds = 0.0
    for e in episodes.episodes:
        rows = episodes.episode == e
        visited, sent, after = episodes.obs[rows], episodes.act[rows], episodes.next_obs[rows]
        copies = relabelling.states(visited, rng)  # [K, T, obs_dim]
        sequences = copies if expert_acted else np.concatenate([visited[None], copies])
        start = time.perf_counter()
        asked = label(sequences, np.repeat(sent[None], len(sequences), 0)) if len(sequences) else np.zeros((0, len(visited), sent.shape[1]))
        seconds += time.perf_counter() - start
        actions = np.concatenate([sent[None], asked]) if expert_acted else asked
        states = np.concatenate([visited[None], copies])
        next_states = np.repeat(after[None], len(states), 0)
        if relabelling.goal_dims:  # the goal is carried through a step
            next_states[:, :, -relabelling.goal_dims :] = states[:, :, -relabelling.goal_dims :]
        labels.append(states.reshape(-1, visited.shape[1]), np.asarray(actions).reshape(-1, sent.shape[1]),
                      next_states.reshape(-1, visited.shape[1]), np.full(states.shape[0] * states.shape[1], e),
                      np.tile(episodes.time[rows], len(states)))
    return seconds


def clone(obs_dim: int, low: np.ndarray, high: np.ndarray, cfg: PolicyConfig, labels: TransitionDataset, round: int,
          epochs: int, learning_rate: float = 1e-3, device: str = "cpu") -> tuple[GaussianPolicy, list[float]]:
    """DAgger's ``π ← BC(D)``: a new policy of ``cfg``'s networks (seeded ``cfg.seed +
    round``) cloned from all of ``labels``, as the algorithm reads. Returns it and the
    per-epoch losses of :func:`behaviour_cloning`."""
    torch.manual_seed(cfg.seed + round)
    policy = make_networks(obs_dim, low, high, cfg)[0]
    losses = behaviour_cloning(policy, labels.obs, labels.act, epochs, learning_rate=learning_rate, seed=cfg.seed + round, device=device)
    policy.eval()
    return policy, losses


def behaviour_cloning(
    policy: GaussianPolicy,
    obs: np.ndarray,
    actions: np.ndarray,
    epochs: int = 100,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
) -> list[float]:
    """Fit ``policy`` to expert pairs (``obs`` [N, obs_dim], ``actions`` [N, A] in the
    environment's units) by maximum likelihood, each of its ``members`` on its own; the
    observation statistics are refitted to ``obs``. On ``device`` (cpu, cuda, auto), the
    policy back on the CPU after. Returns the mean negative log-likelihood per epoch."""
    x = torch.as_tensor(obs, dtype=torch.float32)
    raw = policy.from_env(torch.as_tensor(actions, dtype=torch.float32))
    policy.obs_norm.reset()
    policy.update_obs_stats(x)
    where = resolve_device(device)[0]
    try:
        policy.to(where)
        return _clone(policy, x.to(where), raw.to(where), epochs, batch_size, learning_rate, seed)
    finally:
        policy.to("cpu")


def _clone(policy: GaussianPolicy, x: torch.Tensor, raw: torch.Tensor, epochs: int, batch_size: int, learning_rate: float,
           seed: int) -> list[float]:
    """Maximum-likelihood epochs of ``policy`` on ``x`` [N, obs_dim] → ``raw`` [N, A] (its
    pre-squash actions), on their device."""
    optimizer = torch.optim.Adam(policy.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        raise_if_cancelled()
        order, total = torch.randperm(len(x), generator=generator), 0.0
        for start in range(0, len(x), batch_size):
            rows = order[start : start + batch_size].to(x.device)
            loss = -policy.member_log_prob(x[rows], raw[rows]).mean()  # each member on its own
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
        losses.append(total / len(x))
    return losses


@dataclass
class DaggerIteration:
    """One round: how many labelled states the policy was trained on, the real env steps
    taken so far, its evaluation, the seconds the expert spent labelling, and the wall
    seconds since :func:`dagger` started."""

    labels: int
    env_steps: int
    mean_return: float
    success_rate: float | None
    expert_seconds: float
    bc_loss: float
    seconds: float


@dataclass
class DaggerResult:
    """The distilled policy and its learning record."""

    policy: GaussianPolicy
    iterations: list[DaggerIteration] = field(default_factory=list)
    obs: np.ndarray | None = None
    actions: np.ndarray | None = None
    env_steps: int = 0


def dagger(
    env: gym.Env,
    expert: Expert,
    iterations: int = 6,
    episodes_per_iteration: int = 2,
    eval_episodes: int = 10,
    seed: int = 0,
    epochs: int = EPOCHS,
    learning_rate: float = 1e-3,
    reset_expert: Callable[[], None] | None = None,
    label: Labeller | None = None,
    relabelled_goals: int = 0,
    hindsight_goals: int = 0,
    stay_goals: bool = False,
    progress: bool = False,
    policy_to_expert: Callable[[GaussianPolicy], None] | None = None,
    **network: object,
) -> DaggerResult:
    """Distil ``expert`` (obs [obs_dim] → action [A]) into a Gaussian MLP policy.

    Iteration 0 rolls out the expert (behaviour cloning data); each later iteration rolls
    out the policy's mean action. After each episode its states are labelled
    (:func:`aggregate`): by ``label`` (a :data:`Labeller`: state sequences [B, T, obs_dim]
    → actions [B, T, A], all sequences at once, e.g. :meth:`MPCController.label`) where
    given, else by ``expert`` state by state with ``reset_expert`` at each sequence's start
    (an MPC controller's warm start).
    ``relabelled_goals`` > 0 needs ``env.unwrapped.goal_dims`` and ``sample_goal()``: the
    expert labels each episode's states again for that many goals drawn from the task.
    ``hindsight_goals`` > 0 needs ``goal_dims`` and ``achieved_goal(obs)``: the goals are
    what the episode achieved at uniformly drawn steps; ``stay_goals`` labels one more copy
    whose every state's goal is where it already is (:class:`Relabelling`). Each iteration clones a new policy
    from every label so far (:func:`clone`), as the ``pg_trainer`` node does, and hands it
    to ``policy_to_expert`` where given (an MPC expert's ``set_policy``: with
    ``proposals`` > 0 its plans start from the policy's own sequences too). On ArmReach
    that made worse labels: where the policy's sequence wins the expert's search by a
    noisy cost estimate, the label is the policy's own action, and a clone learns its
    own drift back (12 000 labels of one run each way, 3 clones each, 30 targets: 63 %
    with 8 proposals against 83 % without). The clones' misses were mostly such drift:
    a reach, then steps along the arm's redundant joints until a joint limit dragged the
    end effector off.

    Args:
        **network: :class:`PolicyConfig` network fields (``hidden``, ``layers``,
            ``activation``, ``members``, ``seed``...), over :data:`~mbrl_control.policies.config.MODEL_BASED_NETWORK`
            and :data:`MEMBERS` networks;
            ``relative_goal`` defaults to the task's (:func:`~mbrl_control.policies.networks.goal_inputs`).
    """
    space, task = env.action_space, env.unwrapped
    cfg = PolicyConfig(seed=seed, relative_goal=goal_inputs(task, env.observation_space.shape[0])).replace(**{**MODEL_BASED_NETWORK, "members": MEMBERS, **network})
    relabelling = Relabelling.of(task, relabelled_goals, hindsight_goals, stay_goals)
    labeller = label if label is not None else one_by_one(expert, reset_expert)
    rng = np.random.default_rng(seed)
    obs_dim = env.observation_space.shape[0]
    labels = TransitionDataset(obs_dim, space.shape[0])
    policy: GaussianPolicy | None = None
    result = DaggerResult(None)  # type: ignore[arg-type]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=iterations, unit="iteration", desc="DAgger", file=sys.stderr)
    episode, started = 0, time.perf_counter()
    for iteration in range(iterations):
        expert_seconds = 0.0
        for _ in range(episodes_per_iteration):
            obs, _ = env.reset(seed=seed * 100_003 + episode)
            if reset_expert is not None:
                reset_expert()
            visited = TransitionDataset(obs_dim, space.shape[0])
            done = False
            while not done:
                if policy is None:
                    start = time.perf_counter()
                    action = np.asarray(expert(obs), dtype=np.float64)
                    expert_seconds += time.perf_counter() - start
                else:
                    action = policy.act(obs)
                next_obs, _, terminated, truncated, _ = env.step(action.astype(space.dtype))
                visited.append(obs, action, next_obs, episode=episode)
                result.env_steps += 1
                obs, done = next_obs, terminated or truncated
            expert_seconds += aggregate(labels, labeller, visited, relabelling, rng, expert_acted=policy is None)
            episode += 1
        policy, losses = clone(obs_dim, space.low, space.high, cfg, labels, iteration, epochs, learning_rate)
        result.policy = policy
        if policy_to_expert is not None:
            policy_to_expert(policy)
        stats: EpisodeStats = evaluate(policy, env, eval_episodes, seed=10_000_019)
        result.iterations.append(DaggerIteration(
            labels=len(labels), env_steps=result.env_steps, mean_return=float(np.mean(stats.returns)),
            success_rate=float(np.mean(stats.successes)) if stats.successes else None,
            expert_seconds=expert_seconds, bc_loss=losses[-1], seconds=time.perf_counter() - started,
        ))
        if bar is not None:
            last = result.iterations[-1]
            bar.set_postfix(labels=last.labels, ret=f"{last.mean_return:.1f}",
                            success="-" if last.success_rate is None else f"{last.success_rate:.0%}")
            bar.update()
    if bar is not None:
        bar.close()
    result.obs, result.actions = labels.obs.copy(), labels.act.copy()
    return result
