"""A toy model spec for the training tests (registered through DRIFT_NB_SPEC_MODULES): a small MLP fitted to a fixed
regression target with a loss that draws no random numbers, so one process and two processes at the same global batch
must follow the same curve up to float rounding."""
import torch

from drift_nb.training import ModelSpec, batch_indices, fit, register

_g = torch.Generator().manual_seed(0)
X = torch.randn(256, 8, generator=_g)
Y = torch.sin(X @ torch.randn(8, 1, generator=_g))

def config(train_scale=1.0, seed=0):
    return {"steps": max(4, int(round(1000 * train_scale))), "batch": 32, "lr": 0.05, "seed": seed}

def build(cfg):
    return torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))

def train(cfg, deps, device="cpu", progress=False):
    torch.manual_seed(cfg["seed"])
    m = build(cfg)
    def loss(model, step):
        i = batch_indices(len(X), cfg["batch"], step, cfg["seed"])
        return ((model(X[i]) - Y[i]) ** 2).mean()
    fit(m, torch.optim.Adam(m.parameters(), lr=cfg["lr"]), loss, cfg["steps"], config=cfg, progress=progress)
    return m

register(ModelSpec("toy.mlp", "toy", "a toy regression MLP", config, lambda cfg: (X, Y), build, train,
                   lambda m, cfg: m(X[:16]), lambda cfg: cfg["steps"]))

# Three more for the `--jobs` test: one that depends on toy.mlp, one whose training fails, and one that depends on it.
def _train_wide(cfg, deps, device="cpu", progress=False):
    assert "toy.mlp" in deps, "a dependency is handed to the training function"
    return train(cfg, deps, device, progress)

def _fail(cfg, deps, device="cpu", progress=False):
    raise RuntimeError("toy.broken fails on purpose")

def _config_wide(train_scale=1.0, seed=0):
    return {**config(train_scale, seed), "deps": {"toy.mlp": config(train_scale, seed)}}

def _config_after(train_scale=1.0, seed=0):
    return {**config(train_scale, seed), "deps": {"toy.broken": config(train_scale, seed)}}

register(ModelSpec("toy.mlp_wide", "toy", "toy.mlp trained after it (a dependency)", _config_wide, lambda cfg: (X, Y), build,
                   _train_wide, lambda m, cfg: m(X[:16]), lambda cfg: cfg["steps"], deps=("toy.mlp",)))
register(ModelSpec("toy.broken", "toy", "a spec whose training fails", config, lambda cfg: (X, Y), build, _fail,
                   lambda m, cfg: m(X[:16]), lambda cfg: cfg["steps"]))
register(ModelSpec("toy.after_broken", "toy", "depends on toy.broken", _config_after, lambda cfg: (X, Y), build, train,
                   lambda m, cfg: m(X[:16]), lambda cfg: cfg["steps"], deps=("toy.broken",)))
