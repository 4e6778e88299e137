"The bubble-diagram reports end to end at smoke: every table the issue names, goals by the convention, samples as CSV."
from conftest import drift_nb

SMOKE = ("--profile", "smoke", "--no-progress", "-p", "n_generate", "32", "-p", "n_train", "3000", "-p", "train_scale", "0.003")


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


def _samples(t, pattern, n):
    import pandas as pd
    from drift_nb.bubbles.plans import SEQ_LEN, names_to_tokens
    files = sorted(t.glob(pattern))
    for f in files:
        s = pd.read_csv(f)
        assert list(s.columns) == ["tokens"] and len(s) == n and s["tokens"].str.split().map(len).eq(SEQ_LEN).all()
        assert names_to_tokens(s["tokens"].tolist()).shape == (n, SEQ_LEN)
    return [f.stem for f in files]


def test_bubbles_v1_suite_runs_at_smoke(sandbox):
    r = drift_nb("run", "bubbles_v1_suite", *SMOKE)
    t, goals, pd = _common(r, sandbox["runs"] / "_adhoc" / "bubbles_v1_suite-smoke",
                           ("v1_suite_configs", "v1_suite", "v1_suite_by_seed", "v1_fixed_counts_by_seed", "v1_pitfalls", "v1_findings",
                            "design_comparison_s1_v1", "design_comparison_s5_4_v1"))
    cfg = pd.read_csv(t / "v1_suite_configs.csv")
    assert len(cfg) == 22 and cfg["label"].is_unique
    suite, by_seed = pd.read_csv(t / "v1_suite.csv"), pd.read_csv(t / "v1_suite_by_seed.csv")
    assert suite["label"].tolist() == cfg["label"].tolist() and (suite["seeds"] == 2).all()
    assert (by_seed["n"] == 16).all() and set(by_seed["seed"]) == {42, 123}      # 32 samples split over the two smoke seeds
    fixed = pd.read_csv(t / "v1_fixed_counts_by_seed.csv")
    k = fixed["k"].iloc[0]
    assert (fixed["k"] == k).all() and k == by_seed.loc[by_seed["n_valid"] >= 16 // 4, "n_valid"].min()
    assert fixed.loc[fixed["n_valid"] < k, "classes_seen"].isna().all() and fixed.loc[fixed["n_valid"] >= k, "classes_seen"].notna().all()
    shares = pd.read_csv(t / "masked_share.csv")
    assert shares["pitfall"].sum() == 2 and len(shares) == 24
    naive = shares[shares["label"].str.endswith("_naive")]["max_abs_err"].item()
    assert naive > shares[shares["on_schedule"]]["max_abs_err"].max(), "the naive posterior drifts off the schedule"
    assert _samples(t, "samples_v1_*.csv", 16) == ["samples_v1_llada_topp0.9_no_remask", "samples_v1_llada_topp0.9_remdm_confidence_tsw1"]
    assert len(goals) == 1


def test_bubbles_remasking_runs_at_smoke(sandbox):
    r = drift_nb("run", "bubbles_remasking", *SMOKE)
    t, goals, pd = _common(r, sandbox["runs"] / "_adhoc" / "bubbles_remasking-smoke",
                           ("v2_plain_selection", "v2_remasking_selection", "v2_by_seed", "v2_summary", "fixed_counts", "fixed_counts_by_seed",
                            "v2_unmask_steps", "design_comparison_s1", "design_comparison_s5_4", "sigma_max_diagnostic", "decision_tree", "speed"))
    assert len(goals) == 4
    plain = pd.read_csv(t / "v2_plain_selection.csv")
    assert len(plain) == 6 and set(plain["label"].str.split("_").str[0]) == {"llada", "random", "ancestral"}
    summary = pd.read_csv(t / "v2_summary.csv")
    assert (summary["seeds"] == 2).all() and len(summary) == 3 and (summary["model"] == "ar").sum() == 1
    # the baseline the evaluation ran is the one the selection table picks: the most valid, a near-tie broken by edge JS
    top = plain[plain["validity"] >= plain["validity"].max() - 0.005].sort_values(["edge_js", "validity"], ascending=[True, False])
    base = summary[(summary["model"] == "v2") & summary["label"].str.endswith("no_remask")]["label"].item()
    assert base == top["label"].iloc[0]
    by_seed, fixed = pd.read_csv(t / "v2_by_seed.csv"), pd.read_csv(t / "fixed_counts_by_seed.csv")
    assert (fixed["k"] == by_seed.loc[by_seed["n_valid"] > 0, "n_valid"].min()).all()
    remask = summary[(summary["model"] == "v2") & ~summary["label"].str.endswith("no_remask")]["label"].item()
    assert sorted(_samples(t, "samples_*.csv", 32)) == sorted([f"samples_v2_{base}", f"samples_v2_{remask}", "samples_ar_topp0.9"])
    shares = pd.read_csv(t / "masked_share.csv")
    assert "ar_topp0.9" not in set(shares["label"]) and shares["pitfall"].sum() == 1
