"""The repository explains itself: nothing in it points to a file outside it, README.md
links every page of docs/, and docs/method.md cites code that exists.

A user who clones the repository has only what is in it, so a reference to a design note
kept beside a developer's checkout, or a relative path that climbs out of the repository,
is a dead end for them. These tests read the files as text; they import nothing of mrdd.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Spelled in two parts so that this file does not name what it forbids.
DESIGN_NOTE = "DESIGN" + ".md"
#: Absolute paths of a developer's machine, never of a user's.
MACHINE_PATHS = ("/" + "work/", "/" + "home/", "/" + "Users/")
#: A relative path that may climb: one or more ``../`` and what follows.
CLIMBING = re.compile(r"(?:\.\./)+[\w.\-/]*")
#: Directories that are never part of the repository's text (environments, run outputs).
UNTRACKED_DIRS = {".git", ".venv", "outputs", "multirun", "data", "__pycache__", ".ruff_cache"}

#: A markdown link: ``[text](target#anchor)``, as (target, anchor); either may be empty.
LINK = re.compile(r"\]\(([^)\s#]*)(?:#([^)\s]*))?\)")


def repository_files() -> list[Path]:
    """The tracked files (``git ls-files``), or every file outside :data:`UNTRACKED_DIRS`
    where the tree is not a git checkout (an unpacked archive)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
        ).stdout
        return [ROOT / name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for folder, dirs, names in os.walk(ROOT):
            dirs[:] = sorted(set(dirs) - UNTRACKED_DIRS)
            files += [Path(folder) / name for name in names]
        return files


def text_files() -> list[tuple[Path, str]]:
    """``(path, text)`` of every repository file that is UTF-8 text (no NUL byte)."""
    texts = []
    for path in repository_files():
        try:
            data = path.read_bytes()
        except OSError:  # a tracked file deleted in the working tree
            continue
        if b"\0" in data:
            continue
        try:
            texts.append((path, data.decode("utf-8")))
        except UnicodeDecodeError:
            continue
    return texts


def outside_references(path: Path, text: str) -> list[str]:
    """What in ``text`` (the content of ``path``) refers to something outside the repository."""
    found = [DESIGN_NOTE] if DESIGN_NOTE in text else []
    found += [p for p in MACHINE_PATHS if p in text]
    for match in CLIMBING.findall(text):
        target = (path.parent / match).resolve()
        if not target.is_relative_to(ROOT):
            found.append(match)
    return found


def test_no_file_refers_to_a_file_outside_the_repository() -> None:
    files = text_files()
    assert any(path.name == "README.md" for path, _ in files), "the file listing is empty"
    offenders = {
        str(path.relative_to(ROOT)): refs
        for path, text in files
        if (refs := outside_references(path, text))
    }
    assert not offenders, f"references outside the repository: {offenders}"


def test_the_outside_check_sees_what_it_must() -> None:
    """A climbing path is judged from the file's own folder, and the note is found."""
    readme, nested, up = ROOT / "README.md", ROOT / "docs" / "x.md", "." + "./"
    assert outside_references(readme, f"[d]({up}shared/x)") == [f"{up}shared/x"]
    assert outside_references(nested, f"[r]({up}README.md) [c]({up}configs)") == []
    assert outside_references(nested, f"[o]({up}{up}other/x.md)") == [f"{up}{up}other/x.md"]
    assert outside_references(readme, f"see {DESIGN_NOTE} section 3") == [DESIGN_NOTE]
    assert outside_references(readme, "cd /" + "work/main") == ["/" + "work/"]


def docs_pages() -> list[Path]:
    """The pages of docs/: its Markdown files that open with a title (``# ...``). The tables
    that ``scripts/ablate.py`` and ``scripts/missing_views.py`` write beside them have none;
    they are the data that ablations.md and missing_views.md explain."""
    return [p for p in sorted((ROOT / "docs").glob("*.md")) if p.read_text().startswith("# ")]


def test_readme_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text()
    linked = {(ROOT / target).resolve() for target, _ in LINK.findall(readme) if target}
    unlinked = [page.name for page in docs_pages() if page.resolve() not in linked]
    assert not unlinked, f"README.md does not link these docs/ pages: {unlinked}"


def anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings, as GitHub makes them: lower case, spaces
    to hyphens, punctuation other than hyphens and underscores dropped."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize(
    "page", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_links_resolve_inside_the_repository(page: Path) -> None:
    """Every relative link of README.md and docs/ names a file or folder of the repository,
    and a link to a heading of a Markdown page names one that page has."""
    broken = []
    for target, anchor in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target):  # https:, mailto:
            continue
        resolved = (page.parent / target).resolve() if target else page
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}#{anchor}")
    assert not broken, f"{page.name} links what the repository does not hold: {broken}"


def test_anchors_are_made_as_github_makes_them(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("# Title\n\n## Multi-GPU and multi-node (torchrun)\n### `model.backbone`\n")
    assert anchors(page) == {"title", "multi-gpu-and-multi-node-torchrun", "modelbackbone"}


#: A code name beside its file: "`name` (`mrdd/x.py`", "`name`, `mrdd/x.py`", "x.py: name".
CITED = (
    re.compile(r"`([A-Za-z_][\w.]*)`,? \(?`(mrdd/[\w/]+\.py)`"),
    re.compile(r"((?:mrdd/[\w/]+/)?\w+\.py): ([A-Za-z_][\w.]*)"),
)


def cited_code(text: str) -> list[tuple[str, str]]:
    """``(file, name)`` for every name that ``text`` cites beside its file."""
    pairs = [(file, name) for name, file in CITED[0].findall(text)]
    return pairs + CITED[1].findall(text)


def defines(file: Path, name: str) -> bool:
    """Whether ``file`` defines ``name`` (a function, class or constant; ``Class.member``)."""
    source = file.read_text()
    *owner, member = name.split(".")
    if owner and not re.search(rf"^class {re.escape(owner[0])}\b", source, re.MULTILINE):
        return False
    pattern = rf"^\s*(?:def|class) {re.escape(member)}\b|^{re.escape(member)}\s*[:=]"
    return re.search(pattern, source, re.MULTILINE) is not None


def test_method_page_cites_code_that_exists() -> None:
    text = (ROOT / "docs" / "method.md").read_text()
    cited = cited_code(text)
    assert len(cited) > 20, "the page cites its functions beside their files"
    missing = []
    for file, name in cited:
        matches = [ROOT / file] if "/" in file else list((ROOT / "mrdd").rglob(file))
        if not any(path.is_file() and defines(path, name) for path in matches):
            missing.append(f"{file}: {name}")
    assert not missing, f"docs/method.md cites code that does not exist: {missing}"


def test_citations_are_read_as_written() -> None:
    text = "`club_upper_bound` (`mrdd/models/objectives.py`) and objectives.py: weighted_mean"
    assert cited_code(text) == [
        ("mrdd/models/objectives.py", "club_upper_bound"),
        ("objectives.py", "weighted_mean"),
    ]
    assert defines(ROOT / "mrdd" / "models" / "objectives.py", "weighted_mean")
    assert not defines(ROOT / "mrdd" / "models" / "objectives.py", "no_such_function")
