"""Pretrained backbones for the perceptual metrics and losses, kept in a local cache, never downloaded at
run time: ``degrade-lab weights install`` fills ``$DEGRADE_LAB_HOME/weights/<source>/``, the metrics
read it through :func:`require`, and a missing file stops with the command that installs it."""

from degrade_lab.weights.store import MissingWeightsError, WeightsFile, installed, require, weights_dir

__all__ = ["MissingWeightsError", "WeightsFile", "installed", "require", "weights_dir"]
