"""LightningModules: losses, optimizers, logging around the networks of ``archs``."""
