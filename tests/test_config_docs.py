"""docs/configuration.md cannot drift from mrdd/config.py, and no page names a key that
does not exist.

The page is written by hand (it explains, the dataclass comments only name), so these
tests hold it to the code: every key of :class:`mrdd.config.RunConfig` and of the
benchmark's section has a row, every row names a real key, every stated default is the
code's default, and every ``section.key`` that README.md or a docs page writes in code
(an override ``train.lr=...`` or a key on its own, ``train.lr``) exists.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from mrdd.config import DATASET_OPTIONS, BenchmarkRunConfig, default_dataset

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "configuration.md"
SECTIONS = ("model", "train", "eval", "dataset", "benchmark")

#: A table row whose first cell is one or more backticked keys: ``| `a.b`, `a.c` | ...``.
ROW = re.compile(r"^\|\s*((?:`[^`]+`(?:,\s*)?)+)\s*\|\s*([^|]*?)\s*\|", re.MULTILINE)
#: A key written in code: a whole code span that is a key, or a ``key=`` override anywhere.
_KEY = r"(?:" + "|".join(SECTIONS) + r")\.[A-Za-z_][\w.]*"
KEY_SPAN = re.compile(rf"`({_KEY})(?:=[^`]*)?`")
OVERRIDE = re.compile(rf"(?<![\w./<{{-])({_KEY})=")
#: Names that look like keys but are files of a run directory (``train.log``).
FILES = ("train.log",)


def config_defaults(cls: type = BenchmarkRunConfig, prefix: str = "") -> dict[str, Any]:
    """Every leaf key of a config dataclass (``model.backbone.norm``) with its default;
    the ``dataset`` mapping is left out (its keys are :func:`dataset_keys`)."""
    instance, hints, keys = cls(), typing.get_type_hints(cls), {}
    for f in dataclasses.fields(cls):
        if f.name == "dataset" and not prefix:
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            keys.update(config_defaults(hints[f.name], f"{prefix}{f.name}."))
        else:
            keys[prefix + f.name] = getattr(instance, f.name)
    return keys


def section_keys(cls: type = BenchmarkRunConfig, prefix: str = "") -> set[str]:
    """The keys that are themselves sections (``model``, ``model.backbone``, ...)."""
    hints, keys = typing.get_type_hints(cls), {"dataset"} if not prefix else set()
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            keys |= {prefix + f.name} | section_keys(hints[f.name], f"{prefix}{f.name}.")
    return keys


def dataset_keys() -> set[str]:
    """``dataset.*`` keys: the options every dataset takes and those of configs/dataset/."""
    names = set(DATASET_OPTIONS) | set(default_dataset())
    for file in (ROOT / "configs" / "dataset").glob("*.yaml"):
        names |= set(yaml.safe_load(file.read_text()))
    return {f"dataset.{name}" for name in names}


def known_keys() -> set[str]:
    return set(config_defaults()) | section_keys() | dataset_keys()


def documented_rows() -> dict[str, str]:
    """Key → the default cell of its row, for every table row of the page."""
    rows = {}
    for keys, default in ROW.findall(PAGE.read_text()):
        for key in re.findall(r"`([^`]+)`", keys):
            rows[key] = default
    return rows


def yaml_text(value: Any) -> str:
    """A default as the page writes it: YAML's null/true/false, lists and mappings inline."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(yaml_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def test_every_config_key_has_a_row() -> None:
    rows = documented_rows()
    missing = sorted(set(config_defaults()) - set(rows))
    assert not missing, f"docs/configuration.md lacks a row for {missing}"
    missing_options = sorted(f"dataset.{k}" for k in DATASET_OPTIONS if f"dataset.{k}" not in rows)
    assert not missing_options, f"docs/configuration.md lacks a row for {missing_options}"


def test_every_row_names_an_existing_key() -> None:
    unknown = sorted(set(documented_rows()) - known_keys())
    assert not unknown, f"docs/configuration.md documents keys that do not exist: {unknown}"


def test_every_stated_default_is_the_code_default() -> None:
    rows, defaults = documented_rows(), config_defaults()
    wrong = {
        key: (rows[key], yaml_text(value))
        for key, value in defaults.items()
        if rows.get(key, "").strip("`") != yaml_text(value)
    }
    assert not wrong, f"page default vs code default: {wrong}"


def test_the_checks_would_catch_a_wrong_default_and_an_invented_key() -> None:
    """The helpers above see what they must: a real default, and not an invented key."""
    assert yaml_text(config_defaults()["model.backbone.channel_mults"]) == "[1, 2, 4]"
    assert yaml_text(config_defaults()["train.grad_clip"]) == "null"
    assert "train.epochs" in known_keys() and "train.epoch" not in known_keys()
    assert ROW.findall("| `train.x`, `train.y` | `3` | z |") == [("`train.x`, `train.y`", "`3`")]
    assert KEY_SPAN.findall("see `train.lr=1e-3`, `model.consistency(views)`") == ["train.lr"]
    assert OVERRIDE.findall("scripts/train.py train.lr=1 mrdd.train.x=2 dataset.<key>=") == [
        "train.lr"
    ]


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_keys_named_in_docs_exist(page: Path) -> None:
    text = page.read_text()
    named = set(KEY_SPAN.findall(text)) | set(OVERRIDE.findall(text))
    unknown = sorted(named - known_keys() - set(FILES))
    assert not unknown, f"{page.name} names keys that mrdd/config.py does not have: {unknown}"
