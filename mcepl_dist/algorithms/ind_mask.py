"""ind-mask: MCE-PL's local mask learning with no communication (the paper's baseline).

With no neighbours p stays zero, so fine-tuning is a no-op and the mask is Fil[Thres(|z|)].
"""

from __future__ import annotations

from mcepl_dist.algorithms.mcepl import MCEPL


class IndMask(MCEPL):
    """MCE-PL with the exchange switched off."""

    name = "ind_mask"
    wire = "none"
