"""The authors' DeFlow weights load into ours: every key of their NTIRE-RWSR and AIM-RWSR networks (names and
shapes recorded from their code, ``tests/data/deflow_authors_state_dict_shapes.json.gz``) maps to one of ours,
none is left over, and a wrong file stops with the keys named. That the converted network computes what theirs
does is measured by ``benchmarks/bench_deflow_reference.py``, which runs both codes."""

import gzip
import json
from pathlib import Path

import pytest
import torch

from degrade_lab.archs.deflow import DeFlow
from degrade_lab.errors import UserInputError
from degrade_lab.importers.deflow import convert_state_dict

SHAPES = json.loads(gzip.decompress((Path(__file__).parent / "data" / "deflow_authors_state_dict_shapes.json.gz")
                                    .read_bytes()))


def _authors_state(name: str) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {key: torch.randn(shape, generator=generator) if shape else torch.randn((), generator=generator)
            for key, shape in SHAPES[name].items()}


@pytest.mark.parametrize(("name", "kwargs"), [("NTIRE-RWSR", {"hidden": 64, "condition_scale": 4}),
                                              ("AIM-RWSR", {"hidden": 128, "condition_scale": 8})])
def test_every_authors_key_loads_one_to_one(name, kwargs):
    torch.manual_seed(0)
    net = DeFlow(**kwargs)
    authors = _authors_state(name)
    converted = convert_state_dict(authors, net)
    net.load_state_dict(converted)  # strict: nothing missing, nothing unexpected
    # spot checks of the layout, against the authors' names: the first conditional flow step of level 2 (layer 23 of their
    # flat list: level 1 has a squeeze, 18 steps and a split, level 2 a squeeze first), its coupling's last conv
    torch.testing.assert_close(net.flow_levels[1][2].layers[2].net[4].conv.weight,
                               authors["flowUpsamplerNet.layers.23.affine.fAffine.4.weight"])
    torch.testing.assert_close(net.flow_levels[1][2].layers[3].net[4].log_scale.flatten(),
                               authors["flowUpsamplerNet.layers.23.affine.fFeatures.4.logs"].flatten())
    torch.testing.assert_close(net.splits[0].prior.conv.bias, authors["flowUpsamplerNet.layers.19.conv.bias"])
    torch.testing.assert_close(net.shifts[0].matrix_weight, authors["flowUpsamplerNet.layers.19.cov_shift"])
    torch.testing.assert_close(net.shifts[-1].mean, authors["mean_shift"])
    torch.testing.assert_close(net.encoder.body[22].body[2].convs[4].weight, authors["RRDB.RRDB_trunk.22.RDB3.conv5.weight"])
    torch.testing.assert_close(net.encoder.conv_body.bias, authors["RRDB.trunk_conv.bias"])
    # an invertible 1x1 convolution rebuilt from their L, U, P, sign and log|s| (Glow eq. 10)
    conv = net.flow_levels[2][5].layers[1]
    key = "flowUpsamplerNet.layers.45.invconv."
    lower = torch.tril(authors[key + "l"], -1) + torch.eye(96)
    upper = torch.triu(authors[key + "u"], 1) + torch.diag(authors[key + "sign_s"] * torch.exp(authors[key + "log_s"]))
    torch.testing.assert_close(conv.weight(), authors[key + "p"] @ lower @ upper)
    assert all(bool(m.initialized) for m in net.modules() if hasattr(m, "initialized"))


def test_a_wrong_file_names_the_keys():
    net = DeFlow(hidden=64, condition_scale=4)
    authors = _authors_state("NTIRE-RWSR")
    authors["flowUpsamplerNet.layers.3.actnorm.logs"] = torch.zeros(1, 13, 1, 1)
    del authors["RRDB.upconv2.bias"]
    authors["something.else"] = torch.zeros(1)
    with pytest.raises(UserInputError) as error:
        convert_state_dict(authors, net)
    message = str(error.value)
    assert "unexpected: something.else" in message
    assert "flowUpsamplerNet.layers.3.actnorm.logs (1, 13, 1, 1)" in message
    assert "missing: encoder.upsamplers.1.bias" in message
    with pytest.raises(UserInputError):  # the AIM file into an NTIRE network: its hidden layers are twice as wide
        convert_state_dict(_authors_state("AIM-RWSR"), net)
