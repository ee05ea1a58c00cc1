"""degrade-lab import: the authors' weight files, built here with their exact key names and shapes (from KAIR's,
ESRGAN's and BasicSR's network definitions), load with nothing missing or left over, and the converted network
computes what a forward pass written from the authors' definition computes on the same weights."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import degrade_lab
from degrade_lab.errors import UserInputError
from degrade_lab.tasks.import_weights import import_weights


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def randn(generator, *shape) -> torch.Tensor:
    return torch.randn(*shape, generator=generator) * 0.1


# ---- KAIR DnCNN / FFDNet: one `model` Sequential --------------------------------------------------------------
def kair_sequential(in_channels: int, out_channels: int, channels: int, depth: int, batch_norm: bool,
                    seed: int = 0) -> dict[str, torch.Tensor]:
    """KAIR's B.sequential(m_head, *m_body, m_tail) keys: conv + ReLU (head), conv [+ BN] + ReLU (body), conv."""
    g = torch.Generator().manual_seed(seed)
    state, index = {}, 0
    sizes = [in_channels] + [channels] * (depth - 1) + [out_channels]
    for layer in range(depth):
        state[f"model.{index}.weight"] = randn(g, sizes[layer + 1], sizes[layer], 3, 3)
        state[f"model.{index}.bias"] = randn(g, sizes[layer + 1])
        index += 1
        if 0 < layer < depth - 1 and batch_norm:
            state[f"model.{index}.weight"] = 1 + randn(g, channels)
            state[f"model.{index}.bias"] = randn(g, channels)
            state[f"model.{index}.running_mean"] = randn(g, channels)
            state[f"model.{index}.running_var"] = 1 + randn(g, channels).abs()
            state[f"model.{index}.num_batches_tracked"] = torch.tensor(7)
            index += 1
        if layer < depth - 1:
            index += 1  # the ReLU
    return state


def kair_body(state: dict, x: torch.Tensor) -> torch.Tensor:
    """The Sequential run layer by layer from the keys (conv, optional BN in eval mode, ReLU but after the last)."""
    indices = sorted({int(k.split(".")[1]) for k in state})
    convs = [i for i in indices if state[f"model.{i}.weight"].dim() == 4]
    for i in indices:
        weight = state[f"model.{i}.weight"]
        if weight.dim() == 4:
            x = F.conv2d(x, weight, state[f"model.{i}.bias"], padding=1)
        else:
            x = F.batch_norm(x, state[f"model.{i}.running_mean"], state[f"model.{i}.running_var"], weight,
                             state[f"model.{i}.bias"], training=False, eps=1e-4)
        if i != convs[-1] and (weight.dim() == 1 or f"model.{i + 1}.running_mean" not in state):
            x = F.relu(x)
    return x


@pytest.mark.parametrize("batch_norm", [False, True])
def test_kair_dncnn_computes_the_authors_forward(tmp_path, batch_norm):
    state = kair_sequential(3, 3, 8, 5, batch_norm)
    torch.save(state, tmp_path / "dncnn.pth")
    import_weights("dncnn", tmp_path / "dncnn.pth", tmp_path / "dncnn.ckpt")
    restorer = degrade_lab.load_restorer(tmp_path / "dncnn.ckpt", device="cpu")
    x = torch.rand(1, 3, 17, 19)
    with torch.no_grad():
        ours = restorer.module.net(x)
    torch.testing.assert_close(ours, x - kair_body(state, x), rtol=1e-5, atol=1e-5)  # DnCNN: input - noise


def test_kair_releases_load_at_their_sizes(tmp_path):
    """dncnn_color_blind.pth (20 layers, 64 channels, BN merged), dncnn_25.pth (grey, 17 layers: run per
    channel), ffdnet_color.pth (12 x 96), drunet_color.pth (64-512 channels, 4 blocks)."""
    for kind, state, params in (
            ("dncnn", kair_sequential(3, 3, 64, 20, False), 9 * 3 * 64 + 64 + 18 * (9 * 64 * 64 + 64) + 9 * 64 * 3 + 3),
            ("dncnn", kair_sequential(1, 1, 64, 17, False), 9 * 64 + 64 + 15 * (9 * 64 * 64 + 64) + 9 * 64 + 1),
            ("ffdnet", kair_sequential(13, 12, 96, 12, False), 852_108),
            ("drunet", kair_drunet(4, 3, (64, 128, 256, 512), 4), 32_640_960)):
        torch.save(state, tmp_path / "w.pth")
        import_weights(kind, tmp_path / "w.pth", tmp_path / f"{kind}.ckpt")
        restorer = degrade_lab.load_restorer(tmp_path / f"{kind}.ckpt", device="cpu")
        assert count(restorer.module.net) == params == sum(v.numel() for k, v in state.items()
                                                           if "running" not in k and "num_batches" not in k)


def test_a_grey_dncnn_runs_on_each_colour_channel(tmp_path):
    state = kair_sequential(1, 1, 8, 4, False)
    torch.save(state, tmp_path / "dncnn_25.pth")
    import_weights("dncnn", tmp_path / "dncnn_25.pth", tmp_path / "grey.ckpt")
    restorer = degrade_lab.load_restorer(tmp_path / "grey.ckpt", device="cpu")
    x = torch.rand(2, 3, 12, 12)
    with torch.no_grad():
        ours = restorer.module.net(x)
    for c in range(3):
        channel = x[:, c : c + 1]
        torch.testing.assert_close(ours[:, c : c + 1], channel - kair_body(state, channel), rtol=1e-5, atol=1e-5)


def test_kair_ffdnet_computes_the_authors_forward(tmp_path):
    state = kair_sequential(13, 12, 8, 4, False)
    torch.save(state, tmp_path / "ffdnet_color.pth")
    import_weights("ffdnet", tmp_path / "ffdnet_color.pth", tmp_path / "ffdnet.ckpt")
    restorer = degrade_lab.load_restorer(tmp_path / "ffdnet.ckpt", device="cpu")
    assert restorer.non_blind
    x = torch.rand(1, 3, 15, 18)
    padded = F.pad(x, (0, 0, 0, 1), mode="replicate")  # KAIR: replication to even sizes
    folded = F.pixel_unshuffle(padded, 2)
    reference = F.pixel_shuffle(kair_body(state, torch.cat([folded, torch.full_like(folded[:, :1], 30 / 255)], 1)), 2)
    torch.testing.assert_close(restorer.restore(x, noise_level=30), reference[..., :15, :18].clamp(0, 1),
                               rtol=1e-5, atol=1e-5)


# ---- KAIR DRUNet (network_unet.UNetRes) ------------------------------------------------------------------------
def kair_drunet(in_channels: int, out_channels: int, channels, blocks: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    c1, c2, c3, c4 = channels
    state = {"m_head.weight": randn(g, c1, in_channels, 3, 3)}

    def res(prefix, c):
        state[f"{prefix}.res.0.weight"] = randn(g, c, c, 3, 3)
        state[f"{prefix}.res.2.weight"] = randn(g, c, c, 3, 3)

    for level, (a, b) in enumerate(((c1, c2), (c2, c3), (c3, c4)), start=1):
        for i in range(blocks):
            res(f"m_down{level}.{i}", a)
        state[f"m_down{level}.{blocks}.weight"] = randn(g, b, a, 2, 2)
    for i in range(blocks):
        res(f"m_body.{i}", c4)
    for level, (a, b) in ((3, (c4, c3)), (2, (c3, c2)), (1, (c2, c1))):
        state[f"m_up{level}.0.weight"] = randn(g, a, b, 2, 2)  # ConvTranspose2d(in a, out b)
        for i in range(1, blocks + 1):
            res(f"m_up{level}.{i}", b)
    state["m_tail.weight"] = randn(g, out_channels, c1, 3, 3)
    return state


def kair_drunet_forward(state: dict, x: torch.Tensor, blocks: int) -> torch.Tensor:
    def res(prefix, h):
        return h + F.conv2d(F.relu(F.conv2d(h, state[f"{prefix}.res.0.weight"], padding=1)),
                            state[f"{prefix}.res.2.weight"], padding=1)

    def down(level, h):
        for i in range(blocks):
            h = res(f"m_down{level}.{i}", h)
        return F.conv2d(h, state[f"m_down{level}.{blocks}.weight"], stride=2)

    def up(level, h):
        h = F.conv_transpose2d(h, state[f"m_up{level}.0.weight"], stride=2)
        for i in range(1, blocks + 1):
            h = res(f"m_up{level}.{i}", h)
        return h

    x1 = F.conv2d(x, state["m_head.weight"], padding=1)
    x2 = down(1, x1)
    x3 = down(2, x2)
    x4 = down(3, x3)
    h = x4
    for i in range(blocks):
        h = res(f"m_body.{i}", h)
    h = up(3, h + x4)
    h = up(2, h + x3)
    h = up(1, h + x2)
    return F.conv2d(h + x1, state["m_tail.weight"], padding=1)


def test_kair_drunet_computes_the_authors_forward(tmp_path):
    state = kair_drunet(4, 3, (4, 8, 8, 16), 2)
    torch.save(state, tmp_path / "drunet_color.pth")
    import_weights("drunet", tmp_path / "drunet_color.pth", tmp_path / "drunet.ckpt")
    restorer = degrade_lab.load_restorer(tmp_path / "drunet.ckpt", device="cpu")
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        ours = restorer.module.net(x, 15.0)
    reference = kair_drunet_forward(state, torch.cat([x, torch.full_like(x[:, :1], 15 / 255)], 1), 2)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


# ---- ESRGAN / Real-ESRGAN RRDBNet -----------------------------------------------------------------------------
def basicsr_rrdbnet(in_channels: int, features: int, blocks: int, growth: int, seed: int = 0) -> dict:
    """BasicSR's RRDBNet key names and shapes (archs/rrdbnet_arch.py)."""
    g = torch.Generator().manual_seed(seed)
    state = {"conv_first.weight": randn(g, features, in_channels, 3, 3), "conv_first.bias": randn(g, features)}
    for b in range(blocks):
        for d in range(1, 4):
            for k in range(1, 6):
                out = growth if k < 5 else features
                state[f"body.{b}.rdb{d}.conv{k}.weight"] = randn(g, out, features + (k - 1) * growth, 3, 3)
                state[f"body.{b}.rdb{d}.conv{k}.bias"] = randn(g, out)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        state[f"{name}.weight"], state[f"{name}.bias"] = randn(g, features, features, 3, 3), randn(g, features)
    state["conv_last.weight"], state["conv_last.bias"] = randn(g, 3, features, 3, 3), randn(g, 3)
    return state


def esrgan_forward(state: dict, x: torch.Tensor, blocks: int, unshuffle: int) -> torch.Tensor:
    """ESRGAN's forward (Wang et al. 2018, Fig. 4; BasicSR RRDBNet.forward) from BasicSR-named weights."""
    def conv(name, h):
        return F.conv2d(h, state[f"{name}.weight"], state[f"{name}.bias"], padding=1)

    lrelu = lambda h: F.leaky_relu(h, 0.2)  # noqa: E731
    h = F.pixel_unshuffle(x, unshuffle) if unshuffle > 1 else x
    feat = conv("conv_first", h)
    trunk = feat
    for b in range(blocks):
        rrdb_in = trunk
        for d in range(1, 4):
            dense = [trunk]
            for k in range(1, 5):
                dense.append(lrelu(conv(f"body.{b}.rdb{d}.conv{k}", torch.cat(dense, 1))))
            trunk = trunk + 0.2 * conv(f"body.{b}.rdb{d}.conv5", torch.cat(dense, 1))
        trunk = rrdb_in + 0.2 * trunk
    feat = feat + conv("conv_body", trunk)
    feat = lrelu(conv("conv_up1", F.interpolate(feat, scale_factor=2, mode="nearest")))
    feat = lrelu(conv("conv_up2", F.interpolate(feat, scale_factor=2, mode="nearest")))
    return conv("conv_last", lrelu(conv("conv_hr", feat)))


def renamed(state: dict, names: dict, block: str) -> dict:
    """BasicSR-named weights under another layout's names: ``names`` for the single convs, ``block`` (a format
    of block, dense block 1-3, conv name, weight/bias) for the dense blocks."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "body":
            out[block.format(parts[1], parts[2][3], parts[3], parts[4])] = value
        else:
            out[f"{names[parts[0]]}.{parts[1]}"] = value
    return out


def old_layout(state: dict, blocks: int) -> dict:
    """The original ESRGAN release's names (one `model` Sequential)."""
    return renamed(state, {"conv_first": "model.0", "conv_body": f"model.1.sub.{blocks}", "conv_up1": "model.3",
                           "conv_up2": "model.6", "conv_hr": "model.8", "conv_last": "model.10"},
                   "model.1.sub.{}.RDB{}.{}.0.{}")


def xinntao_layout(state: dict) -> dict:
    """xinntao/ESRGAN's later names."""
    return renamed(state, {"conv_first": "conv_first", "conv_body": "trunk_conv", "conv_up1": "upconv1",
                           "conv_up2": "upconv2", "conv_hr": "HRconv", "conv_last": "conv_last"},
                   "RRDB_trunk.{}.RDB{}.{}.{}")


@pytest.mark.parametrize("layout", ["basicsr", "realesrgan_params_ema", "original", "xinntao"])
def test_every_esrgan_layout_computes_the_authors_forward(tmp_path, layout):
    state = basicsr_rrdbnet(3, 8, 2, 4)
    saved = {"basicsr": state, "realesrgan_params_ema": {"params_ema": state, "params": {}},
             "original": old_layout(state, 2), "xinntao": xinntao_layout(state)}[layout]
    torch.save(saved, tmp_path / "esrgan.pth")
    import_weights("esrgan", tmp_path / "esrgan.pth", tmp_path / "esrgan.ckpt")
    restorer = degrade_lab.load_restorer(tmp_path / "esrgan.ckpt", device="cpu")
    assert restorer.scale == 4
    x = torch.rand(1, 3, 6, 7)
    with torch.no_grad():
        torch.testing.assert_close(restorer.module.net(x), esrgan_forward(state, x, 2, 1), rtol=1e-5, atol=1e-5)


def test_real_esrgan_x2plus_and_the_x4_release_sizes(tmp_path):
    state = basicsr_rrdbnet(12, 8, 1, 4)  # RealESRGAN_x2plus: pixel unshuffle x2, 12 input channels
    torch.save({"params_ema": state}, tmp_path / "x2.pth")
    import_weights("esrgan", tmp_path / "x2.pth", tmp_path / "x2.safetensors")
    restorer = degrade_lab.load_restorer(tmp_path / "x2.safetensors", device="cpu")
    assert restorer.scale == 2
    x = torch.rand(1, 3, 8, 10)
    with torch.no_grad():
        torch.testing.assert_close(restorer.module.net(x), esrgan_forward(state, x, 1, 2), rtol=1e-5, atol=1e-5)
    torch.save(old_layout(basicsr_rrdbnet(3, 64, 23, 32), 23), tmp_path / "RRDB_ESRGAN_x4.pth")
    import_weights("esrgan", tmp_path / "RRDB_ESRGAN_x4.pth", tmp_path / "x4.ckpt")
    assert count(degrade_lab.load_restorer(tmp_path / "x4.ckpt").module.net) == 16_697_987  # ESRGAN x4


def test_wrong_files_are_named(tmp_path):
    torch.save(basicsr_rrdbnet(3, 8, 1, 4), tmp_path / "esrgan.pth")
    with pytest.raises(UserInputError, match="is not KAIR's DnCNN.*expected keys model.N.weight"):
        import_weights("dncnn", tmp_path / "esrgan.pth", tmp_path / "x.ckpt")
    broken = kair_sequential(3, 3, 8, 4, False)
    broken["model.2.weight"] = torch.zeros(8, 5, 3, 3)  # a layer of the wrong width
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(UserInputError, match="wrong shape: body.2.weight"):
        import_weights("dncnn", tmp_path / "broken.pth", tmp_path / "x.ckpt")
    torch.save({"weights": [1, 2]}, tmp_path / "empty.pth")
    with pytest.raises(UserInputError, match="holds no weights"):
        import_weights("esrgan", tmp_path / "empty.pth", tmp_path / "x.ckpt")
    with pytest.raises(UserInputError, match="needs the preset"):
        import_weights("deflow", tmp_path / "esrgan.pth", tmp_path / "x.ckpt")
    with pytest.raises(UserInputError, match="unknown kind"):
        import_weights("swinir", tmp_path / "esrgan.pth", tmp_path / "x.ckpt")


def test_the_import_command_end_to_end(tmp_path, capsys):
    torch.save(kair_sequential(3, 3, 8, 4, False), tmp_path / "dncnn_color_blind.pth")
    result = subprocess.run([sys.executable, "-m", "degrade_lab.cli", "import", "dncnn",
                             str(tmp_path / "dncnn_color_blind.pth"), f"output={tmp_path / 'm.ckpt'}"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    card = subprocess.run([sys.executable, "-m", "degrade_lab.cli", "info", str(tmp_path / "m.ckpt")],
                          capture_output=True, text=True)
    assert card.returncode == 0 and "dncnn_color_blind.pth" in card.stdout and "restorer" in card.stdout
    from degrade_lab.tasks import import_weights as command

    assert command.main(["dncnn", str(tmp_path / "missing.pth"), f"output={tmp_path / 'n.ckpt'}"]) == 2
    error = capsys.readouterr().err
    assert "degrade-lab import: error:" in error and "missing.pth" in error and "does not exist" in error
    assert command.main(["dncnn", str(tmp_path / "dncnn_color_blind.pth")]) == 2
    assert "needs output=" in capsys.readouterr().err


def test_deflow_imports_with_its_preset(tmp_path):
    """The authors' NTIRE-RWSR network (key names and shapes recorded from their code) becomes a DeFlow degrader."""
    import gzip
    import json
    from pathlib import Path

    shapes = json.loads(gzip.decompress((Path(__file__).parent / "data" / "deflow_authors_state_dict_shapes.json.gz")
                                        .read_bytes()))["NTIRE-RWSR"]
    g = torch.Generator().manual_seed(0)
    state = {k: randn(g, *s) if s else randn(g) for k, s in shapes.items()}
    torch.save(state, tmp_path / "deflow.pth")
    with pytest.raises(UserInputError, match="trains .*, not a deflow model"):
        import_weights("deflow", tmp_path / "deflow.pth", tmp_path / "x.ckpt", "dncnn_cpu")
    import_weights("deflow", tmp_path / "deflow.pth", tmp_path / "deflow.ckpt", "deflow_ntire20")
    degrader = degrade_lab.load_degrader(tmp_path / "deflow.ckpt", device="cpu")
    torch.testing.assert_close(degrader.module.net.encoder.conv_body.bias, state["RRDB.trunk_conv.bias"])
    assert degrader(torch.rand(1, 3, 32, 32), torch.Generator().manual_seed(0)).shape == (1, 3, 8, 8)


# ---- LUD-VAE (zhengdihan/LUD-VAE, models/network_ludvae.py) ----------------------------------------------------
def authors_ludvae(channels: int, seed: int = 0) -> dict:
    """The authors' LUDVAE(in_channel=3, latent_channel=C, filters_num=C) keys and shapes (three levels)."""
    g = torch.Generator().manual_seed(seed)
    state = {}

    def conv(name, out, inp, k):
        state[f"{name}.weight"], state[f"{name}.bias"] = randn(g, out, inp, k, k), randn(g, out)

    conv("inconv", channels, 3, 1)
    conv("inconv_n", channels, 3, 1)
    for block in ("enc_1", "enc_2", "enc_3", "enc_n_1", "enc_n_2", "enc_n_3", "dec_3", "dec_2", "dec_1"):
        for i in (0, 2, 4, 6):
            conv(f"{block}.net.{i}", channels, channels, 3)
    for head in ("Gauconv_q_3", "Gauconv_q_2", "Gauconv_q_1", "Gauconv_p_2", "Gauconv_p_1"):
        conv(f"{head}.m", channels, channels, 1)
        conv(f"{head}.v", channels, channels, 1)
    for proj in ("proj_3", "proj_2", "proj_c_2", "proj_n_2", "proj_1", "proj_c_1", "proj_n_1"):
        conv(f"{proj}.proj", channels, 2 * channels, 1)
    conv("outconv", 3, channels, 1)
    return state


def authors_translate(state: dict, hx: torch.Tensor, eps: list, temperature: float) -> torch.Tensor:
    """LUDVAE.translate(x, hx, label=0, temperature) written out from their definition: the content encoder, then
    decode_uncond with label (1 - 0) * temperature and the given standard-normal draws (level 1 first)."""
    def conv(name, x):
        weight = state[f"{name}.weight"]
        return F.conv2d(x, weight, state[f"{name}.bias"], padding=weight.shape[-1] // 2)

    def block(name, x):
        for i in (0, 2, 4, 6):
            x = conv(f"{name}.net.{i}", x)
            x = F.relu(x) if i < 6 else x
        return x

    def proj(name, a, b):
        return conv(f"{name}.proj", torch.cat([a, b], 1))

    act_1 = block("enc_1", conv("inconv", hx))
    act_2 = block("enc_2", act_1)
    act_3 = block("enc_3", act_2)
    label = temperature
    dec = proj("proj_3", act_3, eps[2] * label)  # top: N(0, I), mu + exp(0) * eps
    for level, act in ((2, act_2), (1, act_1)):
        dec = proj(f"proj_c_{level}", block(f"dec_{level + 1}", dec), act)
        mean, logsigma = conv(f"Gauconv_p_{level}.m", dec), conv(f"Gauconv_p_{level}.v", dec)
        dec = proj(f"proj_{level}", dec, (mean + torch.exp(logsigma) * eps[level - 1]) * label)
    return conv("outconv", block("dec_1", dec))


def test_ludvae_computes_the_authors_translation(tmp_path):
    state = authors_ludvae(8)
    torch.save(state, tmp_path / "ludvae.pth")
    with pytest.raises(UserInputError, match="needs the preset"):
        import_weights("ludvae", tmp_path / "ludvae.pth", tmp_path / "x.ckpt")
    import_weights("ludvae", tmp_path / "ludvae.pth", tmp_path / "ludvae.ckpt", "ludvae_sidd")
    degrader = degrade_lab.load_degrader(tmp_path / "ludvae.ckpt", device="cpu")
    net = degrader.module.net
    hx = torch.rand(1, 3, 12, 14)
    g = torch.Generator().manual_seed(1)
    eps = [torch.randn(1, 8, 12, 14, generator=g) for _ in range(3)]
    torch.testing.assert_close(net.sample(hx, eps=eps, temperature=1.7), authors_translate(state, hx, eps, 1.7),
                               rtol=1e-5, atol=1e-5)


def test_the_released_ludvae_size_loads_one_to_one(tmp_path):
    torch.save(authors_ludvae(128), tmp_path / "ludvae.pth")
    import_weights("ludvae", tmp_path / "ludvae.pth", tmp_path / "ludvae.ckpt", "ludvae_aim19")
    degrader = degrade_lab.load_degrader(tmp_path / "ludvae.ckpt", device="cpu")
    assert count(degrader.module.net) == 5_709_827  # the released networks (seed-reference sec. 1.2)
