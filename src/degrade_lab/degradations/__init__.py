"""Degraders: map a clean batch (B x 3 x H x W in [0, 1]) and a torch.Generator to a degraded batch.

Hand-made ones live here; the learned models of later issues implement the same interface
(:class:`degrade_lab.degradations.base.Degrader`), so synthesis, on-the-fly pair making and
evaluation never need to know which kind they hold.
"""

from degrade_lab.degradations.base import Degrader, Identity

__all__ = ["Degrader", "Identity"]
