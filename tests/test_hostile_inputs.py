"""What a hostile or careless user can do (issue 36): model files that run no code anywhere, outputs that never
reach outside their folder, inputs read as users have them, every bad value named in one line."""

import ast
from pathlib import Path

import pytest

from degrade_lab.errors import UserInputError
from degrade_lab.utils.checkpoint import load_model, save_model_file
from degrade_lab.utils.trusted_targets import MAX_NESTING, check_config, loading
from test_cli import cli

SRC = Path(__file__).parents[1] / "src" / "degrade_lab"
DNCNN = {"_target_": "degrade_lab.lit.restoration.RestorationModule",
         "net": {"_target_": "degrade_lab.archs.dncnn.DnCNN", "channels": 4, "depth": 3}}
BASIC_CONFIG = {"_target_": "logging.basicConfig", "force": True, "filemode": "w"}


def _record(config: dict) -> dict:
    return {"config": config, "seed": 0, "versions": {}, "global_step": 0}


def _weights() -> dict:
    from degrade_lab.lit.base import instantiate_model

    return instantiate_model(DNCNN).state_dict()


# ---- 1. one loader for every stored config ---------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".ckpt", ".safetensors"])
def test_calibrate_never_builds_a_stored_data_section(tiny_folders, tmp_path, suffix):
    """The stored ``config.data`` used to be instantiated unchecked: ``logging.basicConfig`` truncated a file."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    crafted = tmp_path / f"crafted{suffix}"
    save_model_file(crafted, _weights(), _record({"model": DNCNN, "data": {**BASIC_CONFIG, "filename": str(victim)}}))
    result = cli("calibrate", f"ckpt={crafted}")
    assert result.returncode == 2 and "may be unsafe" in result.stderr and "logging.basicConfig" in result.stderr
    assert "Traceback" not in result.stderr and victim.read_text() == "precious"
    for section in ("trainer", "callbacks", "logger", "anything_later"):  # every section, not only those used today
        with pytest.raises(UserInputError, match="may be unsafe"):
            check_config({"model": DNCNN, section: {"x": BASIC_CONFIG}}, "f.ckpt", "config")


def test_every_section_a_shipped_run_stores_is_trusted(tiny_folders):
    """What degrade_lab itself stores (trainer, callbacks, loggers, a data set's factory) still loads."""
    from test_cli import TINY, last_line

    run = last_line(cli("train", *TINY, f"data.paired={tiny_folders / 'paired'}", "trainer.max_steps=1",
                        "logger=many"))
    module, record = load_model(run / "checkpoints" / "last.ckpt")
    assert {"trainer", "callbacks", "data", "logger"} <= set(record["config"])


def test_a_model_file_that_names_itself_is_refused_not_followed(tiny_folders, tmp_path):
    """A trusted degrader whose ``ckpt:`` is the file itself used to load itself without end (23 GB, then killed)."""
    looping = tmp_path / "loop.ckpt"
    save_model_file(looping, {}, _record({"model": {"_target_": "degrade_lab.degradations.ludvae.LUDVAEDegrader",
                                                    "ckpt": str(looping)}}))
    for command in (["info", str(looping)], ["restore", f"ckpt={looping}", f"input={tiny_folders / 'source'}",
                                                     f"output={tmp_path}/o"]):
        result = cli(*command, timeout=120)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert "not a training module" in result.stderr
    # the loader's own guard, for any reference from one model file to another
    a, b, c = (tmp_path / f"{n}.ckpt" for n in "abc")
    with loading(a), pytest.raises(UserInputError, match="refers back to itself"), loading(a):
        pass
    with loading(a), loading(b), pytest.raises(UserInputError, match="one other model file at most"), loading(c):
        pass
    assert MAX_NESTING == 2


def test_a_stored_key_that_interpolates_is_refused():
    with pytest.raises(UserInputError, match="interpolation"):
        check_config({"model": {**DNCNN, "${oc.env:HOME}": 1}}, "f.ckpt")


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            yield node, name, ast.unparse(func)


def test_nothing_is_instantiated_except_through_the_one_loader():
    """Hydra's ``instantiate`` / ``get_class`` / ``get_object`` / ``call`` / ``_locate`` are called in one module only,
    and every call of the loader states where its config comes from (``origin=``)."""
    loader = SRC / "utils" / "trusted_targets.py"
    hydra_names = {"instantiate", "get_class", "get_object", "get_method", "call", "_locate"}
    foreign, unstated = [], []
    for file in sorted(SRC.rglob("*.py")):
        tree = ast.parse(file.read_text())
        imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and (node.module or "").startswith("hydra") for alias in node.names}
        for node, name, text in _calls(tree):
            from_hydra = text.startswith("hydra.") or name in imported
            if name in hydra_names and from_hydra and file != loader:
                foreign.append(f"{file.relative_to(SRC)}:{node.lineno} {text}")
            if name in ("instantiate", "get_class") and not from_hydra and file != loader:
                if not any(k.arg == "origin" for k in node.keywords) and not text.endswith("instantiate_model"):
                    unstated.append(f"{file.relative_to(SRC)}:{node.lineno} {text}")
    assert not foreign, foreign
    assert not unstated, unstated
    # and the test can fail: a module that calls Hydra directly is found
    tree = ast.parse("import hydra\nhydra.utils.instantiate(cfg)\n")
    assert [text for _, name, text in _calls(tree) if name == "instantiate"] == ["hydra.utils.instantiate"]


def test_info_refuses_a_record_with_a_foreign_section(tmp_path):
    crafted = tmp_path / "c.safetensors"
    save_model_file(crafted, _weights(), _record({"model": DNCNN, "callbacks": {"a": BASIC_CONFIG}}))
    result = cli("info", str(crafted))
    assert result.returncode == 2 and "may be unsafe" in result.stderr
