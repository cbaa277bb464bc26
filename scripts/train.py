"""Train MRDD (stage 1, stage 2, evaluation) with a Hydra-composed config.

python scripts/train.py                                   # embedded Edge-MNIST-5k
python scripts/train.py model.c_dim=10 train.mask_ratio=0.8 train.epochs=50 seed=1
python scripts/train.py stage=consistency
python scripts/train.py stage=disentangle consistency_ckpt=outputs/<run>/consistency.pt
python scripts/train.py experiment=paper_edge_mnist
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mrdd.config import ConfigError, RunConfig
from mrdd.data import DataError
from mrdd.train import CheckpointError, run

USER_ERRORS = (ConfigError, DataError, CheckpointError)


@hydra.main(config_path="../configs", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        config = RunConfig.from_dict(OmegaConf.to_container(cfg, resolve=True))
        run(config, HydraConfig.get().runtime.output_dir)
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
