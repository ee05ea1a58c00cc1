"""Low-light darkening by gamma: y = c * x^gamma (LUD-VAE eq. 26, without its noise term)."""

from __future__ import annotations

from degrade_lab.degradations.base import Degrader, Range, as_range, per_image, sample_uniform


class LowLight(Degrader):
    """y = c * x^gamma with c ~ U[0.15, 0.4] and gamma ~ U[1.5, 2.5] per image (LUD-VAE, sec. 4.2)."""

    def __init__(self, c: Range = (0.15, 0.4), gamma: Range = (1.5, 2.5)):
        super().__init__()
        self.c = as_range(c, "c")
        self.gamma = as_range(gamma, "gamma")

    def degrade(self, clean, generator=None):
        batch, device = clean.shape[0], clean.device
        c = per_image(sample_uniform(self.c, batch, generator, device))
        gamma = per_image(sample_uniform(self.gamma, batch, generator, device))
        return c * clean.clamp(min=0).pow(gamma)

    def extra_repr(self):
        return f"c={self.c}, gamma={self.gamma}"
