"""Goals tables collected across runs, run-to-run comparison (folders and git revisions), and the hardware snapshot."""
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from drift_nb.compare import CompareError, compare_runs, compare_text, resolve_run
from drift_nb.core import hardware_snapshot, hardware_summary
from drift_nb.goals import (GOAL_COLUMNS, GoalsError, collect_goals, goals_markdown, goals_summary, goals_text,
                            interval_clears, runs_without_goals, save_goals)
from drift_nb.results import RUN_DIR_ENV

ROOT = Path(__file__).resolve().parents[1]


def _run(root: Path, name: str, tables: dict, **meta) -> Path:
    d = root / name
    (d / "tables").mkdir(parents=True)
    m = {"report": name.split("-")[0], "profile": "cpu", "config_hash": "abc", "git": {"commit": "f" * 40, "dirty": False},
         "parameters": {"profile": "cpu", "n_eval": 500},
         "hardware": {"device": "cpu", "cpu_model": "AMD EPYC", "cpu_capability": "AVX512", "cpu_count": 2, "torch_threads": 2}}
    m.update(meta)
    (d / "run.json").write_text(json.dumps(m))
    for t, df in tables.items():
        df.to_csv(d / "tables" / f"{t}.csv", index=False)
    return d


GOALS = pd.DataFrame({"goal": ["center: delta_acc > 0", "center: delta_acc > 0", "<= 1 ms/sample"],
                      "method": ["amortized", "evidence_all", "iterative"], "met": [False, True, False],
                      "evidence": ["gaussian +1.0% [-2.6%, +4.6%] (n = 500)", "gaussian +50.4% [+45.0%, +55.8%] (n = 500)",
                                   "p50 2.615 ms"]})


def test_save_goals_writes_through_save_table_and_refuses_bad_rows(tmp_path, monkeypatch):
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    save_goals(GOALS.to_dict("records"))
    back = pd.read_csv(tmp_path / "tables" / "goals.csv")
    assert list(back.columns) == list(GOAL_COLUMNS) and back["met"].tolist() == [False, True, False]
    with pytest.raises(GoalsError, match="met must be True or False, got 'yes'"):
        save_goals([{**GOALS.iloc[0].to_dict(), "met": "yes"}])
    with pytest.raises(GoalsError, match=r"missing columns \['evidence'\].*goal, method, met, evidence"):
        save_goals(GOALS.drop(columns="evidence"))


def test_goals_across_runs_counts_missed_and_links(tmp_path):
    _run(tmp_path, "routec_eval_suite", {"goals": GOALS})
    _run(tmp_path, "data_overview", {})
    s = goals_summary(tmp_path)
    assert s[["run", "met", "missed", "total"]].values.tolist() == [["routec_eval_suite", 1, 2, 3]]
    assert runs_without_goals(tmp_path) == ["data_overview"]
    assert collect_goals(tmp_path)["commit"].eq("f" * 40).all()
    md = goals_markdown(tmp_path, link_prefix="../papermill_runs/")
    assert "[routec_eval_suite](../papermill_runs/routec_eval_suite/tables/goals.md)" in md
    assert "- ✗ **missed** · iterative: p50 2.615 ms" in md and "- ✓ met · evidence_all:" in md
    txt = goals_text(tmp_path)
    assert "    MISSED amortized: gaussian +1.0% [-2.6%, +4.6%] (n = 500)" in txt.splitlines()
    assert max(map(len, txt.splitlines())) <= 100


def test_malformed_goals_table_is_named(tmp_path):
    _run(tmp_path, "bad", {"goals": GOALS.rename(columns={"evidence": "notes"})})
    with pytest.raises(GoalsError) as e:
        collect_goals(tmp_path)
    assert str(tmp_path / "bad" / "tables" / "goals.csv") in str(e.value) and "missing columns ['evidence']" in str(e.value)


@pytest.mark.parametrize("low, high, target, direction, met", [
    (0.01, 0.2, 0, "above", True), (0.0, 0.2, 0, "above", False), (-0.01, 0.2, 0, "above", False),
    (-0.2, -0.01, 0, "below", True), (-0.2, 0.0, 0, "below", False), (float("nan"), 0.2, 0, "above", False)])
def test_interval_clears(low, high, target, direction, met):
    assert interval_clears(low, high, target, direction) is met


SUITE = pd.DataFrame({"method": ["a", "a", "b"], "mask": ["center", "stripes", "center"], "n": [500] * 3,
                      "delta_acc": [0.28, -0.1, 0.3], "delta_acc_ci_low": [0.23, -0.15, 0.25],
                      "delta_acc_ci_high": [0.33, -0.05, 0.35], "ms_p50": [0.6, 0.6, 2.6]})


def test_compare_within_outside_and_timing(tmp_path):
    a = _run(tmp_path, "suite-a", {"suite": SUITE})
    near = SUITE.assign(delta_acc=SUITE["delta_acc"] + 0.02, ms_p50=SUITE["ms_p50"] * 2)
    far = near.copy()
    far.loc[1, "delta_acc"] = 0.0
    r = compare_runs(a, _run(tmp_path, "suite-near", {"suite": near.iloc[::-1]})).set_index("column")
    assert r.loc["delta_acc", "verdict"] == "within intervals" and r.loc["delta_acc", "aligned_by"] == "method, mask"
    assert r.loc["ms_p50", "timing"] and r.loc["n", "verdict"] == "identical"
    df = compare_runs(a, _run(tmp_path, "suite-far", {"suite": far, "extra": SUITE}))
    r = df.set_index("column")
    assert r.loc["delta_acc", "verdict"] == "outside intervals" and r.loc["delta_acc", "worst_row"] == "method=a, mask=stripes"
    txt = compare_text(df)
    assert "  suite.delta_acc: 1 of 3 rows outside; max |diff| 0.1 at method=a, mask=stripes" in txt.splitlines()
    assert "  only in B: extra" in txt.splitlines()


def test_compare_git_revision_of_a_committed_run():
    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    df = compare_runs("papermill_runs/data_overview@HEAD", "HEAD:papermill_runs/data_overview", root=ROOT)
    assert len(df) and (df["verdict"] == "identical").all()
    assert "The two runs are identical" in compare_text(df)
    with pytest.raises(CompareError, match="unknown git revision 'no-such-rev'"):
        resolve_run("papermill_runs/data_overview@no-such-rev", root=ROOT)
    with pytest.raises(CompareError, match="no run folder 'papermill_runs/nothing_here'"):
        resolve_run("papermill_runs/nothing_here@HEAD", root=ROOT)


def test_hardware_snapshot_new_keys_and_old_summary():
    snap = hardware_snapshot("cpu")
    for k in ("cpu_model", "cpu_capability", "torch_threads", "torch_interop_threads", "blas", "lapack", "mkl", "mkldnn"):
        assert k in snap
    assert json.loads(json.dumps(snap)) == snap and snap["cpu_model"] in hardware_summary(snap)
    f = ROOT / "papermill_runs" / "routec_key_test" / "run.json"
    if not f.is_file():
        pytest.skip("no committed routec_key_test run")
    old = json.loads(f.read_text())["hardware"]
    if "cpu_model" in old:
        pytest.skip("routec_key_test was rerun with a new snapshot")
    assert hardware_summary(old) == (f"{old['device']}, no GPU, {old['cpu_count']} CPUs, torch {old['torch']}, "
                                     f"Python {old['python']}, {old['platform']}")
