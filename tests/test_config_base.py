"""`base:` in a config file: a config extends another, its own keys winning per section."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcepl_dist.config import load_config
from mcepl_dist.errors import ConfigError


def test_child_overrides_base_section_by_section(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        "name: parent\nalgorithm: {name: dsgd, lr: 0.5, prox_mu: 0.2}\ntrain: {iterations: 7}\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\nname: child\nalgorithm: {lr: 0.1}\n")
    cfg = load_config(tmp_path / "child.yaml")
    assert cfg.name == "child"
    assert (cfg.algorithm.name, cfg.algorithm.lr, cfg.algorithm.prox_mu) == ("dsgd", 0.1, 0.2)
    assert cfg.train.iterations == 7


def test_base_falls_back_to_the_shipped_configs(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("base: default.yaml\nalgorithm: {name: ind_weipru}\n")
    cfg = load_config(tmp_path / "mine.yaml")
    assert cfg.agents.num == 20 and cfg.algorithm.name == "ind_weipru"


def test_circular_base_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="circular"):
        load_config(tmp_path / "a.yaml")


def test_missing_base_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "a.yaml")
