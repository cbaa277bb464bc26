"""The training loop shared by both stages: epochs, schedule, progress bar, logging.

Loss values stay on the device and are summed there; the host reads them only
every ``log_every`` steps and at the end of an epoch, so the step itself never
waits for the device.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch
from torch.optim.lr_scheduler import LambdaLR
from tqdm.auto import tqdm

from mrdd.config import TrainConfig
from mrdd.data import BatchLoader
from mrdd.train.stages import Stage, lr_lambda

log = logging.getLogger("mrdd")


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; training stopped."""


def _means(sums: dict[str, torch.Tensor], count: int) -> dict[str, float]:
    values = torch.stack(list(sums.values())).div(count).tolist()
    return dict(zip(sums, values, strict=True))


def _check_finite(terms: dict[str, float], stage: str, epoch: int, step: int) -> None:
    bad = {k: v for k, v in terms.items() if not torch.isfinite(torch.tensor(v))}
    if bad:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in terms.items())
        raise NonFiniteLossError(
            f"{stage}: non-finite loss terms {sorted(bad)} at epoch {epoch + 1}, step {step} "
            f"(running means: {shown}). Lower train.lr, set train.grad_clip, or check the "
            "input data for extreme values."
        )


def fit(
    stage: Stage,
    loader: BatchLoader,
    epochs: int,
    cfg: TrainConfig,
    device: torch.device,
    *,
    show_progress: bool = True,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``stage`` for ``epochs`` epochs; return one record of mean loss terms per epoch."""
    steps = epochs * len(loader)
    warmup = cfg.warmup_epochs * len(loader)
    schedulers = [
        LambdaLR(opt, lr_lambda(cfg.scheduler, steps, warmup)) for opt in stage.optimizers
    ]
    history: list[dict[str, float]] = []
    global_step = 0
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        stage.model.train()
        sums: dict[str, torch.Tensor] = {}
        count = 0
        start = time.perf_counter()
        bar = tqdm(
            loader,
            desc=f"{stage.name} {epoch + 1}/{epochs}",
            leave=False,
            disable=not show_progress,
            dynamic_ncols=True,
        )
        for views, _ in bar:
            views = [x.to(device, non_blocking=True) for x in views]
            terms = stage.step(views)
            for scheduler in schedulers:
                scheduler.step()
            for k, v in terms.items():
                sums[k] = sums[k] + v if k in sums else v.clone()
            count += 1
            global_step += 1
            if count % cfg.log_every == 0:
                running = _means(sums, count)
                _check_finite(running, stage.name, epoch, global_step)
                bar.set_postfix({k: f"{v:.3g}" for k, v in running.items()})
        record = _means(sums, count)
        _check_finite(record, stage.name, epoch, global_step)
        seconds = time.perf_counter() - start
        record.update(
            epoch=epoch + 1,
            seconds=seconds,
            samples_per_s=count * loader.batch_size / seconds,
            lr=schedulers[0].get_last_lr()[0],
        )
        history.append(record)
        log.info(
            "%s epoch %d/%d  %s  (%.1f s, %.0f samples/s)",
            stage.name,
            epoch + 1,
            epochs,
            "  ".join(f"{k}={record[k]:.4g}" for k in sums),
            seconds,
            record["samples_per_s"],
        )
        if on_epoch_end is not None:
            on_epoch_end(epoch, record)
    return history
