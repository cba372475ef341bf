"""Sweep files (pure): the shipped sweeps expand to the paper's jobs with the right configs,
overrides apply in their documented order, and every bad sweep file is one ConfigError."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcepl_dist.config import Config, load_config
from mcepl_dist.errors import ConfigError, UserError
from mcepl_dist.sweepfile import Job, Sweep, jobs, load_sweep, override, parse_sweep, slug

REPO = Path(__file__).resolve().parents[1]
SWEEPS = REPO / "configs" / "sweeps"
QUICKSTART = REPO / "configs" / "quickstart.yaml"
# table3's p = 0.5 and the knob sweeps' "defaults" rows borrow table2's and table1's runs
# (same_as).
JOB_COUNTS = {"table1": 5 * 3 * 1 + 4 * 3 * 3, "table2": 6 * 3 * 3, "table3": 3 * 3,
              "fig4": 4, "knobs_table2": 32, "knobs_table1": 9}


def shipped(name: str) -> Sweep:
    """A sweep file of configs/sweeps."""
    return load_sweep(SWEEPS / f"{name}.yaml")[0]


def configs(name: str) -> dict[str, tuple[Job, Config]]:
    """Every job of a shipped sweep with its loaded config, by job name."""
    return {j.name: (j, load_config(j.config, list(j.overrides))) for j in jobs(shipped(name))}


def test_sweep_directory_holds_exactly_the_known_sweeps() -> None:
    assert sorted(p.stem for p in SWEEPS.glob("*.yaml")) == sorted(JOB_COUNTS)


@pytest.mark.parametrize("name", sorted(JOB_COUNTS))
def test_shipped_sweep_expands_to_the_papers_jobs(name: str) -> None:
    sweep = shipped(name)
    expanded = jobs(sweep)
    assert sweep.name == name
    assert len(expanded) == JOB_COUNTS[name]
    names = [j.name for j in expanded]
    assert len(set(names)) == len(names), "job names (run directories) must be unique"
    assert all(re.fullmatch(r"[a-z0-9.=_-]+", n) for n in names), names
    for job in expanded:
        cfg = load_config(job.config, list(job.overrides))
        assert Path(job.config).is_absolute() and Path(job.config).is_file()
        assert cfg.seed == job.seed
        if sweep.columns.key:  # the column's value reached the config
            section, key = sweep.columns.key.split(".")
            assert getattr(getattr(cfg, section), key) == job.column
        assert job.as_dict()["overrides"] == list(job.overrides)


def test_table1_cells() -> None:
    cfgs = configs("table1")
    job, cfg = cfgs["lotterydsgd-0.3_c4_s0"]
    assert (job.row, job.column, job.seed) == ("LotteryDSGD(0.3)", 4, 0)
    assert cfg.algorithm.name == "lottery_dsgd" and cfg.agents.retention == 0.3
    assert cfgs["lotterydsgd-0.5_c3_s0"][1].agents.retention == 0.5
    assert cfgs["ind-mask-0.5_c5_s0"][1].algorithm.name == "ind_mask"
    for seed in (0, 1, 2):
        cfg = cfgs[f"mce-pl-0.3_c5_s{seed}"][1]
        assert (cfg.algorithm.name, cfg.agents.retention, cfg.seed) == ("mcepl", 0.3, seed)
        assert cfg.data.labels_per_agent == 5
    assert "mce-pl-0.3_c5_s3" not in cfgs and "dsgd_c3_s1" not in cfgs  # baselines: 1 seed
    assert {c.data.train_fraction for _, c in cfgs.values()} == {0.2}
    assert {c.agents.num for _, c in cfgs.values()} == {20}
    assert {c.algorithm.name for _, c in cfgs.values()} == {
        "dsgd", "fedavg", "dsgd_prox", "lottery_dsgd", "ind_mask", "mcepl"}


def test_table2_cells() -> None:
    cfgs = configs("table2")
    cfg = cfgs["ind-weipru_c4_s0"][1]
    assert cfg.algorithm.name == "ind_weipru" and cfg.algorithm.lr == 0.001
    assert cfg.data.labels_per_agent == 4 and cfg.data.train_fraction == 0.2
    assert isinstance(cfg.agents.retention, list) and len(cfg.agents.retention) == 20
    assert cfgs["dis-pfl_c5_s0"][1].algorithm.name == "dispfl"
    assert sorted(n for n in cfgs if n.startswith("mce-pl_c3")) == [
        "mce-pl_c3_s0", "mce-pl_c3_s1", "mce-pl_c3_s2"]


def test_table3_cells() -> None:
    cfgs = configs("table3")
    ring = cfgs["ring_s1"][1]
    assert ring.topology.kind == "ring" and ring.seed == 1
    p3 = cfgs["p-0.3_s2"][1]
    assert (p3.topology.kind, p3.topology.p) == ("er", 0.3)
    assert "p-0.5_s0" not in cfgs  # Table II's MCE-PL c_i = 4 runs, borrowed
    assert shipped("table3").row("p=0.5").same_as == ("table2", "MCE-PL", 4)
    assert {c.data.labels_per_agent for _, c in cfgs.values()} == {4}


def test_knob_cells() -> None:
    """Each knob row changes exactly its one knob from the Table II c_i = 4 defaults."""
    cfgs = configs("knobs_table2")
    fil = cfgs["mce-pl-fil-off_s0"][1]
    assert (fil.algorithm.name, fil.algorithm.fil_threshold) == ("mcepl", 0)
    assert (fil.data.labels_per_agent, fil.data.train_fraction) == (4, 0.2)
    assert cfgs["mce-pl-eta-ft-10-authors_s0"][1].algorithm.eta_ft == 10.0
    eta10 = cfgs["mce-pl-eta-10-authors_s0"][1].algorithm
    assert (eta10.eta, eta10.eta_ft) == (10.0, None)  # eta_ft follows eta (eq. 17)
    assert cfgs["mce-pl-lambda-0.001-paper_s0"][1].algorithm.lam == 0.001
    ind = cfgs["ind-mask-fil-off_s0"][1]
    assert (ind.algorithm.name, ind.algorithm.fil_threshold) == ("ind_mask", 0)
    ind_eta = cfgs["ind-mask-eta-10-authors_s0"][1].algorithm
    assert (ind_eta.name, ind_eta.eta, ind_eta.fil_threshold) == ("ind_mask", 10.0, 20)
    assert shipped("knobs_table2").row("MCE-PL defaults").same_as == ("table2", "MCE-PL", 4)


def test_knob_cells_of_table1() -> None:
    """Table I's knob rows: c_i = 3 and r = 0.5 for every agent, one knob changed each."""
    cfgs = configs("knobs_table1")
    eta10 = [f"{algo}-eta-10-authors_s{seed}" for algo in ("ind-mask", "mce-pl")
             for seed in (0, 1, 2)]
    max16a = [f"mce-pl-max-in-16a-paper_s{seed}" for seed in (0, 1, 2)]
    assert sorted(cfgs) == [*eta10, *max16a]
    for _, cfg in cfgs.values():
        assert (cfg.data.labels_per_agent, cfg.agents.retention) == (3, 0.5)
    assert cfgs["mce-pl-max-in-16a-paper_s0"][1].algorithm.scale_16a == "max"
    ind = cfgs["ind-mask-eta-10-authors_s0"][1].algorithm
    assert (ind.name, ind.eta) == ("ind_mask", 10.0)
    borrowed = shipped("knobs_table1").row("MCE-PL defaults").same_as
    assert borrowed == ("table1", "MCE-PL(0.5)", 3)


def test_fig4_cells() -> None:
    cfgs = configs("fig4")
    assert sorted(cfgs) == ["mask-r-0.1_s0", "mask-r-0.3_s0", "mask-r-0.5_s0", "weights-sgd_s0"]
    dense = cfgs["weights-sgd_s0"][1]
    assert (dense.algorithm.name, dense.agents.retention) == ("ind_weipru", 1.0)
    mask = cfgs["mask-r-0.1_s0"][1]
    assert (mask.algorithm.name, mask.agents.retention, mask.agents.num) == ("ind_mask", 0.1, 3)
    assert [f.id for f in shipped("fig4").figures] == ["fig4"]


def test_paper_numbers() -> None:
    t2, t3 = shipped("table2"), shipped("table3")
    assert t2.paper("MCE-PL", 4) == 0.6451 and t2.paper("Dis-PFL", 5) == 0.5617
    assert t3.paper("ring", None) == 0.6394
    assert shipped("fig4").paper("mask r=0.3", None) is None
    with pytest.raises(ConfigError, match="no row 'nope'"):
        t2.paper("nope", 4)
    assert [f.id for f in t2.figures] == ["fig6", "fig7", "fig8", "fig9"]
    assert t2.figures[0].rows == tuple(r.label for r in t2.rows)  # no rows: every row
    assert t2.figures[2].kind == "masks" and t2.figures[2].rows == ("MCE-PL",)


# --- overrides and names -------------------------------------------------------------


def base_mapping() -> dict[str, Any]:
    """A valid sweep file's mapping, with three columns and a figure."""
    return {"name": "t", "base": str(QUICKSTART),
            "set": {"train.iterations": 1, "train.eval_every": 1, "seed": 9},
            "columns": {"key": "data.labels_per_agent", "values": [3, 4, 5], "slug": "c{}"},
            "seeds": [0],
            "rows": [{"label": "A", "set": {"train.iterations": 2, "train.eval_every": 2},
                      "paper": [0.5, None, 1], "seeds": [1, 2]},
                     {"label": "B (x)", "config": str(REPO / "configs" / "ind_mask.yaml")}],
            "figures": [{"id": "f", "kind": "acc_vs_iter", "column": 4, "rows": ["A"]}]}


def parse(raw: dict[str, Any], where: Path = SWEEPS / "t.yaml") -> Sweep:
    return parse_sweep(raw, where)


def test_override_order_sweep_row_column_seed_extra() -> None:
    raw = base_mapping()
    raw["columns"]["key"] = "train.iterations"
    raw["rows"][0]["set"]["seed"] = 8
    sweep = parse(raw)
    a = [j for j in jobs(sweep, ("train.eval_every=7",)) if j.row == "A"]
    assert [(j.column, j.seed) for j in a] == [(3, 1), (3, 2), (4, 1), (4, 2), (5, 1), (5, 2)]
    assert a[0].overrides == ("train.iterations=1", "train.eval_every=1", "seed=9",
                              "train.iterations=2", "train.eval_every=2", "seed=8",
                              "train.iterations=3", "seed=1", "train.eval_every=7")
    cfg = load_config(a[0].config, list(a[0].overrides))
    assert (cfg.train.iterations, cfg.seed, cfg.train.eval_every) == (3, 1, 7)
    b = [j for j in jobs(sweep) if j.row == "B (x)"]
    assert [j.name for j in b] == ["b-x_c3_s0", "b-x_c4_s0", "b-x_c5_s0"]  # sweep's seeds
    cfg = load_config(b[1].config, list(b[1].overrides))
    assert (cfg.algorithm.name, cfg.train.iterations, cfg.train.eval_every, cfg.seed) == (
        "ind_mask", 4, 1, 0)


def test_row_set_beats_sweep_set() -> None:
    job = jobs(parse(base_mapping()))[0]
    cfg = load_config(job.config, list(job.overrides))
    assert (cfg.train.iterations, cfg.train.eval_every, cfg.data.labels_per_agent) == (2, 2, 3)


def test_single_column_sweep() -> None:
    raw = base_mapping()
    del raw["columns"], raw["figures"]
    raw["rows"][0]["paper"] = 0.25
    sweep = parse(raw)
    assert [j.name for j in jobs(sweep)] == ["a_s1", "a_s2", "b-x_s0"]
    assert sweep.paper("A", None) == 0.25 and sweep.paper("B (x)", None) is None
    assert sweep.columns.title(None) == "accuracy"


@pytest.mark.parametrize("label, expected", [
    ("MCE-PL(0.3)", "mce-pl-0.3"), ("weights (SGD)", "weights-sgd"), ("p=0.3", "p-0.3"),
    ("ind-mask", "ind-mask"), ("  ", "row"), ("!!", "row")])
def test_slug(label: str, expected: str) -> None:
    assert slug(label) == expected
    assert yaml.safe_load(f"name: {slug(label)}") == {"name": expected}


@pytest.mark.parametrize("value", [
    0.001, 1e-05, 2.5e-07, 1e20, float("inf"), -0.0, 3, 0, True, False, None, "ring",
    "yes", "on", "no", "null", "1e3", "0.5", "", " padded ", "a: b", "#x", "é",
    [0.4, 1e-05, 0.3], [], {"a": [1, "b"]}, "x" * 300])
def test_override_round_trips_through_yaml(value: Any) -> None:
    key, sep, text = override("algorithm.lr", value).partition("=")
    assert (key, sep) == ("algorithm.lr", "=")
    assert yaml.safe_load(text) == value and type(yaml.safe_load(text)) is type(value)


def test_small_float_in_a_sweep_reaches_the_config_as_a_number(tmp_path: Path) -> None:
    raw = base_mapping()
    raw["set"]["algorithm.weight_decay"] = 0.00001  # json.dumps writes 1e-05: a YAML string
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(raw))
    job = jobs(load_sweep(path)[0])[0]
    assert load_config(job.config, list(job.overrides)).algorithm.weight_decay == 1e-05


def test_configs_beside_the_sweep_file_win_over_shipped_ones(tmp_path: Path) -> None:
    (tmp_path / "quickstart.yaml").write_text("base: default.yaml\nname: mine\n")
    raw = base_mapping()
    raw["base"] = "quickstart.yaml"
    sweep = parse(raw, tmp_path / "t.yaml")
    assert sweep.base == str((tmp_path / "quickstart.yaml").resolve())
    raw["base"] = "dsgd.yaml"  # not beside it: the packaged one
    assert Path(parse(raw, tmp_path / "t.yaml").base).name == "dsgd.yaml"


# --- validation ----------------------------------------------------------------------


def _set(raw: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with value ... delete) raw[a][b]... along a dotted path of keys/indices."""
    *parents, last = path.split(".")
    node: Any = raw
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    key: Any = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key]
    else:
        node[key] = value


BAD = [
    ("colums", {}, r"sweep .*t\.yaml: unknown key 'colums'; valid keys: base, columns"),
    ("rows.0.seed", 1, r"rows\[0\]: unknown key 'seed'"),
    ("columns.step", 1, r"columns: unknown key 'step'"),
    ("figures.0.colour", "red", r"figures\[0\]: unknown key 'colour'"),
    ("base", ..., r"base \(a config file\) is required"),
    ("base", "nowhere.yaml", r"config file not found: .*nowhere\.yaml"),
    ("rows.1.config", "missing.yaml", r"config file not found: .*missing\.yaml"),
    ("rows.0.paper", [0.5, 0.6], r"rows\[0\]: paper has 2 numbers but there are 3 columns"),
    ("rows.0.paper", [0.5, 70.88, None], r"accuracies in \[0, 1\] or null, got 70\.88"),
    ("rows.0.paper", [0.5, -0.1, None], r"accuracies in \[0, 1\] or null, got -0\.1"),
    ("rows.0.paper", [0.5, "high", None], r"accuracies in \[0, 1\] or null, got 'high'"),
    ("figures.0.rows", ["A", "C"], r"figures\[0\]: rows must name rows of this sweep \(A, B"),
    ("figures.0.column", 6, r"figures\[0\]: column 6 is not one of \[3, 4, 5\]"),
    ("figures.0.kind", "bars", r"kind must be one of acc_vs_iter, acc_vs_bytes, masks"),
    ("figures.0.agents", 2, r"agents is a list of 1-based agent numbers"),
    ("figures.0.filters", [1], r"filters is \[first, count\]"),
    ("figures.0.seed", "one", r"seed is an integer"),
    ("rows.1.label", "A", r"row labels repeat"),
    ("rows.1.label", "a", r"row labels \['A', 'a'\] give the same directory name twice"),
    ("rows.0.seeds", [1, 1], r"rows\[0\]: seeds repeat: \[1, 1\]"),
    ("seeds", [0, 2, 0], r"seeds repeat"),
    ("seeds", [], r"seeds must be a non-empty list of integers >= 0"),
    ("rows.0.seeds", [-1], r"seeds must be a non-empty list of integers >= 0"),
    ("rows", [], r"rows must be a non-empty list"),
    ("rows.1", "B", r"rows\[1\]: expected a mapping, got 'B'"),
    ("rows.1.label", ..., r"rows\[1\]: label is required"),
    ("rows.0.set", [1], r"rows\[0\]: set: expected a mapping of key: value"),
    ("name", "a/b", r"name must be a file-name-safe string"),
    ("columns.values", [3, 3], r"columns\.values repeat"),
    ("columns.values", [3, "3"], r"columns\.slug gives the job names \['c3', 'c3'\]"),
    ("columns.slug", "c{}/", r"must differ and hold no '/'"),
    ("columns.slug", "c{x}", r"columns\.label and columns\.slug take one \{\}"),
    ("columns.key", ..., r"columns\.key must be a config key"),
]


@pytest.mark.parametrize("path, value, message", BAD, ids=[f"{p}={v!r}" for p, v, _ in BAD])
def test_bad_sweep_is_one_config_error(path: str, value: Any, message: str) -> None:
    raw = copy.deepcopy(base_mapping())
    parse(raw)  # the unmodified mapping is valid
    _set(raw, path, value)
    with pytest.raises(ConfigError, match=message) as info:
        parse(raw)
    assert isinstance(info.value, UserError) and info.value.exit_code == 2
    assert "\n" not in str(info.value)


def test_load_sweep_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sweep file not found"):
        load_sweep(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml is not valid YAML") as info:
        load_sweep(bad)
    assert "\n" not in str(info.value)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_sweep(bad)


def test_load_sweep_returns_the_raw_mapping_too() -> None:
    sweep, raw = load_sweep(SWEEPS / "table3.yaml")
    assert raw["name"] == sweep.name == "table3" and len(raw["rows"]) == len(sweep.rows)
    assert sweep.set == (("data.train_fraction", 0.2),)
    assert "seed" in sweep.note
