"""End-to-end tests of the `drift-nb` command: list, run, reproduce, and the failure cases."""
import json

import nbformat
import pytest

from drift_nb.routec.suite import HEADLINE

from conftest import drift_nb, tree


def test_list_shows_reports_and_parameters(sandbox):
    r = drift_nb("list")
    assert r.returncode == 0, r.stderr
    assert any(l.startswith("data_overview ") for l in r.stdout.splitlines()) and "n_samples" not in r.stdout
    r = drift_nb("list", "data_overview", "--profile", "smoke", "-p", "n_samples", "8")
    assert r.returncode == 0, r.stderr
    assert any("n_samples" in l and "= 8" in l and "override (-p)" in l for l in r.stdout.splitlines()), r.stdout
    assert drift_nb("list", "no_such_report").returncode == 2


def test_run_writes_notebook_tables_figures_runmd_and_index(sandbox):
    """A smoke run with an override is ad hoc: its folder is papermill_runs/_adhoc/, and figures/ and the index stay
    untouched; the same run with --evidence is committed evidence: NAME-smoke/, its figures copied, listed in the index."""
    r = drift_nb("run", "data_overview", "--profile", "smoke", "-p", "n_samples", "16", "--no-progress")
    assert r.returncode == 0, r.stderr
    run = sandbox["runs"] / "_adhoc" / "data_overview-smoke"
    files = tree(run)
    for f in ("data_overview.ipynb", "RUN.md", "run.json", "tables/class_balance.csv", "tables/class_balance.md",
              "tables/data_source.csv", "figures/samples.png", "figures/class_balance.png"):
        assert f in files, f"{f} missing from {files}"
    assert tree(sandbox["figures"]) == [] and not (sandbox["runs"] / "index.md").exists(), "an ad-hoc run touches no evidence"
    meta = json.loads((run / "run.json").read_text())
    assert meta["parameters"]["n_samples"] == 16 and meta["profile"] == "smoke" and meta["evidence"] is False
    assert len(meta["config_hash"]) == 12 and meta["hardware"]["cpu_count"] >= 1
    runmd = (run / "RUN.md").read_text()
    for words in ("`n_samples` | `16`", "git commit", "config hash", "wall time", "torch"):
        assert words in runmd
    nb = nbformat.read(run / "data_overview.ipynb", as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "n_samples = 16" in injected[0].source
    r = drift_nb("run", "data_overview", "--profile", "smoke", "-p", "n_samples", "16", "--no-progress", "--evidence")
    assert r.returncode == 0, r.stderr
    ev = sandbox["runs"] / "data_overview-smoke"
    assert json.loads((ev / "run.json").read_text())["evidence"] is True
    assert tree(sandbox["figures"] / "data_overview-smoke") == ["class_balance.png", "samples.png"]
    index = (sandbox["runs"] / "index.md").read_text()
    assert "data_overview-smoke/tables/class_balance.md" in index and "data_overview-smoke/figures/samples.png" in index
    assert "_adhoc" not in index
    assert not tree(sandbox["runs"] / "_staging"), "staging must be empty after a good run"


def test_help_and_list_do_not_import_torch(sandbox):
    import subprocess, sys
    code = ("import sys; from drift_nb.cli import main; main(['list']); main(['list', 'data_overview', '--profile', 'cpu']); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "n_samples" in r.stdout and "from notebook default" in r.stdout


@pytest.mark.parametrize("args, words", [
    (["run", "no_such_report"], ["unknown report 'no_such_report'", "data_overview"]),
    (["run", "data_overview", "-p", "no_such_param", "1"], ["unknown parameter 'no_such_param'", "n_samples (int"]),
    (["run", "data_overview", "-p", "n_samples", "many"], ["'n_samples' expects int", "'many'"]),
    (["run", "data_overview", "--profile", "huge"], ["unknown profile 'huge'", "smoke, cpu, gpu"]),
    (["reproduce", "--profile", "huge"], ["unknown profile 'huge'"]),
])
def test_bad_input_fails_clearly_and_writes_nothing(sandbox, args, words):
    r = drift_nb(*args)
    assert r.returncode == 2
    for w in words: assert w in r.stderr, r.stderr
    for d in sandbox.values(): assert tree(d) == [], f"{d} must stay empty"


FAILING_REPORT = nbformat.v4.new_notebook(
    metadata={"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}},
    cells=[nbformat.v4.new_markdown_cell("# Flaky\n> Fails on demand."),
           nbformat.v4.new_code_cell("profile: str = 'smoke'\nfail: bool = False", metadata={"tags": ["parameters"]}),
           nbformat.v4.new_code_cell("from drift_nb.results import save_table\nimport pandas as pd\n"
                                     "save_table(pd.DataFrame({'fail': [fail]}), 'status')"),
           nbformat.v4.new_code_cell("if fail: raise RuntimeError('deliberate failure')")])


def test_failed_run_keeps_previous_results_and_names_the_notebook(sandbox, reports_copy):
    nbformat.write(FAILING_REPORT, reports_copy / "flaky.ipynb")
    assert drift_nb("run", "flaky", "--profile", "smoke", "--no-progress").returncode == 0
    good = sandbox["runs"] / "_adhoc" / "flaky-smoke"
    before = {f: (good / f).read_bytes() for f in tree(good)}
    r = drift_nb("run", "flaky", "--profile", "smoke", "-p", "fail", "true", "--no-progress")
    assert r.returncode == 1
    assert "deliberate failure" in r.stderr and "previous results" in r.stderr
    failed_nb = sandbox["runs"] / "_failed" / "flaky-smoke" / "flaky.ipynb"
    assert str(failed_nb) in r.stderr and failed_nb.is_file()
    assert {f: (good / f).read_bytes() for f in tree(good)} == before, "the good run must be untouched"


def test_reproduce_runs_every_report_and_writes_index(sandbox, reports_copy):
    nbformat.write(FAILING_REPORT, reports_copy / "flaky.ipynb")
    r = drift_nb("reproduce", "--profile", "smoke", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "2/2 reports ran" in r.stdout
    index = (sandbox["runs"] / "index.md").read_text()
    assert "## data_overview-smoke" in index and "## flaky-smoke" in index
    assert "flaky-smoke/tables/status.md" in index


def _has_cuda():
    import torch
    return torch.cuda.is_available()


@pytest.mark.skipif(_has_cuda(), reason="this machine has CUDA: the gpu profile is valid here")
def test_gpu_profile_without_cuda_is_refused_before_running(sandbox):
    r = drift_nb("run", "routec_key_test", "--profile", "gpu")
    assert r.returncode == 2
    assert "CUDA is not available" in r.stderr and "--profile cpu" in r.stderr
    for d in sandbox.values(): assert tree(d) == []


@pytest.mark.slow
def test_routec_gamma_sweep_runs_at_smoke(sandbox):
    r = drift_nb("run", "routec_gamma_sweep", "--profile", "smoke", "-p", "n_seeds", "2", "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    import pandas as pd
    t = sandbox["runs"] / "_adhoc" / "routec_gamma_sweep-smoke" / "tables"
    sweep = pd.read_csv(t / "gamma_sweep.csv")
    assert sorted(sweep["gamma_cls"].unique()) == [0, 0.01, 0.05, 0.1, 0.5] and sorted(sweep["seed"].unique()) == [0, 1]
    assert len(sweep) == 40 and sweep["n"].eq(64).all()
    # the training seed changes the networks, not the digits: acc_before agrees across seeds and weights
    assert sweep.groupby(["mask", "noise"])["acc_before"].nunique().eq(1).all()
    assert not sweep.pivot_table(index=["method", "mask", "noise"], columns="seed", values="acc_after").pipe(lambda p: p[0].equals(p[1]))
    paired = pd.read_csv(t / "gamma_sweep_paired.csv")
    assert len(paired) == 32 and set(paired["b"]) == {"gamma_0"} and (paired["diff_ci_low"] <= paired["diff"] + 1e-12).all()
    over = pd.read_csv(t / "gamma_sweep_over_seeds.csv")
    assert len(over) == 16 and over["n_seeds"].eq(2).all()
    g = paired.groupby(["a", "mask", "noise"])["diff"]
    o = over.set_index(["a", "mask", "noise"])
    assert (o["diff_min"] - g.min()).abs().max() < 1e-12 and (o["diff_max"] - g.max()).abs().max() < 1e-12
    v = pd.read_csv(t / "variants.csv")
    assert len(v) == 10 and sorted(v["seed"].unique()) == [0, 1]
    assert (sandbox["runs"] / "_adhoc" / "routec_gamma_sweep-smoke" / "figures" / "gamma_sweep.png").exists()


@pytest.mark.slow
def test_routec_ablations_runs_at_smoke(sandbox):
    r = drift_nb("run", "routec_ablations", "--profile", "smoke", "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    import pandas as pd
    t = sandbox["runs"] / "_adhoc" / "routec_ablations-smoke" / "tables"
    assert len(pd.read_csv(t / "torus.csv")) == 16 and len(pd.read_csv(t / "torus_paired.csv")) == 12
    ece = pd.read_csv(t / "calibration_ece.csv")
    assert len(ece) == 36 and ece["ece"].between(0, 1).all()   # 5 weights + 3 torus nets + the pipeline's full net, x 4 configurations
    assert sorted(pd.read_csv(t / "iterative_steps.csv")["n_steps"].unique()) == [1, 2, 3, 4]
    assert not (t / "gamma_sweep.csv").exists() and not (t / "obs_kind.csv").exists()   # in their own reports
    figs = sandbox["runs"] / "_adhoc" / "routec_ablations-smoke" / "figures"
    assert {"torus.png", "reliability.png", "iterative_steps.png"} <= {p.name for p in figs.iterdir()}


@pytest.mark.slow
def test_routec_ablations_energy_runs_at_smoke(sandbox):
    r = drift_nb("run", "routec_ablations_energy", "--profile", "smoke", "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    import pandas as pd
    t = sandbox["runs"] / "_adhoc" / "routec_ablations_energy-smoke" / "tables"
    obs = pd.read_csv(t / "obs_kind.csv")
    assert set(obs["obs_kind"]) == {"gaussian", "bernoulli"} and len(obs) == 16
    assert obs.query("where == 'MCMC E_obs'")["n"].eq(4).all() and obs.query("where == 'InpaintNet L_obs'")["n"].eq(64).all()
    assert len(pd.read_csv(t / "obs_kind_paired.csv")) == 8
    assert set(pd.read_csv(t / "gate_weights.csv")["gate"]) == {"contrastive", "contrastive+task"}
    assert len(pd.read_csv(t / "gate_mcmc.csv")) == 4 and len(pd.read_csv(t / "gate_mcmc_paired.csv")) == 2
    figs = sandbox["runs"] / "_adhoc" / "routec_ablations_energy-smoke" / "figures"
    assert {"obs_kind.png", "gate_weights.png"} <= {p.name for p in figs.iterdir()}


def _check_delta_acc_intervals(tab):
    "Student-t intervals of per-digit delta_acc in {-1, 0, 1}: centred on the mean, half-width t*s/sqrt(n) with s^2 between n/(n-1)(|d| - d^2) and n/(n-1)."
    from scipy import stats
    n, d = tab["n"].astype(float), tab["delta_acc"]
    half = (tab["delta_acc_ci_high"] - tab["delta_acc_ci_low"]) / 2
    t = stats.t.ppf(0.975, n - 1)
    assert ((tab["delta_acc_ci_high"] + tab["delta_acc_ci_low"]) / 2 - d).abs().max() < 1e-9, "interval not centred on the mean"
    assert (half <= t / (n - 1) ** 0.5 + 1e-9).all(), "wider than any {-1, 0, 1} sample allows"
    assert (half >= t * ((d.abs() - d ** 2).clip(lower=0) / (n - 1)) ** 0.5 - 1e-9).all(), "narrower than the changed digits allow"


@pytest.mark.slow
def test_routec_eval_suite_runs_at_smoke(sandbox):
    r = drift_nb("run", "routec_eval_suite", "--profile", "smoke", "-p", "n_timing", "1", "-p", "n_seeds", "2", "--no-progress",
                 timeout=2400)
    assert r.returncode == 0, r.stderr[-3000:]
    run = sandbox["runs"] / "_adhoc" / "routec_eval_suite-smoke"
    import pandas as pd
    from scipy import stats
    keys = ["mask", "noise"]
    b1 = pd.read_csv(run / "tables" / "suite_b1.csv")
    methods = {"amortized", "amortized_maskonly", "iterative", "ood_random", "v2_soft", "v2_hard", "stripes_aware",
               "stripes_aware_zeros", "evidence_unknown", "evidence_all", "evidence_clean", "evidence_e2e"}
    assert set(b1["method"]) == methods and len(b1) == 16 * len(methods) and (b1["kind"] == "amortized").all()
    assert set(b1["mask"]) == {"center", "random", "multi_hole", "stripes"}
    assert set(b1["noise"]) == {"clean", "gaussian", "bias", "dropout"}
    assert b1["n"].eq(64).all() and b1["flip_rate_mean"].between(0, 1).all()
    _check_delta_acc_intervals(b1)
    # every row's delta_acc is its acc_after minus acc_before; for the composite that pairs its own classifier's acc_after with
    # the pipeline classifier's acc_before, and only its rows carry the pipeline classifier's accuracy on its codes
    assert ((b1["acc_after"] - b1["acc_before"] - b1["delta_acc"]).abs() < 1e-6).all()
    own = b1["method"] == "evidence_e2e"
    assert b1.loc[own, "acc_after_frozen_classifier"].notna().all() and b1.loc[~own, "acc_after_frozen_classifier"].isna().all()
    b2 = pd.read_csv(run / "tables" / "suite_b2.csv")
    assert len(b2) == 32 and set(b2["method"]) == {"histogram_b2", "histogram_drop"}
    assert len(pd.read_csv(run / "tables" / "ood_matrix.csv")) == 20
    speed = pd.read_csv(run / "tables" / "speed.csv").set_index("method")
    assert speed.loc["v2_hard", "samples_per_s_batch256"] > 0 and (speed["params"] > 0).all()
    pol = pd.read_csv(run / "tables" / "policies.csv")
    assert set(pol["bitmask_policy"]) == {"any", "majority", "soft"} and not len(pol.query("bitmask_policy == 'majority' and mask == 'stripes'"))
    assert pol.query("bitmask_policy == 'soft'")["soft_weight_mean"].lt(1).all() and pol.query("bitmask_policy != 'soft'")["soft_weight_mean"].eq(1).all()
    # the scored digits and the validation digits do not overlap, and the validation draws are their own
    split = pd.read_csv(run / "tables" / "evaluation_split.csv").set_index("digits")
    assert split["n"].tolist() == [64, 64] and split.loc["scored (test)", "last_index"] < split.loc["validation", "first_index"]
    assert split.loc["validation", "draw_seed"] != split.loc["scored (test)", "draw_seed"]
    # the reference of each configuration is the candidate with the best validation accuracy
    cand = pd.read_csv(run / "tables" / "reference_candidates.csv")
    assert set(cand["candidate"]) == {"direct_logodds", "direct_cnn", "composite_fine_tuned"} and len(cand) == 48
    chosen = cand[cand["chosen"]].set_index(keys)
    assert len(chosen) == 16 and (chosen["val_acc"] == cand.groupby(keys)["val_acc"].max().loc[chosen.index]).all()
    snaps = pd.read_csv(run / "tables" / "reference_composite_snapshots.csv")
    assert snaps.groupby(keys)["steps"].apply(list).map(lambda v: v[0] == 0 and v == sorted(v)).all()
    comp_val = cand[cand["candidate"] == "composite_fine_tuned"].set_index(keys)["val_acc"]
    assert (snaps[snaps["chosen"]].set_index(keys)["val_acc"] == comp_val.loc[snaps[snaps["chosen"]].set_index(keys).index]).all()
    # paired gaps: the method's accuracy is the main table's, the reference's is the chosen candidate's, gap = their difference
    gaps = pd.read_csv(run / "tables" / "reference_gaps.csv")
    assert len(gaps) == 16 * len(methods) and set(gaps["method"]) == methods
    m = gaps.merge(b1[["method", *keys, "acc_after"]], on=["method", *keys])
    assert len(m) == len(gaps) and ((m["acc"] - m["acc_after"]).abs() < 1e-6).all()
    assert ((m.set_index(keys)["acc_reference"] - chosen["acc"].loc[m.set_index(keys).index]).abs() < 1e-9).all()
    assert ((100 * (m["acc_reference"] - m["acc"]) - m["gap_points"]).abs() < 1e-6).all()
    assert ((m["gap_ci_low"] <= m["gap_points"] + 1e-9) & (m["gap_points"] <= m["gap_ci_high"] + 1e-9)).all()
    # the methods are chosen on validation too: the validation table's accuracy, the highest of the configuration
    val = pd.read_csv(run / "tables" / "suite_b1_validation.csv")
    mv = gaps.merge(val[["method", *keys, "acc_after"]].rename(columns={"acc_after": "val_table"}), on=["method", *keys])
    assert ((mv["val_acc"] - mv["val_table"]).abs() < 1e-9).all() and (mv["val_acc"] != mv["acc"]).any()
    picked = gaps[gaps["chosen"]].set_index(keys)
    assert len(picked) == 16 and (picked["val_acc"] == gaps.groupby(keys)["val_acc"].max().loc[picked.index]).all()
    # each configuration's status follows from the gaps: not evaluable iff some method is above the reference beyond its interval
    summ = pd.read_csv(run / "tables" / "reference_summary.csv").set_index(keys)
    above = gaps.assign(a=gaps["gap_ci_high"] < 0).groupby(keys)["a"].any()
    expect = pd.Series(["not evaluable" if above[k] else "within" if picked.loc[k, "gap_ci_high"] <= 5 else "below"
                        for k in summ.index], index=summ.index)
    assert (summ["status"] == expect).all() and (summ["chosen_method"] == picked["method"].loc[summ.index]).all()
    # over training seeds: seed 0's EvidenceNet and composite come from their specs, and reproduce the main table's rows
    es = pd.read_csv(run / "tables" / "e2e_seeds.csv")
    assert set(es["training_seed"]) == {0, 1} and len(es) == 2 * 2 * 16 and set(es["method"]) == {"evidence_all", "evidence_e2e"}
    for meth in ("evidence_all", "evidence_e2e"):
        s0 = es.query("training_seed == 0 and method == @meth").set_index(keys)["delta_acc"]
        assert (s0 - b1.query("method == @meth").set_index(keys)["delta_acc"].loc[s0.index]).abs().max() < 1e-9, meth
    s1 = es.query("training_seed == 1").set_index(["method", *keys])["acc_before"]
    assert (s1 != es.query("training_seed == 0").set_index(["method", *keys])["acc_before"].loc[s1.index]).any()   # its own models
    kl = pd.read_csv(run / "tables" / "token_kl.csv")
    assert len(kl) == len(b1) and (kl["n"] == 64).all()
    agree = pd.read_csv(run / "tables" / "gate_agreement.csv")
    assert len(agree) == 4 and agree["hard_agreement"].between(0, 1).all() and (agree["n_pairs"] > 0).all()
    assert agree["n_pairs"].nunique() == 1 and agree["open_frac"].between(0, 1).all() and agree["kappa"].between(-1, 1).all()
    pe = agree["chance_agreement"]      # kappa is the agreement beyond chance: (p_o - p_e) / (1 - p_e), 0 where p_e = 1
    kappa = ((agree["hard_agreement"] - pe) / (1 - pe)).where(pe < 1 - 1e-9, 0.0)
    assert ((agree["kappa"] - kappa).abs() < 1e-4).all()
    gd = pd.read_csv(run / "tables" / "gate_difference.csv").iloc[0]        # the goal's paired differences: last gate minus the first
    assert abs(gd["kappa_diff"] - (agree["kappa"].iloc[3] - agree["kappa"].iloc[0])) < 1e-4
    assert abs(gd["open_diff"] - (agree["open_frac"].iloc[3] - agree["open_frac"].iloc[0])) < 1e-4
    gl = pd.read_csv(run / "tables" / "goals.csv")
    g_row = gl[gl["goal"].str.startswith("consistency-trained gate")]
    assert len(g_row) == 1 and bool(g_row["met"].iloc[0]) == bool(gd["kappa_diff_low"] > 0 and -0.02 <= gd["open_diff_low"] and gd["open_diff_high"] <= 0.02)
    assert not (run / "tables" / "seed_spread.csv").exists()      # the seeds have their own report, routec_seeds
    assert not any((run / "tables" / f"{t}.csv").exists() for t in ("ceiling", "ceiling_gap"))
    goals = pd.read_csv(run / "tables" / "goals.csv")
    assert not goals["evidence"].str.contains("not computable").any()
    center = goals[goals["goal"].str.startswith("center")]
    assert set(center["method"]) == methods - set(HEADLINE) - {"evidence_e2e"}   # headline networks: routec_seeds; the composite: below
    assert center["evidence"].str.contains("one training seed").all()
    ref_goal = goals[goals["goal"].str.contains("validated reference")]
    assert len(ref_goal) == 1 and ref_goal["met"].item() == (summ["status"] == "within").all()
    assert ("not evaluable in" in ref_goal["evidence"].item()) == (summ["status"] == "not evaluable").any()
    e2e_goals = goals[goals["goal"].str.startswith("end-to-end composite")].set_index("method")
    assert len(e2e_goals) == 2 and set(e2e_goals.index) == {"evidence_e2e"}
    sign = e2e_goals[e2e_goals["goal"].str.contains("center and stripes")]
    cs = es.query("method == 'evidence_e2e' and mask in ['center', 'stripes']")
    assert sign["met"].item() == bool((cs["delta_acc_ci_low"] > 0).all()) and len(cs) == 16
    mean = e2e_goals[e2e_goals["goal"].str.contains("mean delta_acc")]
    d = es.pivot_table(index="training_seed", columns="method", values="delta_acc", aggfunc="mean")
    d = d["evidence_e2e"] - d["evidence_all"]
    low = d.mean() - stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / len(d) ** 0.5    # the interval over the two seeds, recomputed
    assert mean["met"].item() == bool(low > 0) and "over 2 seeds" in mean["evidence"].item()
    for f in ("delta_acc_heatmap", "ood_heatmap", "flip_rate_maps", "gate_maps", "policy_heatmap", "reference_gap", "e2e_vs_evidence",
              "token_kl_margin"):
        assert (run / "figures" / f"{f}.png").is_file()


def test_routec_seeds_runs_at_smoke(sandbox):
    r = drift_nb("run", "routec_seeds", "--profile", "smoke", "-p", "n_timing", "1", "-p", "n_seeds", "2", "--no-progress",
                 timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    run = sandbox["runs"] / "_adhoc" / "routec_seeds-smoke"
    import pandas as pd
    per = pd.read_csv(run / "tables" / "suite_per_seed.csv")
    assert set(per["training_seed"]) == {0, 1} and set(per["method"]) == set(HEADLINE) and len(per) == 2 * 16 * len(HEADLINE)
    _check_delta_acc_intervals(per)
    # two training runs (each seed its own autoencoder and classifier, so acc_before moves too), on the same digits
    a, b = (per[per.training_seed == s].set_index(["method", "mask", "noise"]).sort_index() for s in (0, 1))
    assert a["n"].eq(b["n"]).all() and (a["acc_before"] != b["acc_before"]).any() and (a["acc_after"] != b["acc_after"]).any()
    spread = pd.read_csv(run / "tables" / "seed_spread.csv")
    assert spread["seeds"].eq(2).all() and {"seed_0", "seed_1"} <= set(spread.columns) and len(spread) == 16 * len(HEADLINE)
    lo, hi = spread[["seed_0", "seed_1"]].min(axis=1), spread[["seed_0", "seed_1"]].max(axis=1)
    assert ((spread["delta_acc_min"] - lo).abs() < 1e-12).all() and ((spread["delta_acc_max"] - hi).abs() < 1e-12).all()
    goals = pd.read_csv(run / "tables" / "goals.csv")
    assert goals["goal"].str.startswith("InpaintNetV2").sum() == 2
    center = goals[goals["goal"].str.startswith("center")]
    assert set(center["method"]) == set(HEADLINE)
    assert center["evidence"].str.contains("seed 0:").all() and center["evidence"].str.contains("seed 1:").all()
    assert (run / "figures" / "seed_spread.png").is_file()


@pytest.mark.slow
def test_routec_mcmc_runs_at_smoke(sandbox):
    r = drift_nb("run", "routec_mcmc", "--profile", "smoke", "--no-progress", timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    run = sandbox["runs"] / "_adhoc" / "routec_mcmc-smoke"
    import pandas as pd
    tab = pd.read_csv(run / "tables" / "mcmc_suite.csv")
    assert set(tab["method"]) == {"baseline", "drope", "learned_drope", "learned_drope_softmin"} and len(tab) == 16
    assert set(tab["mask"]) == {"center"}   # the default occlusion; a variant per other occlusion runs the rest
    assert tab["n"].eq(4).all() and (tab["kind"] == "mcmc").all()
    _check_delta_acc_intervals(tab)
    cost = pd.read_csv(run / "tables" / "gibbs_cost.csv")
    assert set(cost["mask"]) == {"center"} and cost["tokens_equal_first"].eq(1).all()
    assert cost.groupby("mask")["speedup_vs_first"].first().eq(1).all()
    pol = pd.read_csv(run / "tables" / "mcmc_policies.csv")
    assert set(pol["bitmask_policy"]) == {"any", "majority", "soft"} and len(pol) == 3
    assert len(pd.read_csv(run / "tables" / "token_kl.csv")) == 16
    goals = pd.read_csv(run / "tables" / "goals.csv")
    assert len(goals) == 1 and goals["goal"].str.contains("3x lower cost").all()   # digits per configuration is a property, not a goal
    for f in ("mcmc_delta_acc_heatmap", "token_kl_margin", "mcmc_flip_rate_maps"):
        assert (run / "figures" / f"{f}.png").is_file()


def test_report_variant_is_listed_and_its_fixed_parameters_cannot_be_overridden(sandbox):
    r = drift_nb("list")
    lines = {l.split()[0]: l for l in r.stdout.splitlines() if l.strip()}
    assert r.returncode == 0 and "masks = stripes" in lines["routec_mcmc_stripes"], r.stdout
    assert "key_mcmc_masks = stripes" in lines["routec_key_test_stripes"], r.stdout
    r = drift_nb("list", "routec_mcmc_stripes", "--profile", "smoke")
    assert any("masks" in l and "'stripes'" in l and "from variant routec_mcmc_stripes" in l for l in r.stdout.splitlines()), r.stdout
    r = drift_nb("run", "routec_key_test_stripes", "--profile", "smoke", "-p", "key_mcmc_masks", "center")
    assert r.returncode == 2 and "fixed to 'stripes'" in r.stderr and "routec_key_test" in r.stderr, r.stderr
    r = drift_nb("run", "routec_mcmc_stripes", "--profile", "smoke", "-p", "masks", "center")
    assert r.returncode == 2 and "fixed to 'stripes'" in r.stderr and "routec_mcmc" in r.stderr, r.stderr
    for d in sandbox.values(): assert tree(d) == [], f"{d} must stay empty"
    r = drift_nb("run", "routec_mcmc", "--profile", "smoke", "-p", "masks", "center,donut", "--no-progress", timeout=900)
    assert r.returncode != 0 and "donut" in r.stderr and "multi_hole" in r.stderr, r.stderr[-2000:]


def test_routec_key_test_stripes_at_smoke_and_model_cache_cold_warm_uncached(sandbox):
    """The variant routec_key_test_stripes at smoke (amortized rows on both occlusions, MCMC rows on stripes only, the
    cpu profile's split). Its cold-cache run trains and stores every model; the same run again loads them all and writes
    the same tables (every column except timings); --no-cache trains afresh without touching the cache."""
    import json, shutil
    from drift_nb.compare import compare_runs
    run = sandbox["runs"] / "_adhoc" / "routec_key_test_stripes-smoke"
    statuses = lambda d: [m["status"] for m in json.loads((d / "run.json").read_text())["models"]]
    r = drift_nb("run", "routec_key_test_stripes", "--profile", "smoke", "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    cold = sandbox["runs"].parent / "cold"; shutil.copytree(run, cold)
    assert statuses(cold) == ["trained"] * 8    # the pipeline's six, the EvidenceNet and the end-to-end composite
    import pandas as pd
    key = pd.read_csv(cold / "tables" / "key_test.csv")
    assert len(key) == 22 and set(key["method"]) == {"baseline", "drope", "learned_drope", "amortized",
                                                     "amortized_maskonly", "iterative", "evidence_e2e"}
    assert set(key.query("kind == 'mcmc'")["mask"]) == {"stripes"}
    assert set(key.query("kind == 'amortized'")["mask"]) == {"center", "stripes"}
    assert (key["pixel_mask_ratio"] > 0).all() and (key["bit_mask_ratio"] > 0).all() and (key["mse_before"] > 0).all()
    _check_delta_acc_intervals(key)
    assert key.query("kind == 'mcmc'")["n"].eq(4).all() and key.query("kind == 'amortized'")["n"].eq(64).all()
    # the end-to-end composite: read by its own classifier (delta_acc pairs that with the pipeline classifier's acc_before)
    e2e = key[key["method"] == "evidence_e2e"]
    assert len(e2e) == 4 and ((e2e["acc_after"] - e2e["acc_before"] - e2e["delta_acc"]).abs() < 1e-6).all()
    assert e2e["acc_after_frozen_classifier"].notna().all() and key.loc[key["method"] != "evidence_e2e", "acc_after_frozen_classifier"].isna().all()
    goals = pd.read_csv(cold / "tables" / "goals.csv")
    sign = goals[goals["goal"].str.startswith("end-to-end composite")]
    assert len(sign) == 1 and sign["met"].item() == bool((e2e["delta_acc_ci_low"] > 0).all())
    assert {"speed.csv", "key_test_vs_design.csv", "iterative_steps.csv"} <= set(p.name for p in (cold / "tables").iterdir())
    assert (cold / "figures" / "delta_acc_vs_design.png").is_file()
    # the speed-up compares each method with baseline on the configurations both ran (stripes here), not over all four
    speed = pd.read_csv(cold / "tables" / "speed.csv").set_index("method")
    am_shared = key.query("method == 'amortized' and mask == 'stripes'")["runtime_ms_p50"].median()
    assert speed.loc["amortized", "ms_p50_shared"] == pytest.approx(am_shared)
    assert speed.loc["amortized", "speedup_vs_baseline"] == pytest.approx(speed.loc["baseline", "ms_p50"] / am_shared)
    assert speed.loc["baseline", "speedup_vs_baseline"] == pytest.approx(1.0)
    entries = sorted(p.name for p in sandbox["cache"].iterdir())
    assert len(entries) == 8 and all(e.startswith("routec.") for e in entries)
    r = drift_nb("run", "routec_key_test_stripes", "--profile", "smoke", "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    assert statuses(run) == ["loaded"] * 8
    md = (run / "RUN.md").read_text()
    assert "## Models" in md and "8 loaded from the model cache" in md
    diff = compare_runs(cold, run)
    # timings differ between any two runs, and so does the evidence text of the speed goal that quotes them
    strict = diff[~diff["timing"] & ~((diff["table"] == "goals") & (diff["column"] == "evidence"))]
    assert len(strict) > 50 and (strict["verdict"] == "identical").all(), strict.to_string()
    assert set(diff.loc[diff["verdict"] != "identical", "table"]) <= {"key_test", "key_test_vs_design", "speed", "goals"}
    r = drift_nb("run", "routec_key_test_stripes", "--profile", "smoke", "--no-progress", "--no-cache")
    assert r.returncode == 0, r.stderr[-3000:]
    assert statuses(run) == ["uncached"] * 8 and sorted(p.name for p in sandbox["cache"].iterdir()) == entries
    diff = compare_runs(cold, run)
    strict = diff[~diff["timing"] & ~((diff["table"] == "goals") & (diff["column"] == "evidence"))]
    assert (strict["verdict"] == "identical").all(), strict.to_string()
    r = drift_nb("cache")
    assert r.returncode == 0 and "routec.autoencoder" in r.stdout and "8 entries" in r.stdout
    r = drift_nb("cache", "clear")
    assert r.returncode == 0 and "removed 8" in r.stdout and not any(sandbox["cache"].iterdir())


def test_goals_command_summarises_committed_runs():
    "drift-nb goals reads the committed runs: per report met/missed counts, then the missed goals with evidence."
    r = drift_nb("goals")
    assert r.returncode == 0, r.stderr
    assert "routec_eval_suite" in r.stdout and "missed" in r.stdout.lower() and "MISSED" not in r.stdout, "short by default"
    missed = drift_nb("goals", "--missed")
    assert missed.returncode == 0 and "MISSED" in missed.stdout and "[" in missed.stdout
    assert not any(l.startswith("    met    ") for l in missed.stdout.splitlines()), "--missed lists no met method"
    one = drift_nb("goals", "--report", "routec_eval_suite")
    assert one.returncode == 0 and "routec_eval_suite" in one.stdout and "bubbles_v1_suite" not in one.stdout
    bad = drift_nb("goals", "--report", "no_such_report")
    assert bad.returncode == 2 and "no_such_report" in bad.stderr and "routec_eval_suite" in bad.stderr


def test_denoiser_results_runs_at_smoke(sandbox):
    "The denoiser report end to end at smoke: every table the issue names, goals by the convention, samples as CSV."
    import pandas as pd
    from drift_nb.goals import read_goals
    r = drift_nb("run", "denoiser_results", "--profile", "smoke", "--no-progress", "-p", "n_generate", "24", "-p", "n_train", "3000")
    assert r.returncode == 0, r.stderr[-3000:]
    t = sandbox["runs"] / "_adhoc" / "denoiser_results-smoke" / "tables"
    for name in ("models", "repair", "editing", "generation", "generation_by_seed",
                 "goals", "samples_maskgit_20_cosine", "samples_hybrid_ar3", "samples_planner_renderer", "samples_autoregressive_baseline", "examples"):
        assert (t / f"{name}.csv").is_file(), name
    goals = read_goals(t / "goals.csv")
    assert len(goals) >= 8 and goals["met"].dtype == bool
    gen = pd.read_csv(t / "generation.csv")
    assert {"naive, 1 pass", "maskgit 20 cosine", "hybrid AR3", "planner + renderer", "autoregressive baseline"} <= set(gen["label"])
    s = pd.read_csv(t / "samples_autoregressive_baseline.csv")
    assert len(s) == 24 and list(s.columns[:3]) == ["text", "syntax_valid", "correct"] and s["text"].str.startswith("<BOS>").all()
    # the samples re-check: parsing the committed text gives the CSV's validity, and the table's rate is the CSV's mean
    from drift_nb.denoiser.data import check_batch, encode_batch
    assert (check_batch(encode_batch(s["text"]))["syntax_valid"].to_numpy() == s["syntax_valid"].to_numpy()).all()
    ar = gen[gen["label"] == "autoregressive baseline"]
    assert len(ar) == 1 and abs(ar["syntax_valid"].item() - s["syntax_valid"].mean()) < 1e-9
    assert not (t / "samples_best.csv").exists(), "a samples file names its method"


def test_denoiser_energy_runs_at_smoke(sandbox):
    "The energy report end to end at smoke: three heads, rejection on two bases against the same candidates, speed of every method."
    import pandas as pd
    from drift_nb.goals import read_goals
    r = drift_nb("run", "denoiser_energy", "--profile", "smoke", "--no-progress", "-p", "n_generate", "16", "-p", "n_train", "3000",
                 "-p", "energy_steps", "30", "-p", "speed_batch", "4", "-p", "n_timing", "1", "-p", "max_candidates", "4")
    assert r.returncode == 0, r.stderr[-3000:]
    t = sandbox["runs"] / "_adhoc" / "denoiser_energy-smoke" / "tables"
    for name in ("energy_training", "energy_auc", "rejection", "speed", "goals"):
        assert (t / f"{name}.csv").is_file(), name
    rej = pd.read_csv(t / "rejection.csv")
    assert set(rej["base"]) == {"hybrid AR3", "planner + renderer"} and sorted(set(rej["candidates"])) == [1, 4]
    heads = rej[rej["head"] != "oracle"]
    # each gain is measured against its own base's C = 1 validity, not another base's
    base1 = rej[rej["candidates"] == 1].groupby("base")["syntax_valid"].first()
    assert ((heads["syntax_valid"] - heads["base"].map(base1) - heads["syntax_valid_gain"]).abs() < 1e-9).all()
    sp = pd.read_csv(t / "speed.csv")
    assert len(sp) == 10
    assert read_goals(t / "goals.csv")["met"].dtype == bool


def test_denoiser_variants_runs_at_smoke(sandbox):
    "The variants report end to end at smoke: each of the design's training variants measured beside its number."
    import pandas as pd
    r = drift_nb("run", "denoiser_variants", "--profile", "smoke", "--no-progress", "-p", "n_generate", "16",
                 "-p", "n_train", "2000", "-p", "n_train_v2", "3000", "-p", "n_heldout", "200")
    assert r.returncode == 0, r.stderr[-3000:]
    t = sandbox["runs"] / "_adhoc" / "denoiser_variants-smoke" / "tables"
    for name in ("training", "sigma_max", "sigma_sweep", "self_conditioning", "hybrid_aware", "two_stage"):
        assert (t / f"{name}.csv").is_file(), name
    sm = pd.read_csv(t / "sigma_max.csv")
    assert list(sm["label"]) == ["V1", "V2", "V3"]
    assert len(pd.read_csv(t / "sigma_sweep.csv")) == 8
    tr = pd.read_csv(t / "training.csv").set_index("variant")   # each variant is a spec, trained through the cache at smoke
    assert tr.loc["V1", "spec"] == "denoiser.universal" and tr.loc["skeleton", "spec"] == "denoiser.variant_skeleton"
    assert tr.loc["V2", "steps"] == 2 * tr.loc["V1", "steps"] and set(tr["source"]) == {"trained"}


def test_denoiser_ablation_runs_at_smoke(sandbox):
    "The corruption ablation end to end at smoke: every mix and the autoregressive baseline trained through its spec with the held-out monitor, measured."
    import pandas as pd
    r = drift_nb("run", "denoiser_ablation", "--profile", "smoke", "--no-progress", "-p", "n_generate", "16", "-p", "train_scale", "0.0006")
    assert r.returncode == 0, r.stderr[-3000:]
    t = sandbox["runs"] / "_adhoc" / "denoiser_ablation-smoke" / "tables"
    models, per = pd.read_csv(t / "models.csv"), pd.read_csv(t / "per_model.csv")
    assert list(models["mix"]) == ["design", "mask80", "maskonly", "ar"] and (models["steps"] == 6).all()
    assert models["heldout_ce"].notna().all(), "the held-out monitor wrote its last value into every curve"
    den = per[per["mix"] != "ar"]
    assert ((den["refill_right"] + den["refill_neighbour"] + den["refill_other"] - 1).abs() < 1e-12).all()
    assert (den["repair_mask_copy_token_acc"] > den["repair_design_copy_token_acc"]).all(), "masks shift no token: copying the input scores more"
    eff = pd.read_csv(t / "effects_vs_design.csv")
    assert set(eff["mix"]) == {"mask80", "maskonly"}
