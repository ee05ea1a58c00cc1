"""Pipelines: the stages of a paper's table (train, judge, synthesize, train restorers, evaluate), each an ordinary
degrade-lab command, run in order and resumed where they stopped (``degrade-lab pipeline NAME``)."""
