"""degrade_lab: learn real image degradations, synthesize training pairs, train restorers, evaluate."""

__version__ = "0.1.0"
