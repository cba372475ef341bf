"""Algorithms behind one strategy interface; `build_strategy` picks one by name."""

from __future__ import annotations

from mcepl_dist.algorithms.base import AgentSpec, Strategy
from mcepl_dist.algorithms.ind_mask import IndMask
from mcepl_dist.algorithms.mcepl import MCEPL

REGISTRY: dict[str, type[Strategy]] = {"mcepl": MCEPL, "ind_mask": IndMask}

__all__ = ["AgentSpec", "Strategy", "REGISTRY", "build_strategy"]


def build_strategy(spec: AgentSpec) -> Strategy:
    """The strategy named in the algorithm config."""
    return REGISTRY[spec.algo.name](spec)
