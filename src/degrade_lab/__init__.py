"""degrade_lab: learn real image degradations, synthesize training pairs, train restorers, evaluate."""

__version__ = "0.1.0"


def load_restorer(ckpt, device=None):
    """A trained restorer for inference: :func:`degrade_lab.api.load_restorer`."""
    from degrade_lab.api import load_restorer as load

    return load(ckpt, device)


def load_degrader(name_or_ckpt, device=None, **options):
    """A degrader by config name or trained checkpoint: :func:`degrade_lab.api.load_degrader`."""
    from degrade_lab.api import load_degrader as load

    return load(name_or_ckpt, device, **options)
