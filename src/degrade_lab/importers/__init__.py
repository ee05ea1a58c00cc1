"""Key maps from the papers' official code to degrade_lab's networks: the authors' weights load into ours
one to one (and benchmarks run both codes on the same weights)."""
