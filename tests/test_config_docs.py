"""docs/configuration.md cannot drift from mrdd/config.py, and no page names a key that
does not exist.

The page is written by hand (it explains, the dataclass comments only name), so these
tests hold it to the code: every key of :class:`mrdd.config.RunConfig` and of the
benchmark's section has a row, every row names a real key, every stated default is the
code's default, and every ``section.key`` that README.md or a docs page writes in code
(an override ``stage1.lr=...`` or a key on its own, ``stage1.lr``) exists. The keys of
the layout before each stage had its own section (``train.lr``) are caught too: only the
"Renamed keys" section of the page may name them.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from mrdd.config import DATASET_OPTIONS, RENAMED_KEYS, BenchmarkRunConfig, default_dataset

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "configuration.md"
#: The sections of the config, and ``train``, the section that is gone (its keys, e.g.
#: ``train.lr``, are found so that a page still naming them fails).
SECTIONS = ("model", "stage1", "stage2", "run", "eval", "dataset", "benchmark", "train")

#: A table row whose first cell is one or more backticked keys: ``| `a.b`, `a.c` | ...``.
ROW = re.compile(r"^\|\s*((?:`[^`]+`(?:,\s*)?)+)\s*\|\s*([^|]*?)\s*\|", re.MULTILINE)
#: A key written in code: a whole code span that is a key, or a ``key=`` override anywhere.
_KEY = r"(?:" + "|".join(SECTIONS) + r")\.[A-Za-z_][\w.]*"
KEY_SPAN = re.compile(rf"`({_KEY})(?:=[^`]*)?`")
OVERRIDE = re.compile(rf"(?<![\w./<{{-])({_KEY})=")
#: Names that look like keys but are files of a run directory (``train.log``).
FILES = ("train.log", "run.lock")
#: The heading of the page's section that lists the old keys with their new ones (the one
#: the refusal of an old key points to, mrdd.config.renamed_key_message).
RENAMED_HEADING = re.compile(r"^(#+)\s.*Renamed keys.*$", re.MULTILINE)


def split_renamed(text: str) -> tuple[str, str]:
    """``text`` without its "Renamed keys" section, and that section (up to the next
    heading of the same or a higher level; ``""`` when there is none)."""
    heading = RENAMED_HEADING.search(text)
    if heading is None:
        return text, ""
    level = len(heading.group(1))
    after = re.compile(rf"^#{{1,{level}}}\s", re.MULTILINE).search(text, heading.end())
    end = after.start() if after else len(text)
    return text[: heading.start()] + text[end:], text[heading.start() : end]


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


def row_defaults(keys: str, default: str) -> dict[str, str]:
    """Key → its default, for one row: a row of several keys states one default for all,
    or one per key in order (``| `stage1.epochs`, `stage2.epochs` | `30`, `15` |``)."""
    names = re.findall(r"`([^`]+)`", keys)
    values = re.findall(r"`([^`]*)`", default)
    if len(names) > 1 and len(values) == len(names):
        return dict(zip(names, values, strict=True))
    return dict.fromkeys(names, default)


def documented_rows() -> dict[str, str]:
    """Key → the default cell of its row, for every table row of the page."""
    rows = {}
    reference, _ = split_renamed(PAGE.read_text())
    for keys, default in ROW.findall(reference):
        rows.update(row_defaults(keys, default))
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
    assert yaml_text(config_defaults()["eval.classifiers"]) == "[svm, linear]"
    assert yaml_text(config_defaults()["stage2.grad_clip"]) == "null"
    assert {"stage1.epochs", "stage2.epochs", "run.seed"} <= known_keys()
    assert not {"stage1.epoch", "train.epochs", "model.alpha", "seed"} & known_keys()
    assert ROW.findall("| `run.x`, `run.y` | `3` | z |") == [("`run.x`, `run.y`", "`3`")]
    assert KEY_SPAN.findall("see `stage1.lr=1e-3`, `model.consistency(views)`") == ["stage1.lr"]
    assert OVERRIDE.findall("scripts/train.py stage1.lr=1 mrdd.train.x=2 dataset.<key>=") == [
        "stage1.lr"
    ]
    assert row_defaults("`stage1.epochs`, `stage2.epochs`", "`30`, `15`") == {
        "stage1.epochs": "30",
        "stage2.epochs": "15",
    }
    assert row_defaults("`run.a`, `run.b`", "`[1, 2]`") == {
        "run.a": "`[1, 2]`",
        "run.b": "`[1, 2]`",
    }
    assert OVERRIDE.findall("python scripts/train.py train.lr=1") == ["train.lr"]  # an old key
    page = "# C\n## `run`\nx\n## Renamed keys\n### Old\n`train.lr`\n## `eval`\ny\n"
    assert split_renamed(page) == (
        "# C\n## `run`\nx\n## `eval`\ny\n",
        "## Renamed keys\n### Old\n`train.lr`\n",
    )


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_keys_named_in_docs_exist(page: Path) -> None:
    text, renamed = split_renamed(page.read_text())
    named = set(KEY_SPAN.findall(text)) | set(OVERRIDE.findall(text))
    # the "Renamed keys" section names the old keys, and nothing else that does not exist
    named |= set(KEY_SPAN.findall(renamed)) - set(RENAMED_KEYS)
    unknown = sorted(named - known_keys() - set(FILES))
    assert not unknown, f"{page.name} names keys that mrdd/config.py does not have: {unknown}"
