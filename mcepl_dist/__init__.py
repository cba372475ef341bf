"""mcepl_dist: MCE-PL (mask-based communication-efficient personalised learning) as a
multi-process decentralised training runtime over torch.distributed."""

__version__ = "0.1.0"
