"""The drifting chapter end to end: every report at the smoke profile, and the distributed step under torchrun."""
import os
import subprocess
import sys

import pandas as pd
import torch

from conftest import drift_nb


def _tables(sandbox, report):
    return sandbox["runs"] / "_adhoc" / f"{report}-smoke" / "tables"


def _goals(t):
    g = pd.read_csv(t / "goals.csv")
    assert list(g.columns) == ["goal", "method", "met", "evidence"]
    return g


def test_drifting_toy_runs_at_smoke(sandbox):
    r = drift_nb("run", "drifting_toy", "--profile", "smoke", "--no-progress", "-p", "toy_n_eval", "512")
    assert r.returncode == 0, r.stderr[-3000:]
    t = _tables(sandbox, "drifting_toy")
    runs = pd.read_csv(t / "faithful_runs.csv")
    assert len(runs) == 9 and set(runs.start) == {"between", "far", "collapsed"}   # 3 targets x 3 starts
    broken = pd.read_csv(t / "broken_runs.csv")
    assert set(broken.variant) == {"attraction x1.5", "attraction only"} and len(broken) == 18
    h0 = pd.read_csv(t / "faithful_history.csv").query("step == 0").groupby(["target", "start"]).energy.mean().unstack()
    assert (h0["far"] > 5 * h0["between"]).all(), h0   # the far start begins far from the data, on every target
    g = _goals(t)
    assert len(g) == 5 and g.method.str.contains("faithful").sum() == 3


def test_drifting_mnist_runs_at_smoke(sandbox):
    import numpy as np
    r = drift_nb("run", "drifting_mnist", "--profile", "smoke", "--no-progress", timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    t = _tables(sandbox, "drifting_mnist")
    head = pd.read_csv(t / "headline_by_seed.csv")
    assert {"drifting, 1 NFE", "flow matching, Euler 1 NFE", "flow matching, Heun 50 NFE"} <= set(head.method)
    assert head.set_index("method").loc["flow matching, Euler 50 steps, CFG w = 2", "nfe"] == 100
    train = pd.read_csv(t / "training.csv").set_index("model")
    from drift_nb.drifting.specs import HEADLINE_KIND, generator_name
    assert train.loc[generator_name(HEADLINE_KIND, 0), "steps"] == 100 and train.loc["drifting.flow", "steps"] == 240   # specs at scale 0.02
    curves = pd.read_csv(t / "training_curves.csv")
    assert set(curves.setting) == {"a1", "a2", "nfe50"} and curves.groupby(["method", "setting"]).step.is_monotonic_increasing.all()
    assert set(pd.read_csv(t / "equal_compute.csv").budget) == {"equal steps x batch", "equal wall time"}
    n = int(head.n.iloc[0])
    for name in ("drifting_1nfe", "flow_euler_1nfe", "flow_euler_50nfe"):
        with np.load(t / f"samples_{name}.npz") as z:
            assert z["images"].dtype == np.uint8 and z["images"].shape == (n, 28, 28)
            assert np.bincount(z["labels"], minlength=10).tolist() == [n // 10] * 10
    g = _goals(t)
    assert len(g) == 5 and not g.goal.str.contains("speed").any()   # speed is a measurement (speed.csv), not a goal
    figs = sandbox["runs"] / "_adhoc" / "drifting_mnist-smoke" / "figures"
    assert {"alpha_sweep.png", "samples_by_method.png", "training_curves.png", "nn_audit.png"} <= {p.name for p in figs.iterdir()}


def test_drifting_ablations_runs_at_smoke(sandbox):
    r = drift_nb("run", "drifting_ablations", "--profile", "smoke", "--no-progress", timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    t = _tables(sandbox, "drifting_ablations")
    models = pd.read_csv(t / "models.csv").set_index("row")
    # each row's spec carries the switch it names
    assert models.loc["raw", "affinity_floor"] > 0 and pd.isna(models.loc["raw_nofloor", "affinity_floor"])
    assert models.loc["raw", "normalisation_scope"] == "shared" and models.loc["raw_perclass", "normalisation_scope"] == "per_class"
    assert models.loc["mae_raw", "features"].startswith("MAE") and models.loc["latent", "features"].startswith("autoencoder")
    scores = pd.read_csv(t / "scores_by_seed.csv")
    assert set(scores.noise) == {"selection", "evaluation"} and set(scores.alpha) == {1.0, 2.0, 4.0}
    ev = scores[(scores.noise == "evaluation") & (scores.alpha == 2.0)].set_index("row").fid
    assert ev.nunique() == len(ev) == 6              # six different models, not one loaded six times
    summary = pd.read_csv(t / "summary.csv")
    assert set(summary.row) == set(models.index) and summary.alpha.isin([1.0, 2.0, 4.0]).all()
    eff = pd.read_csv(t / "effects.csv")
    assert len(eff) == 18 and not eff.interval_excludes_0.any()   # one seed: no interval, so no difference is a result


def test_ddp_step_under_torchrun_equals_single_process(tmp_path):
    "Two gloo processes under torchrun: gradients and weights after one drifting step equal the single-process step."
    from drift_nb.drifting.distributed import one_step
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                        "-m", "drift_nb.drifting.distributed", "check", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    ddp, single = torch.load(out, weights_only=False), one_step()
    scale = max(float(v.abs().max()) for v in single["grads"].values())
    assert max(float((ddp["grads"][k] - v).abs().max()) for k, v in single["grads"].items()) < 1e-5 * scale
    assert max(float((ddp["state"][k] - v).abs().max()) for k, v in single["state"].items()) < 1e-6


def test_step_checkpoints_are_never_overwritten(tmp_path):
    from drift_nb.checkpoint import save_step_checkpoint
    m = torch.nn.Linear(2, 2)
    p = save_step_checkpoint(tmp_path, m, {"a": 1}, step=3)
    before = p.read_bytes()
    try:
        save_step_checkpoint(tmp_path, torch.nn.Linear(2, 2), {"a": 1}, step=3)
        raise AssertionError("a step file was overwritten")
    except FileExistsError as e:
        assert "step_00000003.pt" in str(e)
    assert p.read_bytes() == before and sorted(x.name for x in tmp_path.iterdir()) == ["step_00000003.pt"]
