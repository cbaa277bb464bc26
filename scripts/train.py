"""Train MRDD (stage 1, stage 2, evaluation) with a Hydra-composed config.

python scripts/train.py                                   # embedded Edge-MNIST-5k
python scripts/train.py model.c_dim=10 stage1.mask_ratio=0.8 stage1.epochs=50 run.seed=1
python scripts/train.py stage=consistency
python scripts/train.py stage=disentangle consistency_ckpt=outputs/<run>/consistency.pt
python scripts/train.py experiment=paper_edge_mnist
python scripts/train.py resume=outputs/<run>              # continue a stopped run
torchrun --nproc_per_node=4 scripts/train.py experiment=paper_edge_mnist   # 4 GPUs, data parallel

``resume=<run_dir>`` takes no other arguments: the run continues with the config saved
in its directory and writes into it. User errors (config, data, checkpoint) print one
``error: ...`` line and exit with status 2; a run stopped by NaN/inf or a failing disk
exits with status 1. A sweep (``-m``) runs every job it can and ends by listing the jobs
refused for a user error, with status 2. docs/troubleshooting.md lists the messages.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from config_schema import refuse_renamed_overrides, register
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from mrdd.cli import reporting_user_errors
from mrdd.config import RunConfig
from mrdd.eval.tables import find_score
from mrdd.train import NonFiniteLossError, resume, run
from mrdd.train.run import LOG_FORMAT
from mrdd.train.rundir import (
    describe_write_failure,
    os_error_behind,
    require_new_run_dir,
    require_writable,
)


def _guarded(job: Callable[[], object], run_dir: str | Path | None = None) -> object:
    """Run ``job``; print a user error, a numerical fault, a failing disk or an interruption
    as one line and exit non-zero (2: fix the settings or data; 1: the run stopped; 130:
    interrupted). The run directory's ``run_info.json`` and ``train.log`` say the same."""
    try:
        with reporting_user_errors() as refusal:
            return job()
        sys.exit(refusal.status)
    except NonFiniteLossError as err:
        _exit(1, f"error: {err}")
    except (OSError, RuntimeError) as err:  # torch.save on a full disk: RuntimeError
        cause = os_error_behind(err)
        if cause is None or run_dir is None:
            raise
        _exit(
            1,
            f"error: {describe_write_failure(cause, Path(run_dir))}. The run stopped; what it "
            f"had saved is intact: continue it with python scripts/train.py resume={run_dir}",
        )
    except KeyboardInterrupt:
        _exit(
            130,
            "interrupted: continue with python scripts/train.py resume="
            f"{run_dir or '<run_dir>'} (states are saved every run.ckpt_every epochs).",
        )


def _exit(code: int, message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(code)


def _interrupt_on_sigterm() -> None:
    """SIGTERM (a scheduler's preemption, ``kill``) ends the run like Ctrl-C: the run
    records that it was interrupted instead of vanishing mid-line."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def _check_run_dir(args: list[str]) -> None:
    """Before Hydra writes its ``.hydra/`` and log into the run directory: refuse one that
    holds a run or cannot be written (a multirun's directories are new by construction)."""
    if "-m" in args or "--multirun" in args:
        return
    given = [a.split("=", 1)[1] for a in args if a.lstrip("+").startswith("hydra.run.dir=")]
    out_dir = Path(given[-1] if given else "outputs")
    with reporting_user_errors() as refusal:
        require_writable(out_dir)
        if given:
            require_new_run_dir(out_dir)
    if refusal:
        sys.exit(refusal.status)


#: The sweep jobs refused for a user error, one line each (summarised by :func:`main`).
REFUSED_JOBS: list[str] = []
#: The environment variable holding the pid of the process that runs the sweep: jobs in
#: that process (Hydra's basic launcher) are recorded; a job in a process of its own
#: (submitit, Slurm) fails alone, and its launcher reports it.
SWEEP_PID = "MRDD_SWEEP_PID"


@hydra.main(config_path="../configs", config_name="config", version_base="1.3")
def train(cfg: DictConfig) -> float | None:
    """One run; returns the score ``optimize_metric`` names (for a Hydra sweeper), if any.
    In a sweep (``-m``) whose jobs run in this process, a job refused for a user error is
    recorded and the sweep goes on to its next job; :func:`main` ends with the refused
    ones and exit status 2 (see :data:`SWEEP_PID`)."""
    output_dir = HydraConfig.get().runtime.output_dir
    job = lambda: _one_run(cfg, output_dir)  # noqa: E731
    in_sweep_process = os.environ.get(SWEEP_PID) == str(os.getpid())
    if HydraConfig.get().mode == RunMode.MULTIRUN and in_sweep_process:
        job = _recording_refusal(job)
    return _guarded(job, output_dir)


def _one_run(cfg: DictConfig, output_dir: str) -> float | None:
    config = RunConfig.from_dict(OmegaConf.to_container(cfg, resolve=True))
    metrics = run(config, output_dir, named=_named_settings())
    if config.optimize_metric is None:
        return None
    return find_score(metrics.get("scores", []), config.optimize_metric) if metrics else None


def _recording_refusal(job: Callable[[], float | None]) -> Callable[[], float | None]:
    """``job``, but a user error is printed, added to :data:`REFUSED_JOBS` and the job
    returns ``None`` instead of ending the sweep."""

    def recorded() -> float | None:
        hydra = HydraConfig.get()
        swept = [item for item in hydra.overrides.task if _key(item) in _swept_keys()]
        where = f"job {hydra.job.num} ({' '.join(swept) or hydra.runtime.output_dir})"
        with reporting_user_errors(f"{where}: ") as refusal:
            return job()
        REFUSED_JOBS.append(f"{where}: {refusal.error}")
        return None

    return recorded


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _swept_keys() -> set[str]:
    """The keys the command line sweeps over (``key=a,b``, ``key=range(...)``, ...)."""
    keys = set()
    for arg in sys.argv[1:]:
        key, _, value = arg.partition("=")
        listed = "," in value and not value.startswith(("[", "{"))  # not a list or mapping
        if listed or value.startswith(("range(", "choice(", "glob(", "interval(")):
            keys.add(_key(key))
    return keys


def _named_settings() -> list[str]:
    """The keys named on the command line (a sweep job's own values included), which a
    stage that does not use them refuses (:func:`mrdd.train.run.settled_config`)."""
    return [_key(item) for item in HydraConfig.get().overrides.task]


def _hydra_overrides_for_other_ranks() -> list[str]:
    """Under torchrun only rank 0 writes files: the other ranks' Hydra gets no run
    directory of its own, no ``.hydra/`` and no log file (their warnings go to stdout)."""
    if int(os.environ.get("RANK", "0")) == 0:
        return []
    return ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=stdout"]


def main() -> None:
    register()
    refuse_renamed_overrides(sys.argv[1:])
    args = sys.argv[1:]
    run_dirs = [a.removeprefix("resume=") for a in args if a.startswith("resume=")]
    _interrupt_on_sigterm()
    if not run_dirs:
        if int(os.environ.get("RANK", "0")) == 0:
            _check_run_dir(args)
        sys.argv += _hydra_overrides_for_other_ranks()
        os.environ[SWEEP_PID] = str(os.getpid())
        train()
        if REFUSED_JOBS:
            _exit(
                2,
                f"error: {len(REFUSED_JOBS)} sweep job(s) refused, the others ran:\n  "
                + "\n  ".join(REFUSED_JOBS),
            )
        return
    if len(args) != 1 or not run_dirs[0]:
        print(
            "error: resume=<run_dir> continues a run with the config saved in that directory; "
            f"it takes no other arguments (got {' '.join(args)}).",
            file=sys.stderr,
        )
        sys.exit(2)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    _guarded(lambda: resume(run_dirs[0]), run_dirs[0])


if __name__ == "__main__":
    main()
