"""``model.compile``: every model may be trained with torch.compile, without changing its checkpoints."""

from __future__ import annotations

import pytest
import torch

from degrade_lab.errors import UserInputError


def test_compile_keeps_the_checkpoint_layout_and_the_outputs():
    """model.compile=true: nn.Module.compile in place, so parameter names (checkpoints) stay, and the compiled
    network computes what the eager one does; a wrong mode is refused naming the choices."""
    from degrade_lab.lit.base import instantiate_model

    config = {"_target_": "degrade_lab.lit.restoration.RestorationModule", "val_lpips": None,
              "net": {"_target_": "degrade_lab.archs.dncnn.DnCNN", "channels": 8, "depth": 3}}
    torch.manual_seed(0)
    eager = instantiate_model({**config, "compile": False})
    compiled = instantiate_model({**config, "compile": True})
    assert list(compiled.state_dict()) == list(eager.state_dict())
    compiled.load_state_dict(eager.state_dict())
    image = torch.rand(2, 3, 24, 24)
    with torch.no_grad():
        assert torch.allclose(compiled.net(image), eager.net(image), atol=1e-5)
    with pytest.raises(UserInputError, match="reduce-overhead"):
        instantiate_model({**config, "compile": "fastest"})


def test_a_compiled_learned_degrader_synthesizes_what_the_eager_one_does():
    """degrader.compile=true compiles the checkpoint's networks in place: the same pairs (to float rounding) from the
    same generator seed; a wrong mode is refused under its own option name."""
    from degrade_lab.degradations.ludvae import LUDVAEDegrader
    from test_learned_degraders import _clean, _ludvae_module

    eager = LUDVAEDegrader(module=_ludvae_module(), residual_transfer=False)
    compiled = LUDVAEDegrader(module=_ludvae_module(), residual_transfer=False, compile=True)
    assert any(getattr(m, "_compiled_call_impl", None) is not None for m in compiled.module.net.modules())
    assert not any(getattr(m, "_compiled_call_impl", None) is not None for m in eager.module.net.modules())
    expected = eager(_clean(), torch.Generator().manual_seed(3))
    assert torch.allclose(compiled(_clean(), torch.Generator().manual_seed(3)), expected, atol=1e-5)
    with pytest.raises(UserInputError, match="degrader.compile='fastest'"):
        LUDVAEDegrader(module=_ludvae_module(), compile="fastest")
