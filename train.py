"""Train a texture network: python train.py texture=mosaic  (see conf/train.yaml for every option).

Several textures in one network: python train.py 'texture.images=[mosaic,starry,pebbles]'; one more texture in a
trained network: python train.py init_from=<checkpoint> texture.add=new.jpg (texnet.texture_set).
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from texnet.cli import run_hydra_main
from texnet.errors import user_error
from texnet.run_folder import check_run_dir, resume_folder, run_name

# Lightning, torch and the training code (texnet.training) are imported in main(), after Hydra has composed the
# config, so that a mistyped option or --help answers at once instead of after seconds of imports.
log = logging.getLogger("texnet.train")
OmegaConf.register_new_resolver("texnet_run_name", run_name, replace=True)  # conf/train.yaml's hydra.run.dir
OmegaConf.register_new_resolver("texnet_resume_folder", resume_folder, replace=True)  # ... and a resume's


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    try:
        check_run_dir(cfg)
        from hydra.core.hydra_config import HydraConfig

        from texnet.training import train

        result = train(cfg, overrides=HydraConfig.get().overrides.task)
    except Exception as err:  # bad input, also when raised inside a config's _target_: one line
        cause = user_error(err)
        if cause is None:
            raise
        print(f"error: {cause}", file=sys.stderr)
        sys.exit(1)
    best = (
        f"best {result['best']}"
        if result["best"]
        else "no best.ckpt: no validation ran (trainer.val_check_interval > max_steps)"
    )
    log.info(
        "done: %s at step %d (last checkpoint %s; %s)", result["run_dir"], result["global_step"], result["last"], best
    )


if __name__ == "__main__":
    run_hydra_main(
        main,
        {
            "texture": "for an image file use texture.image={value}",
            "texture[]": "for image files (or names and files) use texture.images={value}",
        },
    )
