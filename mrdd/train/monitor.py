"""What a run reports while it trains: per-epoch losses and a cheap clustering probe.

Every epoch's record (loss terms, learning rate, throughput, and ``elapsed_s``: the
wall-clock seconds since training started, probes included, so that a run can tell
when a score was first reached) goes to TensorBoard
(``<run_dir>/tb``, one tag per ``<stage>/<term>``) and to ``<run_dir>/progress.csv``.
Every ``run.eval_every`` epochs the probe clusters a fixed random subsample of
the validation split (of the training split if there is none; never of test) once
(one KMeans seed, n_init=10) — ``C`` in stage 1, ``C‖S_best`` in stage 2 (``C‖S_all`` while
the best view is still to be chosen on val, ``dataset.best_view`` null) — and adds
``eval_acc``, ``eval_nmi`` and ``eval_ari`` to the record, so they also land in
``history.json`` and the training-curves figure. The probe
consumes no torch random numbers, so training is the same with or without it. With
``run.plateau_patience`` the probe also drives :class:`mrdd.train.plateau.PlateauStop`
(refused without a val split).
A resumed run keeps the CSV rows of the epochs it does not train again.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter

from mrdd.config import RunConfig
from mrdd.data import DatasetSplits
from mrdd.eval.metrics import evaluate_clustering
from mrdd.eval.representations import extract_codes, named_representations, probed
from mrdd.models import MRDD, ConsistencyModel
from mrdd.train.plateau import PlateauStop, require_val_probe

log = logging.getLogger("mrdd")
EpochCallback = Callable[[int, dict[str, float]], None]


class TrainingMonitor:
    """Logs every epoch of every stage; build once per run, :meth:`close` at the end."""

    def __init__(
        self,
        out_dir: Path,
        splits: DatasetSplits,
        cfg: RunConfig,
        device: torch.device,
        resume: bool = False,
    ) -> None:
        """``cfg`` gives ``run.eval_every``, the probe's size ``eval.progress_samples``,
        the inference batch ``eval.batch_size`` and the seed of subsample and KMeans."""
        self.csv_path = Path(out_dir) / "progress.csv"
        self.writer = SummaryWriter(str(Path(out_dir) / "tb"))
        self.eval_every, seed = cfg.run.eval_every, cfg.run.seed
        # the probe watches validation data (training data without a validation split):
        # what it shows may steer a researcher, so it never looks at test
        source = splits.val if splits.val is not None else splits.train
        keep = torch.randperm(len(source), generator=torch.Generator().manual_seed(seed))
        probe_index = keep[: cfg.eval.progress_samples].sort().values
        self.probe = source.subset(probe_index, f"progress probe ({source.name})")
        if self.eval_every and len(self.probe) < splits.num_classes:
            log.warning(
                "the training-time probe is off: its %d samples (%s) are fewer than the %d "
                "classes KMeans must find (raise eval.progress_samples or dataset.val_fraction)",
                len(self.probe),
                source.name,
                splits.num_classes,
            )
            self.eval_every = 0
        require_val_probe(cfg.run, splits.val is not None, bool(self.eval_every))
        self.num_classes, self.best_view = splits.num_classes, splits.best_view
        self.batch_size, self.device, self.seed = cfg.eval.batch_size, device, seed
        self.rows: list[dict[str, str | float]] = []
        if resume and self.csv_path.is_file():
            with self.csv_path.open(newline="") as f:
                self.rows = [{k: v for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
        # wall-clock seconds of training so far (a resumed run goes on from its last row)
        self.elapsed = float(self.rows[-1].get("elapsed_s", 0.0)) if self.rows else 0.0
        self.clock = time.perf_counter()

    def probe_scores(self, model: MRDD | ConsistencyModel) -> dict[str, float]:
        """One KMeans run on the probe subsample of :func:`probed`'s representation."""
        codes = extract_codes(model, self.probe, self.batch_size, self.device)
        features = probed(named_representations(codes.c, codes.s, self.best_view))
        scores = evaluate_clustering(
            features, self.probe.labels, self.num_classes, n_seeds=1, seed=self.seed
        )
        return {f"eval_{k}": scores[k]["mean"] for k in ("acc", "nmi", "ari")}

    def callback(
        self, stage: str, model: MRDD | ConsistencyModel, plateau: PlateauStop | None = None
    ) -> EpochCallback:
        """The ``on_epoch_end`` of :func:`mrdd.train.fit` for one stage of ``model``; each
        epoch's record (probe scores included) goes to ``plateau`` before it is written."""

        def on_epoch_end(epoch: int, record: dict[str, float]) -> None:
            if self.eval_every and (epoch + 1) % self.eval_every == 0:
                record.update(self.probe_scores(model))
            if plateau is not None:
                plateau.observe(record, model)
            now = time.perf_counter()
            self.elapsed, self.clock = self.elapsed + now - self.clock, now
            record["elapsed_s"] = self.elapsed
            step = int(record["epoch"])
            for key, value in record.items():
                if key != "epoch":
                    self.writer.add_scalar(f"{stage}/{key}", value, step)
            self.writer.flush()
            self.rows = [  # a resumed stage trains again the epochs after its saved state
                row
                for row in self.rows
                if not (row["stage"] == stage and float(row["epoch"]) >= record["epoch"])
            ]
            self.rows.append({"stage": stage, **record})
            self._write_csv()

        return on_epoch_end

    def _write_csv(self) -> None:
        """Rewrite the whole (small) CSV: stages log different terms, so columns can grow."""
        columns = list(dict.fromkeys(["stage", "epoch", *(k for row in self.rows for k in row)]))
        with self.csv_path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)

    def close(self) -> None:
        self.writer.close()
