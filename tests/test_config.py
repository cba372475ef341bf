"""Configuration: defaults, shipped files, overrides, validation errors, round trip."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mcepl_dist import algorithms
from mcepl_dist import config as C
from mcepl_dist.config import ConfigError, dump_config, load_config, packaged_file


def _plain(cfg: C.Config) -> C.Config:
    return dataclasses.replace(cfg, base_dir="")


def test_default_equals_shipped_default_yaml() -> None:
    embedded = load_config()
    from_file = load_config(packaged_file("default.yaml"))
    assert from_file.base_dir == str(packaged_file("default.yaml").resolve().parent)
    assert _plain(from_file) == embedded
    assert embedded == C.Config()


def test_shipped_configs_come_from_the_code_s_own_checkout(tmp_path: Path) -> None:
    """A second checkout on PYTHONPATH reads its own configs/, not the installed tree's."""
    root = Path(C.__file__).resolve().parent.parent
    shutil.copytree(root / "mcepl_dist", tmp_path / "mcepl_dist",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(root / "configs", tmp_path / "configs")
    shutil.copy(root / "pyproject.toml", tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", "from mcepl_dist.config import packaged_file; "
         "print(packaged_file('default.yaml'))"],
        env={"PATH": "", "PYTHONPATH": str(tmp_path)}, cwd=tmp_path, capture_output=True,
        text=True, check=True).stdout.strip()
    assert Path(out) == tmp_path / "configs" / "default.yaml"


def test_default_values_are_the_papers() -> None:
    cfg = load_config()
    assert cfg.agents.num == 20
    assert cfg.agents.retention == list(C.PAPER_RETENTION)
    assert cfg.agents.retention[:5] == [0.4, 0.4, 0.3, 0.2, 0.1]
    assert [cfg.agents.ratio(i) for i in (0, 4, 19)] == [0.4, 0.1, 0.3]
    assert cfg.algorithm.name == "mcepl"
    assert cfg.algorithm.eta == 1.0
    assert cfg.algorithm.lam == 0.0  # measured: the paper's 0.001 collapses (docs)
    assert cfg.algorithm.fil_threshold == 20
    assert cfg.algorithm.fine_tune_rate == cfg.algorithm.eta  # eta_ft null = eta
    assert cfg.data.labels_per_agent == 4
    assert cfg.model.width == 1.0
    assert cfg.model.weight_init == "kaiming_normal"
    assert cfg.train.batch_size == 128
    assert cfg.train.iterations == 400
    assert (cfg.topology.kind, cfg.topology.path) == ("file", "topology_er20_p05.txt")


def test_quickstart_loads() -> None:
    cfg = load_config(packaged_file("quickstart.yaml"))
    assert cfg.name == "quickstart"
    assert cfg.agents.num == 4
    assert cfg.agents.retention == [0.5, 0.3, 0.3, 0.5]
    assert cfg.algorithm.fil_threshold == 0
    assert cfg.data.labels_per_agent == 3
    assert cfg.data.label_table is None
    assert cfg.model.width == 0.5
    assert cfg.topology.kind == "ring"
    assert cfg.train.iterations == 100
    assert cfg.train.batch_size == 64
    # keys the file leaves out keep their defaults
    assert cfg.algorithm.lam == C.AlgorithmConfig().lam
    assert cfg.comm == C.CommConfig()


def test_set_overrides_nested_lists_null() -> None:
    cfg = load_config(overrides=[
        "algorithm.eta=1",
        "algorithm.eta_ft=null",
        "algorithm.fc_retention=0.9",
        "agents.num=3",
        "agents.retention=[0.1, 0.2, 0.5]",
        "data.label_table=null",
        "data.root=/tmp/cifar",
        "topology.kind=ring",
        "train.iterations=7",
        "output.save_masks=false",
        "seed=5",
    ])
    assert cfg.algorithm.eta == 1.0 and isinstance(cfg.algorithm.eta, float)
    assert cfg.algorithm.eta_ft is None
    assert cfg.algorithm.fine_tune_rate == 1.0
    assert cfg.algorithm.fc_retention == 0.9
    assert cfg.agents.num == 3
    assert cfg.agents.retention == [0.1, 0.2, 0.5]
    assert cfg.agents.ratio(2) == 0.5
    assert cfg.data.label_table is None
    assert cfg.data.root == "/tmp/cifar"
    assert cfg.topology.kind == "ring"
    assert cfg.train.iterations == 7
    assert cfg.output.save_masks is False
    assert cfg.seed == 5
    assert cfg.base_dir == ""


def test_override_scalar_retention_and_last_wins() -> None:
    cfg = load_config(overrides=["agents.retention=0.3", "algorithm.eta=2", "algorithm.eta=3"])
    assert cfg.agents.retention == 0.3
    assert [cfg.agents.ratio(i) for i in (0, 19)] == [0.3, 0.3]
    assert cfg.algorithm.eta == 3.0


def test_overrides_apply_on_top_of_a_file() -> None:
    cfg = load_config(packaged_file("quickstart.yaml"), ["model.width=0.25", "agents.num=2",
                                                         "agents.retention=[0.3, 0.3]"])
    assert cfg.model.width == 0.25
    assert cfg.agents.num == 2
    assert cfg.name == "quickstart"


# --------------------------------------------------------------------------------------
# errors: each one-line and naming the key


def _err(overrides: list[str]) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(overrides=overrides)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_unknown_top_level_key() -> None:
    msg = _err(["bogus=1"])
    assert "bogus" in msg
    assert "unknown" in msg


def test_unknown_nested_key() -> None:
    msg = _err(["algorithm.etaa=1"])
    assert "unknown" in msg
    assert "algorithm.etaa" in msg  # the dotted key as the user wrote it


def test_unknown_key_in_file(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  iterationz: 3\n")
    with pytest.raises(ConfigError, match="iterationz"):
        load_config(f)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("algorithm.eta=abc", "algorithm.eta"),
        ("train.iterations=1.5", "train.iterations"),
        ("train.iterations=true", "train.iterations"),
        ("output.save_masks=1", "output.save_masks"),
        ("agents.retention=abc", "agents.retention"),
        ("agents.retention=[0.1, x]", "agents.retention"),
        ("algorithm=3", "algorithm"),
        ("name=3", "name"),
    ],
)
def test_wrong_type(override: str, key: str) -> None:
    assert key in _err([override])


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2"])
def test_retention_out_of_range(value: str) -> None:
    msg = _err([f"agents.retention={value}"])
    assert "agents.retention" in msg
    assert "(0, 1]" in msg


def test_local_steps_at_least_one_and_only_for_the_sgd_baselines() -> None:
    assert "algorithm.local_steps must be >= 1" in _err(["algorithm.local_steps=0"])
    msg = _err(["algorithm.local_steps=2"])  # the default algorithm, mcepl
    assert "algorithm.local_steps applies to dsgd, dsgd_prox, fedavg only" in msg
    cfg = load_config(overrides=["algorithm.name=dsgd_prox", "algorithm.local_steps=3"])
    assert cfg.algorithm.local_steps == 3


def test_retention_one_is_allowed() -> None:
    assert load_config(overrides=["agents.retention=1"]).agents.retention == 1.0


def test_retention_list_wrong_length() -> None:
    msg = _err(["agents.retention=[0.3, 0.4]"])
    assert "agents.retention" in msg
    assert "2" in msg and "20" in msg


def test_retention_list_value_out_of_range() -> None:
    msg = _err(["agents.num=2", "agents.retention=[0.3, 1.2]"])
    assert "agents.retention" in msg


@pytest.mark.parametrize("value", ["0", "11"])
def test_labels_per_agent_out_of_range(value: str) -> None:
    assert "data.labels_per_agent" in _err([f"data.labels_per_agent={value}"])


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("algorithm.eta=-1", "algorithm.eta"),
        ("algorithm.eta=0", "algorithm.eta"),
        ("algorithm.eta_ft=-0.5", "algorithm.eta_ft"),
        ("algorithm.lam=-0.001", "algorithm.lam"),
        ("algorithm.fil_threshold=-1", "algorithm.fil_threshold"),
        ("algorithm.momentum=1", "algorithm.momentum"),
        ("algorithm.scale_16a=median", "algorithm.scale_16a"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.iterations=0", "train.iterations"),
        ("data.train_fraction=0", "data.train_fraction"),
        ("model.width=0", "model.width"),
        ("topology.p=0", "topology.p"),
        ("comm.timeout_s=0", "comm.timeout_s"),
        ("agents.num=0", "agents.num"),
        ("seed=-1", "seed"),
    ],
)
def test_out_of_range_values(override: str, key: str) -> None:
    assert key in _err([override])


def test_unknown_algorithm() -> None:
    msg = _err(["algorithm.name=fedsgd"])
    assert "algorithm.name" in msg
    assert "fedsgd" in msg
    assert "mcepl" in msg


def test_bad_topology_kind() -> None:
    msg = _err(["topology.kind=star"])
    assert "topology.kind" in msg
    assert "star" in msg


def test_bad_override_syntax() -> None:
    assert "key=value" in _err(["algorithm.eta"])


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("algorithm: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_algorithms_match_registry() -> None:
    assert set(C.ALGORITHMS) == set(algorithms.REGISTRY)
    for name, cls in algorithms.REGISTRY.items():
        assert cls.name == name


# --------------------------------------------------------------------------------------
# dump / reload


@pytest.mark.parametrize(
    "overrides",
    [[], ["agents.retention=0.5", "algorithm.eta_ft=2", "data.label_table=null",
          "topology.kind=er", "topology.p=0.3"]],
)
def test_dump_config_round_trip(tmp_path: Path, overrides: list[str]) -> None:
    cfg = load_config(overrides=overrides)
    text = dump_config(cfg)
    assert "base_dir" not in text
    f = tmp_path / "config.yaml"
    f.write_text(text)
    again = load_config(f)
    assert _plain(again) == cfg


def test_dump_quickstart_round_trip(tmp_path: Path) -> None:
    cfg = load_config(packaged_file("quickstart.yaml"))
    f = tmp_path / "config.yaml"
    f.write_text(dump_config(cfg))
    assert _plain(load_config(f)) == _plain(cfg)


def test_resolve_path_prefers_config_dir_then_packaged(tmp_path: Path) -> None:
    (tmp_path / "mygraph.txt").write_text("0 1\n1 0\n")
    f = tmp_path / "c.yaml"
    f.write_text("topology:\n  path: mygraph.txt\n")
    cfg = load_config(f)
    assert C.resolve_path(cfg, "mygraph.txt") == tmp_path / "mygraph.txt"
    assert C.resolve_path(cfg, "topology_er20_p05.txt") == packaged_file("topology_er20_p05.txt")


def test_resolved_paths_for_the_run_directory(tmp_path: Path) -> None:
    (tmp_path / "my_graph.txt").write_text("0 1\n")
    cfg_file = tmp_path / "exp.yaml"
    cfg_file.write_text("topology:\n  path: my_graph.txt\n")
    cfg = load_config(cfg_file)

    out = C.with_resolved_paths(cfg)

    assert out.topology.path == str((tmp_path / "my_graph.txt").resolve())
    assert out.data.label_table == "label_tables.yaml"  # shipped with the package: kept


@pytest.mark.parametrize("a, b, same", [
    # eta_ft null means eta (eq. 17): restating it does not change the run
    (["algorithm.eta=10"], ["algorithm.eta=10", "algorithm.eta_ft=10"], True),
    (["algorithm.eta=1"], ["algorithm.eta=1", "algorithm.eta_ft=10"], False),
    # how often it evaluates, logs or checkpoints, and where the data lie, do not count
    (["train.eval_every=20"], ["train.eval_every=50", "checkpoint.every=0",
                               "data.root=/elsewhere"], True),
    ([], ["seed=1"], False),
    ([], ["train.iterations=60"], False),
])
def test_result_config_is_equal_exactly_for_configs_that_train_the_same(
        a: list[str], b: list[str], same: bool) -> None:
    assert (C.result_config(load_config(None, a)) == C.result_config(load_config(None, b))) is same


def test_result_config_drops_every_neutral_key() -> None:
    keys = C.result_config(load_config())
    assert "algorithm.eta_ft" in keys and "seed" in keys and "train.iterations" in keys
    assert not [k for k in keys if k.startswith(C.NEUTRAL_KEYS)]
