"The bubble-diagram reports end to end at smoke: every table the issue names, goals by the convention, samples as CSV."
from conftest import drift_nb


def _common(r, folder, tables):
    import pandas as pd
    from drift_nb.goals import read_goals
    assert r.returncode == 0, r.stderr[-3000:]
    t = folder / "tables"
    for name in tables + ("goals", "models", "masked_share"):
        assert (t / f"{name}.csv").is_file(), name
    goals = read_goals(t / "goals.csv")
    assert list(goals.columns) == ["goal", "method", "met", "evidence"] and goals["met"].dtype == bool
    return t, goals, pd


def test_bubbles_v1_suite_runs_at_smoke(sandbox):
    r = drift_nb("run", "bubbles_v1_suite", "--profile", "smoke", "--no-progress", "-p", "n_generate", "32", "-p", "n_train", "3000")
    t, goals, pd = _common(r, sandbox["runs"] / "_adhoc" / "bubbles_v1_suite-smoke",
                           ("v1_suite_configs", "v1_suite", "v1_pitfalls", "v1_findings", "design_comparison_s1_v1", "design_comparison_s5_4_v1"))
    cfg = pd.read_csv(t / "v1_suite_configs.csv")
    assert len(cfg) == 22 and cfg["label"].is_unique
    assert {"llada", "random"} <= set(cfg["unmask"]) and {"top_p", "argmax"} == set(cfg["token"])
    assert {"none", "cap", "rescale", "confidence"} == set(cfg["remask"])
    suite = pd.read_csv(t / "v1_suite.csv")
    assert suite["label"].tolist() == cfg["label"].tolist() and (suite["n"] == 32).all()
    assert (suite["unique_graphs_slot_hash"] >= suite["unique_graphs"]).all(), "slot-order hashing can only overcount"
    shares = pd.read_csv(t / "masked_share.csv")
    assert shares["pitfall"].sum() == 2 and len(shares) == 24
    naive = shares[shares["label"].str.endswith("_naive")]["max_abs_err"].item()
    assert naive > shares[~shares["pitfall"]]["max_abs_err"].max(), "the naive posterior drifts off the schedule"
    assert shares[shares["label"].str.endswith("_naive")]["drift"].item(), "and the drift test says so"
    assert (shares["max_half_width"] > 0).all()
    assert len(goals) == 1


def test_bubbles_remasking_runs_at_smoke(sandbox):
    from drift_nb.bubbles.plans import SEQ_LEN, names_to_tokens
    r = drift_nb("run", "bubbles_remasking", "--profile", "smoke", "--no-progress", "-p", "n_generate", "32", "-p", "n_train", "3000")
    t, goals, pd = _common(r, sandbox["runs"] / "_adhoc" / "bubbles_remasking-smoke",
                           ("v2_by_seed", "v2_summary", "design_comparison_s1", "design_comparison_s5_4", "sigma_max_diagnostic",
                            "decision_tree", "speed", "samples_v2_baseline"))
    assert len(goals) == 3
    by_seed = pd.read_csv(t / "v2_by_seed.csv")
    assert set(by_seed.groupby("label")["seed"].nunique()) == {2}   # smoke: n_gen_seeds = 2 for every configuration
    tree = pd.read_csv(t / "decision_tree.csv")
    assert tree["branch"].iloc[0] in ("bug", "success", "partial", "not_effective", "between")
    assert set(tree["label"].iloc[1:]) <= set(by_seed["label"]), "every prescribed run was run"
    diag = pd.read_csv(t / "sigma_max_diagnostic.csv")
    assert sorted(set(diag["t"])) == [0.3, 0.5, 0.7] and set(diag["model"]) == {"v1", "v2"}
    samples = sorted(t.glob("samples_v2_*.csv"))
    assert len(samples) == 2
    for f in samples:
        s = pd.read_csv(f)
        assert list(s.columns) == ["tokens"] and len(s) == 32 and s["tokens"].str.split().map(len).eq(SEQ_LEN).all()
        assert names_to_tokens(s["tokens"].tolist()).shape == (32, SEQ_LEN)
