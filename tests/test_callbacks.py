"""texnet.callbacks through train(): last.ckpt holds the final step, best.ckpt exists when validation ran."""

from pathlib import Path

import torch
from conftest import tiny_cfg

from texnet.training import train


def test_last_checkpoint_holds_the_final_step(tmp_path, coco_root):
    """max_steps not a multiple of checkpoint_every: last.ckpt still holds the final step; best.ckpt when validation ran."""
    result = train(
        tiny_cfg(tmp_path / "a", coco_root, "trainer.max_steps=6", "checkpoint_every=4", "trainer.val_check_interval=4")
    )
    assert result["last"] == tmp_path / "a" / "checkpoints" / "last.ckpt"
    assert torch.load(result["last"], map_location="cpu", weights_only=True)["global_step"] == 6
    assert Path(result["best"]) == tmp_path / "a" / "checkpoints" / "best.ckpt"
    no_val = train(
        tiny_cfg(tmp_path / "b", coco_root, "trainer.max_steps=3", "checkpoint_every=2", "trainer.val_check_interval=4")
    )
    assert torch.load(no_val["last"], map_location="cpu", weights_only=True)["global_step"] == 3
    assert no_val["best"] == "" and sorted(p.name for p in (tmp_path / "b" / "checkpoints").iterdir()) == ["last.ckpt"]
