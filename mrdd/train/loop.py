"""The training loop shared by both stages: epochs, schedule, progress bar, logging,
non-finite checks and resumable checkpoints.

Loss values stay on the device and are summed there; the host reads them only
every ``log_every`` steps and at the end of an epoch, so the step itself never
waits for the device. NaN/inf values are watched the same way: the first faulty
step and its values are remembered on the device and looked at on those reads,
always before an epoch's state is saved, so a checkpoint never holds a faulty
update. (With ``run.skip_nonfinite`` faulty steps are skipped instead, at the
price of one sync per update.) Under torchrun the logged values are averaged over
ranks (every rank reads them at the same steps; the gradient norms, computed after
DDP's all-reduce, are the same on every rank, so a faulty step is faulty everywhere).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch
from torch import Tensor
from torch.optim.lr_scheduler import LambdaLR, LRScheduler
from tqdm.auto import tqdm

from mrdd.data import BatchLoader
from mrdd.train.distributed import mean_across_ranks
from mrdd.train.plateau import PlateauStop
from mrdd.train.stages import Stage, lr_lambda
from mrdd.train.state import Progress, StageCheckpoint

log = logging.getLogger("mrdd")


class NonFiniteLossError(FloatingPointError):
    """A loss term or gradient norm became NaN or infinite; training stopped."""


class _FaultWatch:
    """The first step whose loss terms or gradient norms were not all finite, and those
    values, kept on the device so that watching costs no host sync."""

    def __init__(
        self,
        stage: Stage,
        steps_per_epoch: int,
        checkpoint: StageCheckpoint | None,
    ) -> None:
        self.stage_name, self.section = stage.name, stage.section
        self.steps_per_epoch = steps_per_epoch
        self.checkpoint = checkpoint
        self.step = torch.tensor(-1, device=stage.device)
        self.values: Tensor | None = None

    def observe(self, values: Tensor, step: int) -> None:
        first = ~torch.isfinite(values).all() & (self.step < 0)
        self.step = torch.where(first, step, self.step)
        self.values = values if self.values is None else torch.where(first, values, self.values)

    def raise_if_faulty(self, names: list[str]) -> None:
        step = int(self.step)
        if step < 0:
            return
        shown = ", ".join(f"{k}={v:.4g}" for k, v in zip(names, self.values.tolist(), strict=True))
        if self.checkpoint is None:
            last = "none (checkpointing is off)"
        else:
            last = self.checkpoint.last_saved or "none yet in this stage"
        raise NonFiniteLossError(
            f"{self.stage_name}: non-finite loss or gradient at step {step} (epoch "
            f"{(step - 1) // self.steps_per_epoch + 1}): {shown}. Training stopped; the last "
            f"good checkpoint, {last}, is left intact. Lower {self.section}.lr, set "
            f"{self.section}.grad_clip, check the data for extreme values, or set "
            "run.skip_nonfinite=true to skip such steps."
        )


def _means(names: list[str], sums: Tensor, count: int) -> dict[str, float]:
    return dict(zip(names, mean_across_ranks(sums.div(count)).tolist(), strict=True))


class _EpochRunner:
    """Runs the epochs of one stage: the state they share (schedulers, fault watch,
    progress) lives here instead of being passed from call to call."""

    def __init__(
        self,
        stage: Stage,
        loader: BatchLoader,
        checkpoint: StageCheckpoint | None,
        show_progress: bool,
    ) -> None:
        self.stage, self.loader = stage, loader
        self.epochs = stage.settings.epochs_for(len(loader))
        self.show_progress = show_progress
        steps, settings = len(loader), stage.settings
        total, warmup = self.epochs * steps, settings.warmup_epochs * steps
        self.schedulers: list[LRScheduler] = [
            LambdaLR(opt, lr_lambda(settings.scheduler, total, warmup)) for opt in stage.optimizers
        ]
        self.progress = (
            checkpoint.restore(stage, self.schedulers) if checkpoint is not None else Progress()
        )
        self.watch = _FaultWatch(stage, steps, checkpoint)

    def run(self, epoch: int) -> dict[str, float]:
        """One epoch; returns its record (mean of every term over the applied steps)."""
        stage, cfg = self.stage, self.stage.runtime
        self.loader.set_epoch(epoch)
        stage.model.train()
        names: list[str] = []
        sums: Tensor | None = None
        count = skipped = 0
        start = time.perf_counter()
        bar = tqdm(
            self.loader,
            desc=f"{stage.name} {epoch + 1}/{self.epochs}",
            leave=False,
            disable=not self.show_progress,
            dynamic_ncols=True,
        )
        for batch in bar:
            terms = stage.step(batch.to(stage.device))
            for scheduler in self.schedulers:
                scheduler.step()
            self.progress.step += 1
            names = names or list(terms)
            values = torch.stack([v.float() for v in terms.values()])
            if cfg.skip_nonfinite:
                if not torch.isfinite(values).all().item():
                    skipped += 1
                    self._warn_skipped(names, values)
                    continue
            else:
                self.watch.observe(values, self.progress.step)
            sums = values if sums is None else sums + values
            count += 1
            if count % cfg.log_every == 0:
                self.watch.raise_if_faulty(names)
                bar.set_postfix({k: f"{v:.3g}" for k, v in _means(names, sums, count).items()})
        self.watch.raise_if_faulty(names)
        if sums is None:
            raise NonFiniteLossError(
                f"{stage.name}: every step of epoch {epoch + 1} was non-finite and skipped. "
                f"Lower {stage.section}.lr, set {stage.section}.grad_clip, or check the data "
                "for extreme values."
            )
        return self._record(names, sums, count, skipped, time.perf_counter() - start, epoch)

    def _warn_skipped(self, names: list[str], values: Tensor) -> None:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in zip(names, values.tolist(), strict=True))
        log.warning(
            "%s: skipped non-finite step %d (%s)", self.stage.name, self.progress.step, shown
        )

    def _record(
        self, names: list[str], sums: Tensor, count: int, skipped: int, seconds: float, epoch: int
    ) -> dict[str, float]:
        record = _means(names, sums, count)
        record.update(
            epoch=epoch + 1,
            seconds=seconds,
            samples_per_s=(count + skipped) * self.loader.batch_size / seconds,
            lr=self.schedulers[0].get_last_lr()[0],
            skipped_steps=skipped,
        )
        log.info(
            "%s epoch %d/%d  %s  (%.1f s, %.0f samples/s%s)",
            self.stage.name,
            epoch + 1,
            self.epochs,
            "  ".join(f"{k}={record[k]:.4g}" for k in names),
            seconds,
            record["samples_per_s"],
            f", {skipped} non-finite steps skipped" if skipped else "",
        )
        return record


def fit(
    stage: Stage,
    loader: BatchLoader,
    *,
    show_progress: bool = True,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint: StageCheckpoint | None = None,
    plateau: PlateauStop | None = None,
) -> list[dict[str, float]]:
    """Train ``stage`` for the epochs of its section; return one record of mean loss terms
    per epoch.

    With ``checkpoint``, the stage's resumable state is saved every ``run.ckpt_every``
    epochs and after the last one; if the checkpoint resumes a run, training continues
    after its saved epoch and the returned history includes the restored epochs.
    ``on_epoch_end(epoch, record)`` runs after every epoch, before its state is saved;
    entries it adds to ``record`` (e.g. periodic evaluation scores) join the history.
    ``plateau`` (fed by ``on_epoch_end``, see :class:`mrdd.train.monitor.TrainingMonitor`)
    may end the stage early; its state is saved with the stage's, and the stage ends
    with the weights of its best probed epoch.
    """
    runner = _EpochRunner(stage, loader, checkpoint, show_progress)
    progress, epochs = runner.progress, runner.epochs
    if progress.epoch:
        log.info("%s: resumed from %s", stage.name, checkpoint.last_saved)
    if plateau is not None and progress.plateau is not None:
        plateau.load_state_dict(progress.plateau)
    for epoch in range(progress.epoch, epochs):
        if plateau is not None and plateau.stopped:  # also: resumed after it stopped
            break
        record = runner.run(epoch)
        progress.epoch = epoch + 1
        progress.history.append(record)
        if on_epoch_end is not None:  # before saving, so what it adds to the record is kept
            on_epoch_end(epoch, record)
        if plateau is not None:
            progress.plateau = plateau.state_dict()
        stopping = plateau is not None and plateau.stopped
        if checkpoint is not None and checkpoint.due(progress.epoch, epochs, stopping):
            checkpoint.save(stage, runner.schedulers, progress)
    if plateau is not None:
        plateau.restore_best(stage.model)
    return progress.history
