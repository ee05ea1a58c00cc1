"""Per-image seeds: an image's randomness depends on (seed, its name) only, not on the order of a folder or on
where a killed run stopped (synthesize, restore, evaluate's degrader scores)."""

from __future__ import annotations

import hashlib


def image_seed(seed: int, name: str) -> int:
    """A 60-bit seed from the run's ``seed`` and the image's ``name``."""
    return int(hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()[:15], 16)
