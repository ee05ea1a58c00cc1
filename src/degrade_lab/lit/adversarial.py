"""What the GAN-trained restorers (VDIR, ESRGAN) share: two optimizers under Lightning's manual
optimization, the GAN losses, and skipping a step whose loss is not finite (counted and logged)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)


def standard_gan_losses(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss of the non-saturating GAN (VDIR eq. 16): -log D(y) - log(1 - D(y_hat))."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def standard_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator loss of the non-saturating GAN (VDIR eq. 17): -log D(y_hat)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def relativistic_losses(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Relativistic average GAN (ESRGAN eq. 1-2): D_Ra(a, b) = sigmoid(C(a) - E[C(b)]).

    Returns ``(loss when 'real' should win, loss when 'fake' should win)``: the discriminator minimises
    the first, the generator the second (the same expression with the roles swapped)."""
    real_vs_fake = real_logits - fake_logits.mean()
    fake_vs_real = fake_logits - real_logits.mean()
    ones, zeros = torch.ones_like(real_vs_fake), torch.zeros_like(fake_vs_real)
    real_wins = (F.binary_cross_entropy_with_logits(real_vs_fake, ones)
                 + F.binary_cross_entropy_with_logits(fake_vs_real, zeros)) / 2
    fake_wins = (F.binary_cross_entropy_with_logits(real_vs_fake, zeros)
                 + F.binary_cross_entropy_with_logits(fake_vs_real, ones)) / 2
    return real_wins, fake_wins


def relativistic_generator_loss(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The generator's RaGAN loss: ``fake`` should win against ``real`` (D's weights get no gradient
    from the real logits)."""
    _, fake_wins = relativistic_losses(discriminator(real).detach().float(), discriminator(fake).float())
    return fake_wins


def relativistic_discriminator_loss(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's RaGAN loss on ``real`` vs the (detached) ``fake``."""
    real_wins, _ = relativistic_losses(discriminator(real).float(), discriminator(fake.detach()).float())
    return real_wins


class TwoOptimizerSteps:
    """Mixin for a LightningModule with ``automatic_optimization = False`` and optimizers
    ``[generator, discriminator]`` (each with an optional per-step scheduler)."""

    skipped: dict[str, int]

    def gan_step(self, which: int, name: str, compute_loss: Callable[[], torch.Tensor],
                 before_step: Callable[[torch.optim.Optimizer], bool] | None = None) -> torch.Tensor:
        """Compute ``compute_loss()`` with only optimizer ``which``'s parameters trainable (0 generator,
        1 discriminator), then backward and step it. A non-finite loss skips the step, counts it and
        says so in the log. ``before_step(optimizer)``, called between backward and step, may clip the
        gradients and returns False to skip the step (it counts its own skips). Returns the (detached)
        loss."""
        optimizers = self.optimizers()
        optimizer = optimizers[which] if isinstance(optimizers, list) else optimizers
        self.toggle_optimizer(optimizer)  # the other model's parameters get no gradients
        try:
            loss = compute_loss()
            if not torch.isfinite(loss):
                self.skipped[name] = self.skipped.get(name, 0) + 1
                log.warning("step %d: the %s loss is %s; its optimizer step is skipped (%d so far)",
                            self.global_step, name, float(loss.detach()), self.skipped[name])
                return loss.detach()
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            if before_step is not None and not before_step(optimizer):
                optimizer.zero_grad(set_to_none=True)
                return loss.detach()
            if which == 0:
                optimizer.step()
            else:
                _step_uncounted(optimizer)
        finally:
            self.untoggle_optimizer(optimizer)
        return loss.detach()

    def finish_iteration(self, terms: dict[str, torch.Tensor], batch_size: int) -> None:
        """Step the schedulers once per iteration and log the loss terms as ``train/<term>`` and
        ``train/skipped_<name>_steps`` for every loss that has been skipped at least once."""
        self.step_schedulers()
        for name, count in self.skipped.items():
            self.log(f"train/skipped_{name}_steps", float(count))
        for name, value in terms.items():
            self.log(f"train/{name}", value.detach(), prog_bar=name == "loss", batch_size=batch_size)

    def step_schedulers(self) -> None:
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers] if schedulers else []:
            scheduler.step()


def _step_uncounted(optimizer) -> None:
    """Step without advancing ``trainer.global_step``. In manual optimization Lightning counts every
    optimizer step, so a G + D iteration would count twice and ``trainer.max_steps``, checkpoint
    intervals and the step logs would mean half as many iterations as with every other model. The
    discriminator's step therefore skips the progress hooks Lightning's manual loop installs on its
    ``LightningOptimizer`` (precision handling, e.g. the fp16 grad scaler, is unaffected: it lives in
    the strategy's ``optimizer_step``)."""
    hooks = getattr(optimizer, "_on_before_step", None), getattr(optimizer, "_on_after_step", None)
    if None in hooks:
        optimizer.step()
        return
    optimizer._on_before_step = optimizer._on_after_step = lambda: None
    try:
        optimizer.step()
    finally:
        optimizer._on_before_step, optimizer._on_after_step = hooks
