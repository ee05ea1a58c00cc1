"""Matching clean and degraded files into pairs, with the naming conventions data sets ship with.

A paired folder is either a path ``DIR`` holding ``DIR/clean/NAME.*`` and ``DIR/degraded/NAME.*`` (matched by
stem, sub-folders included), or a mapping that says where each side lies and how the degraded file is named
(BasicSR's ``filename_tmpl``, MMagic's ``filename_tmpl``), e.g. DIV2K's bicubic x4 set::

    data.paired={root: /data/DIV2K, clean: DIV2K_train_HR, degraded: DIV2K_train_LR_bicubic/X4,
                 degraded_name: "{stem}x4"}

and SIDD-Small's scene folders (``GT_SRGB_010`` next to ``NOISY_SRGB_010``)::

    data.paired={root: /data/SIDD_Small_sRGB_Only/Data, clean: ., degraded: ., clean_match: GT_,
                 rename: {GT_: NOISY_}}

Keys: ``root`` (default ``.``), ``clean`` / ``degraded`` (sub-folders of root, or absolute; default ``clean`` /
``degraded``), ``degraded_name`` (a template of the degraded file's stem from the clean one's, ``{stem}``;
default ``{stem}``), ``rename`` (substrings of the clean stem replaced first, in order), ``clean_match`` (only
clean files whose stem contains it: both sides may share one folder).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from degrade_lab.errors import UserInputError
from degrade_lab.utils.io import image_size, list_images, relative_stems

KEYS = {"root", "clean", "degraded", "degraded_name", "rename", "clean_match"}


@dataclass(frozen=True)
class PairFolder:
    """Where the two sides of a paired set lie and how a clean file's degraded partner is named."""

    root: Path
    clean: str = "clean"
    degraded: str = "degraded"
    degraded_name: str = "{stem}"
    rename: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    clean_match: str = ""

    @classmethod
    def of(cls, value) -> PairFolder:
        """A :class:`PairFolder` from a path or a mapping (see the module docstring)."""
        if isinstance(value, PairFolder):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - KEYS
            if unknown:
                raise UserInputError(f"paired folder {dict(value)}: unknown key(s) {', '.join(sorted(unknown))}; "
                                     f"expected some of {', '.join(sorted(KEYS))}.")
            template = str(value.get("degraded_name") or "{stem}")
            if "{stem}" not in template:
                raise UserInputError(f"degraded_name '{template}' must contain '{{stem}}' (e.g. '{{stem}}x4').")
            rename = tuple((str(a), str(b)) for a, b in (value.get("rename") or {}).items())
            return cls(Path(str(value.get("root") or ".")).expanduser(), str(value.get("clean") or "clean"),
                       str(value.get("degraded") or "degraded"), template, rename, str(value.get("clean_match") or ""))
        return cls(Path(str(value)).expanduser())

    @property
    def clean_dir(self) -> Path:
        return self.root / self.clean

    @property
    def degraded_dir(self) -> Path:
        return self.root / self.degraded

    @property
    def plain(self) -> bool:
        """The default layout (clean/ + degraded/, equal stems)."""
        return (self.clean, self.degraded, self.degraded_name, self.rename, self.clean_match) == (
            "clean", "degraded", "{stem}", (), "")

    def degraded_stem(self, name: str) -> str:
        """The degraded partner's relative stem for a clean file's relative stem ``sub/name``."""
        path = PurePosixPath(name)
        stem = path.name
        for old, new in self.rename:
            stem = stem.replace(old, new)
        return (path.parent / self.degraded_name.format(stem=stem)).as_posix()

    def __str__(self) -> str:
        if self.plain:
            return str(self.root)
        return f"{self.root} (clean: {self.clean}, degraded: {self.degraded}, degraded name: {self.degraded_name})"


def _describe(names: list[str]) -> str:
    return ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")


def find_pairs(folder, scale: int = 1) -> list[tuple[str, Path, Path]]:
    """The pairs of a paired folder (a path or a :class:`PairFolder` mapping): ``(name, clean_path,
    degraded_path)`` sorted by the clean file's relative stem. A clean file with no degraded partner, a degraded
    file no clean one names, and pairs whose sizes disagree (clean = degraded x scale) raise
    :class:`UserInputError` naming them."""
    spec = PairFolder.of(folder)
    if not spec.root.is_dir():
        raise UserInputError(f"paired folder '{spec.root}' does not exist.")
    clean = relative_stems(list_images(spec.clean_dir, "clean folder of a paired set"), spec.clean_dir)
    if spec.clean_match:
        clean = {name: path for name, path in clean.items() if spec.clean_match in PurePosixPath(name).name}
        if not clean:
            raise UserInputError(f"paired folder {spec}: no clean file's name contains '{spec.clean_match}'.")
    degraded = relative_stems(list_images(spec.degraded_dir, "degraded folder of a paired set"), spec.degraded_dir)
    hint = ("(pairs are matched by file stem; for other naming give a mapping with degraded_name / rename, see "
            "docs/data.md)") if spec.plain else ""
    shared = spec.clean_dir.resolve() == spec.degraded_dir.resolve()
    return pair_up(clean, degraded, spec.degraded_stem, scale, f"paired folder {spec}", (spec.clean, spec.degraded),
                   spec.degraded_dir, hint, check_unused=not shared)


def pair_up(clean: dict[str, Path], degraded: dict[str, Path], partner, scale: int, where: str,
            sides: tuple[str, str] = ("clean", "degraded"), degraded_dir: Path | None = None, hint: str = "",
            check_unused: bool = True) -> list[tuple[str, Path, Path]]:
    """``(name, clean_path, degraded_path)`` for each clean file (``name -> path``) and the degraded file named
    ``partner(name)``, sorted by name. A clean file without its partner, a degraded file no clean one names (unless
    ``check_unused`` is off: both sides in one folder) and pairs whose sizes disagree (clean = degraded x scale)
    stop with an error naming them (``where`` the set, ``sides`` the two folders' names)."""
    wanted = {name: partner(name) for name in clean}
    missing = sorted(name for name, other in wanted.items() if other not in degraded)
    unused = sorted(set(degraded) - set(wanted.values())) if check_unused else []
    if missing or unused:
        lines = [f"{where}: the clean and degraded files do not match."]
        if missing:
            example = f"'{degraded_dir / wanted[missing[0]]}.*'" if degraded_dir else f"'{wanted[missing[0]]}'"
            lines.append(f"  only in {sides[0]}/ ({len(missing)}): {_describe(missing)}; expected e.g. {example}")
        if unused:
            lines.append(f"  only in {sides[1]}/ ({len(unused)}): {_describe(unused)}")
        if hint:
            lines.append(f"  {hint}")
        raise UserInputError("\n".join(lines))
    pairs = [(name, clean[name], degraded[wanted[name]]) for name in sorted(clean)]
    for name, clean_path, degraded_path in pairs:
        ch, cw = image_size(clean_path)
        dh, dw = image_size(degraded_path)
        # SR pairs may have a clean side cropped to a multiple of the scale
        if not (dh * scale <= ch < (dh + 1) * scale and dw * scale <= cw < (dw + 1) * scale):
            raise UserInputError(
                f"pair '{name}': clean '{clean_path}' is {ch}x{cw} but degraded '{degraded_path}' is "
                f"{dh}x{dw}; with scale {scale} the clean side must be {dh * scale}x{dw * scale}."
            )
    return pairs
