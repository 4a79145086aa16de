"""Gaussian-process dynamics: one independent GP per output dimension, as a gpytorch
batch GP (batch shape [S], the predicted state entries) over the shared inputs ``[s, a]``.

Each GP has a constant mean and a scaled ARD kernel (RBF or Matérn-5/2) plus Gaussian
noise. Up to ``exact_limit`` training points the posterior is exact: hyperparameters
maximise the exact marginal likelihood (on a random subset of ``hyper_points`` rows, which
keeps it fast), then the posterior conditions on all the data and predicts with gpytorch's
fast predictive variances (LOVE). Beyond ``posterior_points`` rows the posterior conditions
on a subset spread over the inputs (subset of data; Rasmussen & Williams §8.3.1): an exact
GP's prediction costs time in proportion to its rows, and MPC predicts at every tick
(measured on ArmReach at 20 Hz with a 45 ms budget, 13 episodes, 2 seeds: 17 of 20
episodes from episode 3 on within 2 cm with 400 rows, 15 of 20 with 600, 16 of 20 on all
the data, whose search the budget had to shrink; without a budget, all the data, 19 of 20
at 15 Hz). Above ``exact_limit`` it is a sparse variational GP
(``inducing_points`` learned inducing inputs, ELBO on minibatches), so fitting and
predicting take bounded time.

Uncertainty: epistemic = posterior variance of the latent function, aleatoric = the
learned noise variance. A warm start begins the hyperparameter search where the previous
fit ended.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import gpytorch
import torch
from linear_operator.utils.errors import NotPSDError  # gpytorch's own name for it is deprecated

from mbrl_control.config import param
from mbrl_control.models.base import FitReport, MemberOutputs, ModelConfig, Regressor, stop_now

PREDICT_CHUNK = 1024  # rows per batch of kernel evaluations at prediction time


@dataclass(frozen=True)
class GPConfig(ModelConfig):
    """Settings of the Gaussian-process dynamics model."""

    kernel: str = param("rbf", "Covariance function, with one lengthscale per input (ARD).", choices=("rbf", "matern52"))
    exact_limit: int = param(2000, "Largest training set for the exact GP; above it, a sparse variational GP.", low=0, high=20_000)
    hyper_points: int = param(300, "Rows (random subset) whose marginal likelihood sets the exact GP's hyperparameters.", low=10, high=20_000)
    posterior_points: int = param(400, "Most rows the exact GP's posterior conditions on (spread over the inputs at the fitted lengthscales): bounds its prediction cost, which MPC pays every tick.", low=10, high=20_000)
    iterations: int = param(100, "Adam steps on the exact marginal likelihood.", low=1, high=10_000)
    learning_rate: float = param(0.1, "Adam learning rate for hyperparameters.", low=0.0, low_exclusive=True, high=10.0)
    inducing_points: int = param(64, "Inducing inputs of the sparse GP.", low=4, high=10_000)
    sparse_steps: int = param(800, "Minibatch steps on the sparse GP's ELBO (bounds its fit time).", low=1, high=1_000_000)
    sparse_batch_size: int = param(512, "Minibatch size of the sparse GP's ELBO.", low=16, high=100_000)
    min_noise: float = param(1e-4, "Smallest noise variance (normalised units).", low=0.0, low_exclusive=True, high=1.0)
    val_fraction: float = param(0.0, "Fraction of transitions held out (GPs need no early stopping).", low=0.0, high=0.9)


def _kernel(cfg: GPConfig, in_dim: int, out_dim: int) -> gpytorch.kernels.Kernel:
    batch = torch.Size([out_dim])
    if cfg.kernel == "rbf":
        base = gpytorch.kernels.RBFKernel(ard_num_dims=in_dim, batch_shape=batch)
    else:
        base = gpytorch.kernels.MaternKernel(nu=2.5, ard_num_dims=in_dim, batch_shape=batch)
    # Inputs are standardised: start from functions that vary over the whole input space
    # (lengthscale √d) rather than gpytorch's 0.69, which needs many more steps to grow.
    base.lengthscale = math.sqrt(in_dim)
    return gpytorch.kernels.ScaleKernel(base, batch_shape=batch)


class BatchExactGP(gpytorch.models.ExactGP):
    """``out_dim`` exact GPs on shared inputs ``x [N, in]``, targets ``y [out_dim, N]``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, likelihood: gpytorch.likelihoods.Likelihood, cfg: GPConfig) -> None:
        super().__init__(x, y, likelihood)
        self.mean_module = gpytorch.means.ConstantMean(batch_shape=torch.Size([y.shape[0]]))
        self.covar_module = _kernel(cfg, x.shape[1], y.shape[0])

    def forward(self, x: torch.Tensor) -> gpytorch.distributions.MultivariateNormal:
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))


class BatchSparseGP(gpytorch.models.ApproximateGP):
    """``out_dim`` sparse variational GPs, each with its own inducing inputs ``[out_dim, M, in]``."""

    def __init__(self, inducing: torch.Tensor, cfg: GPConfig) -> None:
        out_dim, m, in_dim = inducing.shape
        distribution = gpytorch.variational.CholeskyVariationalDistribution(m, batch_shape=torch.Size([out_dim]))
        strategy = gpytorch.variational.VariationalStrategy(self, inducing, distribution, learn_inducing_locations=True)
        super().__init__(strategy)
        self.mean_module = gpytorch.means.ConstantMean(batch_shape=torch.Size([out_dim]))
        self.covar_module = _kernel(cfg, in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> gpytorch.distributions.MultivariateNormal:
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))


def spread_subset(z: torch.Tensor, m: int) -> torch.Tensor:
    """Indices of ``m`` rows of ``z`` [N, D] spread over its space (greedy farthest point:
    each next row is the one farthest from every row chosen so far), starting from the
    last (newest) row. Rows closer together than a lengthscale tell a GP little more than
    one of them: an arm holding still at its target repeats one transition for seconds."""
    chosen = torch.empty(m, dtype=torch.long)
    chosen[0] = len(z) - 1
    distance = (z - z[-1]).pow(2).sum(-1)
    distance[-1] = -1.0  # chosen rows are never chosen again, even among exact repeats
    for i in range(1, m):
        chosen[i] = torch.argmax(distance)
        distance = torch.minimum(distance, (z - z[chosen[i]]).pow(2).sum(-1))
        distance[chosen[i]] = -1.0  # the minimum keeps the earlier ones at -1
    return chosen.sort().values


class GP(Regressor):
    """Gaussian-process regressor, one GP per output (exact, or sparse variational above
    ``exact_limit``); one member."""

    name = "gp"
    Config = GPConfig
    # the mean only: sampling trajectories through the predictive variance, O(N²) per row,
    # planned at 3.8 Hz under ros2 launch (250-390 ms ticks) against 20 Hz with the mean
    propagation = "expectation"
    # its posterior keeps a few hundred points and its hyperparameters fit on a subset: the
    # CPU is as fast, and gpytorch's caches stay where the planner reads them
    fits_on_device = False

    def __init__(self, in_dim: int, out_dim: int, config: GPConfig) -> None:
        super().__init__(in_dim, out_dim, config)
        self.gp: BatchExactGP | BatchSparseGP | None = None
        self.likelihood: gpytorch.likelihoods.GaussianLikelihood | None = None
        self._rbf_cache: tuple[torch.Tensor, ...] | None = None

    @property
    def sparse(self) -> bool:
        """Whether the fitted model is the sparse variational GP."""
        return isinstance(self.gp, BatchSparseGP)

    def _new_likelihood(self) -> gpytorch.likelihoods.GaussianLikelihood:
        return gpytorch.likelihoods.GaussianLikelihood(
            batch_shape=torch.Size([self.out_dim]),
            noise_constraint=gpytorch.constraints.GreaterThan(self.config.min_noise),
        )

    def fit(self, x, y, x_val, y_val, warm_start: bool) -> FitReport:
        generator = torch.Generator().manual_seed(self.config.seed)
        previous = self._hyperparameters() if warm_start else None
        self.likelihood = self._new_likelihood()
        if len(x) <= self.config.exact_limit:
            try:
                report = self._fit_exact(x, y.T.contiguous(), generator, previous)
            except NotPSDError:
                if previous is None:
                    raise
                # the previous fit's hyperparameters (its noise at the floor) can make the new
                # data's kernel matrix numerically singular: start anew instead
                self.likelihood = self._new_likelihood()
                report = self._fit_exact(x, y.T.contiguous(), generator, None)
                report.notes += " (the warm start was not positive definite)"
        else:
            report = self._fit_sparse(x, y.T.contiguous(), generator)
        if len(x_val):
            with torch.no_grad():
                mean, aleatoric, epistemic = (t[0] for t in self(x_val[None]))
                var = aleatoric + epistemic
                nll = 0.5 * ((y_val - mean) ** 2 / var + var.log() + math.log(2 * math.pi)).mean()
            report.val_loss.append(nll.item())
        return report

    def _hyperparameters(self) -> dict[str, torch.Tensor] | None:
        """The exact GP's kernel, mean and noise parameters (None before a fit, or sparse)."""
        if self.gp is None or self.sparse:
            return None
        return {name: value.clone() for name, value in self.gp.state_dict().items()}

    def _fit_exact(self, x, y, generator, previous: dict[str, torch.Tensor] | None) -> FitReport:
        cfg = self.config
        subset = torch.randperm(len(x), generator=generator)[: cfg.hyper_points]
        self.gp = BatchExactGP(x[subset], y[:, subset], self.likelihood, cfg)
        if previous is not None:
            self.gp.load_state_dict(previous)
        start = "from the previous fit" if previous is not None else "anew"
        report = FitReport(notes=f"exact GP, hyperparameters on {len(subset)} of {len(x)} rows, {start}")
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(self.likelihood, self.gp)
        optimizer = torch.optim.Adam(self.gp.parameters(), lr=cfg.learning_rate)  # includes the likelihood's
        self.gp.train()
        self.likelihood.train()
        for iteration in range(cfg.iterations):
            if stop_now(report, iteration, "iterations"):
                break
            optimizer.zero_grad(set_to_none=True)
            loss = -mll(self.gp(x[subset]), y[:, subset]).mean()
            loss.backward()
            optimizer.step()
            report.train_loss.append(loss.item())
        report.epochs = len(report.train_loss)
        if len(x) > cfg.posterior_points:
            kept = spread_subset(x / self.gp.covar_module.base_kernel.lengthscale.detach().mean(0), cfg.posterior_points)
            x, y = x[kept], y[:, kept]
            report.notes += f"; posterior on {len(kept)} rows spread over the inputs"
        self.gp.set_train_data(x, y, strict=False)
        self._eval()
        return report

    def _fit_sparse(self, x, y, generator) -> FitReport:
        cfg = self.config
        m = min(cfg.inducing_points, len(x))
        starts = torch.stack([x[torch.randperm(len(x), generator=generator)[:m]] for _ in range(self.out_dim)])
        self.gp = BatchSparseGP(starts.clone(), cfg)
        report = FitReport(notes=f"sparse variational GP, {m} inducing points, {len(x)} rows")
        elbo = gpytorch.mlls.VariationalELBO(self.likelihood, self.gp, num_data=len(x))
        optimizer = torch.optim.Adam([*self.gp.parameters(), *self.likelihood.parameters()], lr=0.01)
        self.gp.train()
        self.likelihood.train()
        b = min(cfg.sparse_batch_size, len(x))
        steps_per_pass = math.ceil(len(x) / b)
        for step in range(cfg.sparse_steps):
            if stop_now(report, step, "steps"):
                break
            if step % steps_per_pass == 0:
                order = torch.randperm(len(x), generator=generator)
            batch = order[(step % steps_per_pass) * b :][:b]
            optimizer.zero_grad(set_to_none=True)
            loss = -elbo(self.gp(x[batch]), y[:, batch]).mean()
            loss.backward()
            optimizer.step()
            report.train_loss.append(loss.item())
        report.epochs = math.ceil(cfg.sparse_steps / steps_per_pass)
        self._eval()
        return report

    def _eval(self) -> None:
        """Evaluation mode, with the prediction caches built now rather than at the first call."""
        self.gp.eval()
        self.likelihood.eval()
        with torch.no_grad():
            self._predict(torch.zeros(1, self.in_dim))
            self._rbf_cache = self._build_rbf_cache()

    def forward(self, x: torch.Tensor, variance: bool = True) -> MemberOutputs:
        if not variance:
            return self._predict_mean(x[0])[None], None, None
        mean, aleatoric, epistemic = self._predict(x[0])
        return mean[None], aleatoric[None], epistemic[None]

    def _predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean, noise variance and latent variance [B, out] at ``x`` [B, in]."""
        means, variances = [], []
        with gpytorch.settings.fast_pred_var(), warnings.catch_warnings():
            # tiny negative variances from round-off are clamped below; no need to warn
            warnings.simplefilter("ignore", gpytorch.utils.warnings.NumericalWarning)
            for chunk in x.split(PREDICT_CHUNK):
                f = self.gp(chunk)  # latent function, batch [out, b]
                means.append(f.mean.T)
                variances.append(f.variance.T)
        mean, epistemic = torch.cat(means), torch.cat(variances).clamp_min(0.0)
        aleatoric = self.likelihood.noise.reshape(1, -1).expand_as(mean)
        return mean, aleatoric, epistemic

    def _build_rbf_cache(self) -> tuple[torch.Tensor, ...] | None:
        """What the exact RBF mean needs besides the query: ``1/ℓ`` [S, 1, D], the scaled
        training inputs ``Z = X/ℓ - c`` centred on their mean ``c`` [S, 1, D], transposed
        [S, D, N], ``‖Z‖²`` [S, 1, N], and
        ``s²·α`` [S, N, 1] with gpytorch's cached ``α = (K + σ²I)⁻¹(y - m)``; the constant
        means [S]. None for the sparse GP or another kernel."""
        if self.sparse or not isinstance(self.gp.covar_module.base_kernel, gpytorch.kernels.RBFKernel):
            return None
        gp = self.gp
        inverse_lengthscale = 1.0 / gp.covar_module.base_kernel.lengthscale  # [S, 1, D]
        z = gp.train_inputs[0] * inverse_lengthscale  # [S, N, D]
        center = z.mean(-2, keepdim=True)  # distances from centred points lose less to round-off
        z = z - center
        alpha = gp.prediction_strategy.mean_cache.unsqueeze(-1)  # [S, N, 1]
        scaled_alpha = gp.covar_module.outputscale.reshape(-1, 1, 1) * alpha
        return (inverse_lengthscale, center, z.transpose(-1, -2).contiguous(), z.pow(2).sum(-1).unsqueeze(-2),
                scaled_alpha, gp.mean_module.constant.reshape(-1))

    def _predict_mean(self, x: torch.Tensor) -> torch.Tensor:
        """Exact GP: ``m + K(x, X) α`` with gpytorch's cached ``α``. For the RBF kernel,
        ``k(x, x') = s² exp(-½‖x/ℓ - x'/ℓ‖²)`` is two batched matmuls on cached scaled
        inputs (measured on the arm, 600 points, 64 rows, 1 thread: 2.8 ms against 3.8 ms
        through gpytorch's kernel modules; the rest is the arithmetic of S×b×N×D); other
        kernels use one dense gpytorch kernel block per chunk."""
        if self.sparse:
            return self._predict(x)[0]
        cache = self._rbf_cache
        means = []
        for chunk in x.split(PREDICT_CHUNK):
            if cache is not None:
                inverse_lengthscale, center, z_t, z_sq, scaled_alpha, constant = cache
                q = chunk.unsqueeze(0) * inverse_lengthscale - center  # [S, b, D]
                sq_dist = (q.pow(2).sum(-1, keepdim=True) + z_sq - 2.0 * (q @ z_t)).clamp_min_(0.0)  # [S, b, N]
                mean = (torch.exp(-0.5 * sq_dist) @ scaled_alpha).squeeze(-1) + constant.unsqueeze(-1)  # [S, b]
            else:
                gp = self.gp
                kernel = gp.covar_module(chunk, gp.train_inputs[0]).to_dense()  # [S, b, N]
                alpha = gp.prediction_strategy.mean_cache.unsqueeze(-1)
                mean = gp.mean_module(chunk) + (kernel @ alpha).squeeze(-1)
            means.append(mean.T)
        return torch.cat(means)

    def state(self) -> dict[str, Any]:
        state = {
            "sparse": self.sparse,
            "gp": self.gp.state_dict(),
            "likelihood": self.likelihood.state_dict(),
        }
        if self.sparse:
            state["inducing_shape"] = list(self.gp.variational_strategy.inducing_points.shape)
        else:
            state["train_x"], state["train_y"] = self.gp.train_inputs[0], self.gp.train_targets
        return state

    def restore(self, state: dict[str, Any]) -> None:
        self.likelihood = self._new_likelihood()
        if state["sparse"]:
            self.gp = BatchSparseGP(torch.zeros(state["inducing_shape"]), self.config)
        else:
            self.gp = BatchExactGP(state["train_x"], state["train_y"], self.likelihood, self.config)
        self.gp.load_state_dict(state["gp"])
        self.likelihood.load_state_dict(state["likelihood"])
        self._eval()
