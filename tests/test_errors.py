"""One base class for every user error (mrdd.MRDDError), reported by the scripts in one place."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_MODEL_OVERRIDES, write_image_npz

import mrdd
from mrdd.api import ViewsError
from mrdd.cli import USER_ERROR_STATUS, reporting_user_errors
from mrdd.config import ConfigError
from mrdd.data import DataError
from mrdd.train import CheckpointError
from mrdd.train.rundir import RunDirectoryError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (ConfigError, ValueError),
        (DataError, ValueError),
        (CheckpointError, RuntimeError),
        (ViewsError, ValueError),
        (RunDirectoryError, ValueError),
    ],
)
def test_every_user_error_is_an_mrdd_error_and_keeps_its_builtin_base(error, builtin):
    assert issubclass(error, mrdd.MRDDError)
    assert issubclass(error, builtin)  # `except ValueError` in user code still catches it
    assert error is not mrdd.MRDDError


def test_the_package_exports_the_base_and_its_specific_errors():
    assert mrdd.ConfigError is ConfigError
    assert mrdd.DataError is DataError
    assert mrdd.CheckpointError is CheckpointError


def test_a_user_error_becomes_one_prefixed_line_and_status_2(capsys):
    with reporting_user_errors("job 3: ") as refusal:
        raise DataError("the file is empty; pass another one.")
    assert refusal and refusal.status == USER_ERROR_STATUS == 2
    assert isinstance(refusal.error, DataError)
    assert capsys.readouterr().err == "error: job 3: the file is empty; pass another one.\n"


def test_a_block_that_finishes_is_no_refusal(capsys):
    with reporting_user_errors() as refusal:
        pass
    assert not refusal and refusal.status == 0 and refusal.error is None
    assert capsys.readouterr().err == ""


def test_other_errors_are_not_swallowed(capsys):
    with pytest.raises(KeyError), reporting_user_errors():
        raise KeyError("a bug")
    with pytest.raises(ValueError, match="not a user error"), reporting_user_errors():
        raise ValueError("not a user error")  # a plain ValueError is no MRDDError
    assert capsys.readouterr().err == ""


def test_no_script_lists_user_errors_of_its_own():
    """The scripts leave user errors to mrdd.cli: no USER_ERRORS tuple, no except clause
    naming ConfigError, DataError or CheckpointError (the benchmark's once lacked one)."""
    for script in sorted((ROOT / "scripts").glob("*.py")):
        source = script.read_text()
        assert "USER_ERRORS" not in source, script.name
        caught = re.findall(r"except\s*\(?([^:]*):", source)
        named = [c for c in caught if re.search(r"Config|Data|Checkpoint|MRDD", c)]
        assert not named, f"{script.name} catches {named}"


def test_the_benchmark_reports_a_checkpoint_error_as_one_line(tmp_path):
    """A missing stage-1 checkpoint (a CheckpointError, which the benchmark once let through
    as a traceback) is refused with its one line and status 2."""
    write_image_npz(tmp_path / "tiny.npz", n=24, split=np.array([0] * 16 + [1] * 8))
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "benchmark.py"),
        *TINY_MODEL_OVERRIDES,
        "dataset=npz",
        f"dataset.path={tmp_path / 'tiny.npz'}",
        "stage2.batch_size=8",
        "stage=disentangle",
        f"consistency_ckpt={tmp_path / 'none.pt'}",
        "run.device=cpu",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "none.pt does not exist" in lines[-1]
    assert "Traceback" not in result.stderr
