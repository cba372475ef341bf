"""Algorithms behind one strategy interface; `build_strategy` picks one by name."""

from __future__ import annotations

from mcepl_dist.algorithms.avr_weipru import AvrWeiPru
from mcepl_dist.algorithms.base import ALL, AgentSpec, Strategy
from mcepl_dist.algorithms.dispfl import DisPFL
from mcepl_dist.algorithms.dsgd import DSGD
from mcepl_dist.algorithms.dsgd_prox import DSGDProx
from mcepl_dist.algorithms.fedavg import FedAvg
from mcepl_dist.algorithms.ind_mask import IndMask
from mcepl_dist.algorithms.ind_weipru import IndWeiPru
from mcepl_dist.algorithms.lottery_dsgd import LotteryDSGD
from mcepl_dist.algorithms.mcepl import MCEPL
from mcepl_dist.algorithms.par_weipru import ParWeiPru

REGISTRY: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (MCEPL, IndMask, DSGD, FedAvg, DSGDProx, LotteryDSGD, IndWeiPru, AvrWeiPru,
                ParWeiPru, DisPFL)
}

__all__ = ["ALL", "AgentSpec", "Strategy", "REGISTRY", "build_strategy"]


def build_strategy(spec: AgentSpec) -> Strategy:
    """The strategy named in the algorithm config."""
    return REGISTRY[spec.algo.name](spec)
