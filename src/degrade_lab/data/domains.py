"""Domain tags carried by every training batch (``batch["domain"]``).

The values follow SeNM-VAE's labels: -1 paired, 0 clean-only (source), 1 degraded-only (target);
LUD-VAE's label is the same 0/1 for its two unpaired domains.
"""

PAIRED = -1
SOURCE = 0
TARGET = 1

NAMES = {PAIRED: "paired", SOURCE: "source", TARGET: "target"}
