"""The report: cells, merging of settings, curves, CSV, figures, from hand-made run dirs."""

from __future__ import annotations

import csv
import json
import math
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcepl_dist import report
from mcepl_dist.config import dump_config, load_config, packaged_file
from mcepl_dist.errors import ConfigError
from mcepl_dist.metrics import save_masks
from mcepl_dist.model import layer_shapes, network_for
from mcepl_dist.provenance import git_commit
from mcepl_dist.report import figures, runs, tables

pytest.importorskip("matplotlib")

WIDTH = 0.125
SPEC: dict[str, Any] = {
    "name": "t",
    "title": "Table T",
    "note": "a test table",
    "base": "quickstart.yaml",
    "columns": {"key": "data.labels_per_agent", "values": [3, 4], "label": "c_i = {}",
                "slug": "c{}"},
    "rows": [{"label": "A", "paper": [0.5, 0.6], "seeds": [0, 1]},
             {"label": "B", "set": {"algorithm.name": "ind_mask"}}],
    "figures": [
        {"id": "curves", "kind": "acc_vs_iter", "column": 3},
        {"id": "bytes", "kind": "acc_vs_bytes", "column": 3},
        {"id": "masks", "kind": "masks", "column": 3, "rows": ["A"], "agents": [1, 2],
         "filters": [1, 3]},
    ],
}
RETENTION = {"mcepl": "[0.2, 0.5]", "ind_mask": "0.5"}
# rank -> iteration -> (test_acc, bytes_sent_cum, paper_bytes_cum)
EVALS = {0: {2: (0.2, 100, 80), 4: (0.4, 200, 160)},
         1: {2: (0.6, 300, 240), 4: (0.8, 400, 320)}}


def job_config(labels: int, seed: int, algo: str = "mcepl") -> str:
    cfg = load_config(packaged_file("quickstart.yaml"), [
        "data.name=synthetic", f"model.width={WIDTH}", "agents.num=2",
        f"agents.retention={RETENTION[algo]}",
        f"data.labels_per_agent={labels}", f"seed={seed}", f"algorithm.name={algo}"])
    return dump_config(cfg)


def write_run(path: Path, acc: float, iterations: int, labels: int, seed: int,
              algo: str = "mcepl", masks: bool = False, sent: int = 1000) -> None:
    (path / "metrics").mkdir(parents=True)
    (path / "config.yaml").write_text(job_config(labels, seed, algo))
    summary = {"algorithm": algo, "num_agents": 2, "iterations": iterations,
               "final_mean_test_acc": acc, "final_std_test_acc": 0.1,
               "per_agent_test_acc": [acc - 0.1, acc + 0.1],
               "bytes_per_message": 2521, "bytes_sent_total": sent,
               "bytes_sent_per_agent_per_iter": 10.0, "paper_bytes_sent_total": 900,
               "median_t_iter_s": 0.5, "comm_fraction": 0.1, "wall_clock_s": 3.0,
               "peak_rss_mb_max": 300.0, "peak_gpu_mb_max": 0.0,
               "provenance": {"git_commit": "c" * 40, "git_dirty": False,
                              "machine": "2-core Test CPU", "command": "python -m x",
                              "sweep_command": "python -m mcepl_dist.sweep t.yaml --out d",
                              "finished_utc": "2026-01-01T00:00:00Z"}}
    (path / "summary.json").write_text(json.dumps(summary))
    for rank, evals in EVALS.items():
        lines = []
        for it in range(iterations + 1):
            rec: dict[str, Any] = {"iter": it, "rank": rank, "msgs_sent": 1,
                                   "paper_bits": 8.0 * 40, "bytes_sent_cum": 50 * it}
            if it in evals:
                acc_r, sent_r, paper_r = evals[it]
                rec.update(test_acc=acc_r, bytes_sent_cum=sent_r, paper_bytes_cum=paper_r)
            lines.append(json.dumps(rec))
        (path / "metrics" / f"rank{rank}.jsonl").write_text("\n".join(lines) + "\n")
    if masks:
        rng = np.random.default_rng(seed)
        for agent in range(2):
            save_masks(path / "masks" / f"agent{agent}.npz",
                       [(rng.random(s) < 0.5).astype(np.uint8) for s in layer_shapes(WIDTH)])


def write_sweep(path: Path, accs: dict[str, float], iterations: int = 4,
                extra: list[str] | None = None, missing: tuple[str, ...] = ()) -> Path:
    """A sweep directory with the given job -> final accuracy."""
    path.mkdir(parents=True)
    jobs = {}
    for name, acc in accs.items():
        row, col, seed = name.split("_")
        label = {"a": "A", "b": "B"}[row]
        jobs[name] = {"name": name, "row": label, "column": int(col[1:]), "seed": int(seed[1:]),
                      "config": "quickstart.yaml", "overrides": []}
        write_run(path / name, acc, iterations, int(col[1:]), int(seed[1:]),
                  "ind_mask" if label == "B" else "mcepl", masks=label == "A",
                  sent=0 if label == "B" else 1000)
    for name in missing:
        row, col, seed = name.split("_")
        jobs[name] = {"name": name, "row": row.upper(), "column": int(col[1:]),
                      "seed": int(seed[1:]), "config": "quickstart.yaml", "overrides": []}
    (path / "sweep.json").write_text(json.dumps({
        "name": "t", "file": "/elsewhere/t.yaml", "spec": SPEC, "extra_set": extra or [],
        "sweep_command": "python -m mcepl_dist.sweep t.yaml --out d", "jobs": jobs}))
    return path


@pytest.fixture
def short(tmp_path: Path) -> Path:
    return write_sweep(tmp_path / "short", {"a_c3_s0": 0.4, "a_c3_s1": 0.6, "b_c3_s0": 0.3},
                       missing=("a_c4_s0",))


def test_cell_mean_and_spread_over_seeds(short: Path) -> None:
    d = runs.read_sweep_dir(short)
    assert [r.job for r in d.runs] == ["a_c3_s0", "a_c3_s1", "b_c3_s0"]
    assert d.missing == ("a_c4_s0",)
    found = runs.cells(d.sweep, d.runs)
    (cell,) = found[("A", "3")]
    assert cell.mean == pytest.approx(0.5)
    assert cell.std == pytest.approx(0.1)  # population sd of .4 and .6
    assert cell.seeds == [0, 1]
    assert cell.paper == 0.5 and cell.delta_points == pytest.approx(0.0)
    assert cell.label == "4 it, 2 seeds, 2-core CPU (Test)"


def test_merge_takes_the_spec_written_last(short: Path, tmp_path: Path) -> None:
    """A row added to the sweep file after an older directory ran is known to the merge,
    whichever order the directories are given in."""
    newer = write_sweep(tmp_path / "newer", {"a_c4_s0": 0.6})
    state = json.loads((newer / "sweep.json").read_text())
    state["spec"] = {**SPEC, "rows": [*SPEC["rows"], {"label": "C", "paper": [0.7, 0.8]}]}
    state["updated_utc"] = "2026-11-29T12:00:00Z"
    (newer / "sweep.json").write_text(json.dumps(state))
    old = json.loads((short / "sweep.json").read_text())
    (short / "sweep.json").write_text(json.dumps({**old, "created_utc": "2026-11-28T12:00:00Z"}))
    for order in ([short, newer], [newer, short]):
        ((sweep, merged, _),) = runs.merge([runs.read_sweep_dir(d) for d in order])
        assert [r.label for r in sweep.rows] == ["A", "B", "C"]
        assert sorted(r.job for r in merged) == ["a_c3_s0", "a_c3_s1", "a_c4_s0", "b_c3_s0"]


def test_longest_setting_is_shown_and_all_are_listed(short: Path, tmp_path: Path) -> None:
    long = write_sweep(tmp_path / "long", {"a_c3_s0": 0.7}, iterations=8,
                       extra=["train.iterations=8", "checkpoint.every=0"])
    dirs = [runs.read_sweep_dir(short), runs.read_sweep_dir(long)]
    ((sweep, merged, _),) = runs.merge(dirs)
    found = runs.cells(sweep, merged)
    first, second = found[("A", "3")]
    assert (first.iterations, first.mean) == (8, 0.7)  # checkpoint.every is not a setting
    assert first.label == "8 it, 1 seed, 2-core CPU (Test)"
    assert (second.iterations, second.mean) == (4, pytest.approx(0.5))
    text = "\n".join(tables.table_markdown(sweep, found))
    assert "| A | 3 | .5000 | .7000 | (+20.0) | 8 it, 1 seed, 2-core CPU (Test) |" in text
    assert "| A | 4 | .6000 | not run yet |" in text
    assert "| B | 3 | — | .3000 |  | 4 it, 1 seed, 2-core CPU (Test) |" in text


def test_a_setting_that_changes_results_labels_the_cell(tmp_path: Path) -> None:
    d = write_sweep(tmp_path / "x", {"a_c3_s0": 0.4}, extra=["algorithm.eta=10"])
    r = runs.read_sweep_dir(d)
    (cell,) = runs.cells(r.sweep, r.runs)[("A", "3")]
    assert cell.label == "4 it, 1 seed, 2-core CPU (Test), algorithm.eta=10"


@pytest.mark.parametrize(("recorded", "label"), [
    ("2-core Intel(R) Xeon(R) Processor", "2-core CPU (Intel Xeon)"),
    ("2-core AMD EPYC", "2-core CPU (AMD EPYC)"),
    ("16-core Intel(R) Xeon(R) Platinum 8480+ @ 2.00GHz", "16-core CPU (Intel Xeon)"),
    ("NVIDIA H200, 16-core AMD EPYC 9454 48-Core Processor", "H200"),
    ("", "unknown machine"),
])
def test_a_cell_names_the_cpu_family(recorded: str, label: str) -> None:
    """Two CPU models can give different numbers for one commit and seed, so a CPU cell
    says which family ran it."""
    assert runs.short_machine(recorded) == label


def test_curve_is_mean_over_agents(short: Path) -> None:
    run = runs.read_sweep_dir(short).runs[0]
    c = runs.read_curve(run)
    assert c.iters.tolist() == [2, 4]
    assert c.mean == pytest.approx([0.4, 0.6])
    assert c.std == pytest.approx([0.2, 0.2])
    assert c.bytes == pytest.approx([200, 300])
    assert c.paper_bytes == pytest.approx([160, 240])


def test_curve_of_a_run_without_paper_bytes_cum(short: Path) -> None:
    run = runs.read_sweep_dir(short).runs[0]
    for f in (run.dir / "metrics").glob("rank*.jsonl"):
        recs = [json.loads(line) for line in f.read_text().splitlines()]
        for rec in recs:
            rec.pop("paper_bytes_cum", None)
        f.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    c = runs.read_curve(run)
    # 40 bytes per message, one message per record from iteration 0 on.
    assert c.paper_bytes == pytest.approx([3 * 40, 5 * 40])


def test_a_curve_averages_the_seeds_evaluated_most_often(short: Path) -> None:
    """Seeds evaluated less often (here seed 1 only at iteration 4) would thin a mean curve
    to the evaluations all share, so the figure shows the others and says so."""
    for f in (short / "a_c3_s1" / "metrics").glob("rank*.jsonl"):
        recs = [json.loads(line) for line in f.read_text().splitlines()]
        for rec in recs:
            if rec["iter"] == 2:
                rec.pop("test_acc", None)
        f.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    d = runs.read_sweep_dir(short)
    (cell,) = runs.cells(d.sweep, d.runs)[("A", "3")]
    alone = runs.read_curve(cell.runs[0])
    c = figures._mean_curve(cell)
    assert c.iters.tolist() == [2, 4]
    assert c.mean == pytest.approx(alone.mean)
    caption = figures._caption_runs([("A", cell)])
    assert caption == ("A: 4 it, 2 seeds, 2-core CPU (Test) (the curve: seed 0, evaluated "
                       "more often than the others)")


def test_conv1_panel_layout() -> None:
    w = np.arange(4 * 3 * 5 * 5, dtype=np.float64).reshape(4, 3, 5, 5) + 1
    m = np.ones_like(w)
    m[2, 1] = 0
    img = figures.conv1_panel(w, m, first=1, count=3)
    assert img.shape == (3 * 6 - 1, 3 * 6 - 1)
    assert np.isnan(img[5, :]).all() and np.isnan(img[:, 5]).all()
    np.testing.assert_array_equal(img[0:5, 0:5], w[1, 0])  # filter 1, input channel 0
    np.testing.assert_array_equal(img[6:11, 6:11], 0)  # filter 2, channel 1: masked out
    np.testing.assert_array_equal(img[12:17, 12:17], w[3, 2])


def test_report_writes_tables_csv_and_figures(short: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    assert report.main([str(short), "--out", str(out)]) == 0
    text = (out / "results.md").read_text()
    assert "## Table T" in text and "a test table" in text
    for fig in ("curves", "bytes", "masks"):
        assert (out / f"{fig}.png").read_bytes()[:4] == b"\x89PNG"
        assert f"![{fig}]({fig}.png)" in text
    assert "Not shown (they send nothing): B" in text
    # The masks figure shows one run (seed 0 of A's two), so it names that run alone.
    assert "Run: a_c3_s0 (4 it, seed 0, 2-core CPU (Test))." in text
    assert "python -m mcepl_dist.sweep t.yaml --out d" in text
    assert "cccccccccc on 2-core CPU (Test)" in text
    assert "Not finished: 1 job(s)" in text
    # Row A's agents have r = 0.2 and 0.5; seeds .4 and .6 give agents .3/.5 and .5/.7.
    assert "|  | c_i | r = 0.2 | r = 0.5 |" in text
    assert "| A | 3 | .4000 | .6000 |" in text
    kept = out / "runs" / "short"
    assert sorted(p.name for p in kept.iterdir()) == ["a_c3_s0", "a_c3_s1", "b_c3_s0",
                                                       "sweep.json"]
    assert json.loads((kept / "a_c3_s1" / "summary.json").read_text())["final_mean_test_acc"] \
        == 0.6
    assert load_config(kept / "a_c3_s1" / "config.yaml").seed == 1
    with open(out / "t.csv") as f:
        cells = list(csv.DictReader(f))
    a3 = next(c for c in cells if c["row"] == "A" and c["column"] == "3")
    assert (float(a3["mean"]), float(a3["sd_over_seeds"]), a3["seeds"]) == (0.5, 0.1, "0 1")
    with open(out / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and rows[0]["git_commit"] == "c" * 40
    with open(out / "t_curves.csv") as f:
        curve = list(csv.DictReader(f))
    assert len(curve) == 3 * 2
    assert math.isclose(float(curve[0]["mean_acc"]), 0.4)


def test_accuracy_by_retention_groups_agents_but_not_for_dense_methods(tmp_path: Path) -> None:
    def run(name: str) -> runs.Run:
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        return runs.Run(sweep="t", job=name, row="A", column=3, seed=0, dir=tmp_path / name,
                        summary=summary, extra_set=(), sweep_command="")

    write_run(tmp_path / "mask", 0.5, 4, 3, 0)  # agents at r = 0.2 and 0.5
    assert tables.by_retention(run("mask")) == pytest.approx({0.2: 0.4, 0.5: 0.6})
    write_run(tmp_path / "dense", 0.5, 4, 3, 0)
    cfg = load_config(tmp_path / "dense" / "config.yaml", ["algorithm.name=dsgd"])
    (tmp_path / "dense" / "config.yaml").write_text(dump_config(cfg))
    assert tables.by_retention(run("dense")) == {}


def test_each_run_names_the_sweep_command_that_started_it(short: Path,
                                                         tmp_path: Path) -> None:
    """sweep.json keeps only the directory's latest command; a job's own comes first."""
    summary_path = short / "a_c3_s1" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["provenance"]["sweep_command"] = "python -m mcepl_dist.sweep t.yaml --rows A"
    summary_path.write_text(json.dumps(summary))
    del summary["provenance"]["sweep_command"]
    (short / "b_c3_s0" / "summary.json").write_text(json.dumps(summary))
    out = tmp_path / "results"
    assert report.main([str(short), "--out", str(out), "--no-figures"]) == 0
    with open(out / "runs.csv") as f:
        commands = {r["job"]: r["sweep_command"] for r in csv.DictReader(f)}
    assert commands == {"a_c3_s0": "python -m mcepl_dist.sweep t.yaml --out d",
                        "a_c3_s1": "python -m mcepl_dist.sweep t.yaml --rows A",
                        "b_c3_s0": "python -m mcepl_dist.sweep t.yaml --out d"}
    assert "python -m mcepl_dist.sweep t.yaml --rows A" in (out / "results.md").read_text()


def test_given_commit_wins_over_the_checkouts(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A copied tree's .git may be older than the commit it was copied from."""
    monkeypatch.setenv("MCEPL_GIT_COMMIT", "abc123")
    assert git_commit() == ("abc123", False)
    monkeypatch.delenv("MCEPL_GIT_COMMIT")
    assert git_commit(tmp_path) == ("unknown", False)  # no git there


def test_report_files_do_not_make_the_checkout_dirty(tmp_path: Path) -> None:
    """The report's own output, rewritten in a checkout, leaves its commit clean."""
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "results.md").write_text("old\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    (tmp_path / "results" / "results.md").write_text("new\n")
    assert git_commit(tmp_path, ignore=tmp_path / "results")[1] is False
    assert git_commit(tmp_path)[1] is True
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path, ignore=tmp_path / "results")[1] is True
    assert git_commit(tmp_path, ignore=Path("/elsewhere"))[1] is True  # outside: ignored


def test_masks_figure_uses_the_runs_own_network(short: Path) -> None:
    """Fig. 8/9 show w * m: w must be the run's, regenerated from its config's seed."""
    run = runs.read_sweep_dir(short).runs[1]  # seed 1
    cfg = load_config(run.dir / "config.yaml")
    assert cfg.seed == 1
    w0 = network_for(load_config(runs.read_sweep_dir(short).runs[0].dir / "config.yaml"))
    assert not np.array_equal(network_for(cfg).weights[0].numpy(), w0.weights[0].numpy())


def test_not_a_sweep_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="not a sweep directory"):
        runs.read_sweep_dir(tmp_path)
    assert report.main([str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a sweep directory" in err[0]
    assert not (tmp_path / "o").exists()


def test_a_same_as_row_borrows_the_other_sweeps_cell(short: Path, tmp_path: Path) -> None:
    """Table III's p = 0.5 is Table II's MCE-PL at c_i = 4: shown from those runs."""
    other = tmp_path / "u"
    other.mkdir()
    spec: dict[str, Any] = {"name": "u", "base": "quickstart.yaml",
            "rows": [{"label": "same", "paper": 0.45,
                      "same_as": {"sweep": "t", "row": "A", "column": 3}},
                     {"label": "own", "set": {"seed": 5}}]}
    (other / "sweep.json").write_text(json.dumps({"name": "u", "file": "/x/u.yaml",
                                                  "spec": spec, "jobs": {}}))
    out = tmp_path / "results"
    assert report.main([str(short), str(other), "--out", str(out), "--no-figures"]) == 0
    text = (out / "results.md").read_text()
    assert ("| same | .4500 | .5000 ± .1000 | +5.0 | 4 it, 2 seeds, 2-core CPU (Test), the runs "
            "of t A 3 |") in text
    assert "| own | — | not run yet |" in text


def test_same_as_rows_run_nothing() -> None:
    from mcepl_dist.sweepfile import jobs, parse_sweep
    spec: dict[str, Any] = {"name": "u", "base": "quickstart.yaml",
            "rows": [{"label": "same", "same_as": {"sweep": "t", "row": "A", "column": 3}},
                     {"label": "own"}]}
    sweep = parse_sweep(spec, packaged_file("quickstart.yaml"))
    assert [j.row for j in jobs(sweep)] == ["own"]
    spec["rows"][0]["set"] = {"seed": 1}
    with pytest.raises(ConfigError, match="runs nothing"):
        parse_sweep(spec, packaged_file("quickstart.yaml"))


def _tables(results: Path) -> list[str]:
    """results.md without its first lines (command, date) and directory names."""
    text = (results / "results.md").read_text().split("\n")[4:]
    return [line for line in text if not line.startswith(("Not finished", "*Fig"))]


def test_report_regenerates_from_its_own_copy(short: Path, tmp_path: Path) -> None:
    """The run directories gone, `<out>/runs/*` alone gives the same tables, curves and
    figures: curves and conv1 masks are kept with each run."""
    out = tmp_path / "results"
    assert report.main([str(short), "--out", str(out)]) == 0
    kept = out / "runs" / "short"
    assert (kept / "a_c3_s0" / runs.CURVE_FILE).is_file()
    assert (kept / "a_c3_s0" / runs.CONV1_FILE).is_file()  # A saves masks, B does not
    assert not (kept / "b_c3_s0" / runs.CONV1_FILE).exists()
    np.testing.assert_array_equal(runs.conv1_masks(kept / "a_c3_s0")[1],
                                  runs.conv1_masks(short / "a_c3_s0")[1])
    first = {f: (out / f).read_text() for f in ("t.csv", "t_curves.csv")}
    (out / "masks.png").unlink()
    import shutil
    shutil.rmtree(short)
    runs.forget_curves()
    assert report.main([str(kept), "--out", str(out)]) == 0
    assert (out / "masks.png").is_file()
    assert (out / "t_curves.csv").read_text() == first["t_curves.csv"]
    assert (out / "t.csv").read_text().replace(str(kept), str(short)) == first["t.csv"]
    c = runs.read_curve(runs.read_sweep_dir(kept).runs[0])
    assert c.iters.tolist() == [2, 4] and c.mean == pytest.approx([0.4, 0.6])
    assert c.per_agent is not None and c.per_agent.tolist() == [[0.2, 0.6], [0.4, 0.8]]


def test_kept_directories_merge_by_setting(short: Path, tmp_path: Path) -> None:
    """A directory of the same sweep and --set joins the kept one; another setting of the
    same name is kept beside it; a run given twice (directory and copy) counts once."""
    out = tmp_path / "results"
    more = write_sweep(tmp_path / "elsewhere" / "short", {"b_c4_s0": 0.5})
    other = write_sweep(tmp_path / "gpu" / "short", {"a_c3_s0": 0.7}, iterations=8,
                        extra=["train.iterations=8"])
    assert report.main([str(short), "--out", str(out), "--no-figures"]) == 0
    assert report.main([str(out / "runs" / "short"), str(more), str(other), str(short),
                        "--out", str(out), "--no-figures"]) == 0
    kept = runs.read_sweep_dir(out / "runs" / "short")
    assert [r.job for r in kept.runs] == ["a_c3_s0", "a_c3_s1", "b_c3_s0", "b_c4_s0"]
    assert kept.missing == ("a_c4_s0",)
    beside = runs.read_sweep_dir(out / "runs" / "short-2")
    assert [r.iterations for r in beside.runs] == [8] and beside.extra_set == (
        "train.iterations=8",)
    with open(out / "runs.csv") as f:
        assert len(list(csv.DictReader(f))) == 5  # 3 + 1 + 1, not 8
    done = write_sweep(tmp_path / "later" / "short", {"a_c4_s0": 0.6})  # the missing job
    ((_, _, missing),) = runs.merge([kept, runs.read_sweep_dir(done)])
    assert missing == []


def test_a_setting_that_cannot_change_results_joins_the_kept_directory(
        short: Path, tmp_path: Path) -> None:
    """Runs that differ only in how they ran (evaluation interval, checkpoints) are kept
    together, so the documented regeneration command, which names the kept directory,
    still finds them; their cells show one setting."""
    out = tmp_path / "results"
    assert report.main([str(short), "--out", str(out), "--no-figures"]) == 0
    later = write_sweep(tmp_path / "cpu" / "short", {"a_c4_s0": 0.5}, extra=[
        "train.eval_every=2", "checkpoint.every=0"])
    assert report.main([str(out / "runs" / "short"), str(later), "--out", str(out),
                        "--no-figures"]) == 0
    assert not (out / "runs" / "short-2").exists()
    kept = runs.read_sweep_dir(out / "runs" / "short")
    assert [r.job for r in kept.runs] == ["a_c3_s0", "a_c3_s1", "a_c4_s0", "b_c3_s0"]
    assert kept.missing == ()
    assert all(r.settings == () for r in kept.runs)
    assert [r.extra_set for r in kept.runs] == [(), (), (
        "train.eval_every=2", "checkpoint.every=0"), ()]  # each run's own, as it ran
    assert runs.result_settings(["train.eval_every=2", "algorithm.eta=10",
                                 "train.iterations=8"]) == ("algorithm.eta=10",
                                                            "train.iterations=8")


def test_a_damaged_kept_curve_is_named(short: Path) -> None:
    run = runs.read_sweep_dir(short).runs[0]
    for f in (run.dir / "metrics").glob("*"):
        f.unlink()
    runs.forget_curves()
    with pytest.raises(ConfigError, match="no metrics"):
        runs.read_curve(run)
    (run.dir / runs.CURVE_FILE).write_text('{"iters": [1, 2], "mean": [0.5]}')
    runs.forget_curves()
    with pytest.raises(ConfigError, match="curve.json is damaged"):
        runs.read_curve(run)


def _sweep_u(path: Path, extra: list[str]) -> Path:
    """Sweep "u": a row borrowing t's A at c_i = 3 and a row of its own, run once."""
    path.mkdir()
    spec: dict[str, Any] = {"name": "u", "base": "quickstart.yaml",
            "rows": [{"label": "same", "paper": 0.45,
                      "same_as": {"sweep": "t", "row": "A", "column": 3}},
                     {"label": "own"}]}
    write_run(path / "own_s0", 0.3, 4, 3, 0, "mcepl")
    (path / "sweep.json").write_text(json.dumps({
        "name": "u", "file": "/x/u.yaml", "spec": spec, "extra_set": extra,
        "jobs": {"own_s0": {"name": "own_s0", "row": "own", "column": None, "seed": 0,
                            "config": "quickstart.yaml", "overrides": []}}}))
    return path


@pytest.mark.parametrize("u_set, shown", [
    ([], "| same | .4500 | .5000 ± .1000 | +5.0 | 4 it, 2 seeds, 2-core CPU (Test), the runs"),
    (["algorithm.eta=10"], "| same | .4500 | .7000 | +25.0 | 8 it, 1 seed, 2-core CPU (Test), "
                           "algorithm.eta=10, the runs"),
])
def test_a_borrowed_cell_at_the_borrowing_sweeps_setting_comes_first(
        short: Path, tmp_path: Path, u_set: list[str], shown: str) -> None:
    """t's A 3 ran at 4 it (no --set) and at 8 it with eta 10: a knob table run without
    --set shows the former for its "defaults" row, one run with eta 10 the latter."""
    longer = write_sweep(tmp_path / "longer", {"a_c3_s0": 0.7}, iterations=8,
                         extra=["algorithm.eta=10"])
    u = _sweep_u(tmp_path / "u", u_set)
    out = tmp_path / "results"
    assert report.main([str(short), str(longer), str(u), "--out", str(out),
                        "--no-figures"]) == 0
    assert shown in (out / "results.md").read_text()
