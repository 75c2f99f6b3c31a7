"""Shipped models: loaded by name wherever a checkpoint goes, never written, a one-line error for unknown names."""

import hashlib
import importlib.util
import json
import shlex
import sys

import numpy as np
import pytest
import torch
from conftest import CONFIG_DIR, ROOT
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import texnet
import texnet.models
from texnet.checkpoint import checkpoint_texture, fine_tune_model, read_checkpoint
from texnet.errors import TexnetError
from texnet.models import MODELS_DIR, cards, main, resolve_checkpoint


def digest(path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(cards()))
def test_each_shipped_model_stylises_by_name(name, photo_path):
    card = cards()[name]
    before = digest(MODELS_DIR / f"{name}.ckpt")
    model = texnet.load(name, device="cpu")
    assert model.texture_name == card["texture"] and model.mode == card["mode"]
    if model.mode == "texture":  # noise -> texture: seamless samples, a different one per seed
        first, second = (np.asarray(model.generate(size=(96, 128), seed=seed)[0], dtype=float) for seed in (0, 1))
        assert first.shape == (96, 128, 3) and first.std() > 10 and np.abs(first - second).mean() > 5
    else:
        photo = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(0))
        out = model.stylize(photo, seed=0)
        assert out.shape == photo.shape and (out - photo).abs().mean() > 0.05  # it changed the photo
        image = model.stylize(photo_path, seed=0, max_size=128)
        assert max(image.size) == 128
    assert digest(MODELS_DIR / f"{name}.ckpt") == before  # shipped files are only read
    assert (MODELS_DIR / f"{name}.ckpt").stat().st_size < 2e6  # slim: no optimiser state, no VGG, 8-bit texture
    for key in ("command", "steps", "minutes", "content_vs_gatys", "style_vs_gatys", "seconds_512px"):
        assert key in card


@pytest.mark.parametrize("name", sorted(cards()))
def test_each_card_command_builds_the_shipped_network(name):
    """A card's command, composed with today's configs, gives the shipped network's layers (architecture, scales,
    widths, kernels, norm) and mode: a changed default (the full-resolution join in session 51) cannot leave a
    card whose command trains another network than the one it describes."""
    words = shlex.split(cards()[name]["command"])
    assert words[:2] == ["python", "train.py"]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        model = OmegaConf.to_container(compose("train", overrides=words[2:]).model, resolve=True)
    _, differ = fine_tune_model(read_checkpoint(name), name, model)  # also refuses a mode that differs
    assert differ == {}


def test_mosaic_ships():
    assert "mosaic" in cards() and read_checkpoint("mosaic")["texnet"]["texture_name"] == "mosaic"


def test_shipped_models_fit_in_10_mb_with_their_textures_in_8_bits():
    assert sum(path.stat().st_size for path in MODELS_DIR.glob("*.ckpt")) < 10e6
    for name in cards():
        texture = checkpoint_texture(read_checkpoint(name), name)
        assert texture.dtype == torch.float32 and 0 <= texture.min() and texture.max() <= 1


def test_unknown_name_lists_the_shipped_models(tmp_path):
    with pytest.raises(TexnetError, match="'nope' is neither a checkpoint file nor a shipped model: .*mosaic") as err:
        texnet.load("nope")
    assert "\n" not in str(err.value)
    with pytest.raises(TexnetError, match="does not exist"):  # a path keeps the file error
        read_checkpoint(tmp_path / "missing.ckpt")
    assert resolve_checkpoint("mosaic") == MODELS_DIR / "mosaic.ckpt"


def test_init_from_a_shipped_model(tmp_path, one_thread):
    from conftest import CONFIG_DIR
    from hydra import compose, initialize_config_dir

    from texnet.training import train

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"run_dir={tmp_path / 'run'}",
                "init_from=mosaic",
                "data.image_size=64",
                "data.val_size=64",
                "data.batch_size=1",
                "data.num_val=1",
                "data.builtin_length=4",
                "data.schedule=null",
                "trainer.max_steps=2",
                "trainer.val_check_interval=2",
                "trainer.accelerator=cpu",
                "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false",
                "checkpoint_every=2",
                "sample_every=0",
            ],
        )
    result = train(cfg)
    assert result["global_step"] == 2
    shipped = read_checkpoint("mosaic")["state_dict"]
    tuned = torch.load(result["last"], map_location="cpu", weights_only=False)["state_dict"]
    # it started from the shipped weights: two small steps later they are still close, unlike a fresh init
    key = next(k for k in shipped if k.startswith("generator.") and k.endswith("weight") and shipped[k].dim() == 4)
    assert (tuned[key] - shipped[key]).abs().max() < 0.05 < shipped[key].abs().max()


# texnet.load("mosaic").stylize of a seeded 24x40 photo with seed 0 (the model shipped in session 46, 7af7251):
# out[0, :, ::6, ::10]. The shipped checkpoint must keep giving this image whatever changes in the training code, the
# checkpoint reader or the generator (a newly shipped mosaic takes a new reference, written with it).
MOSAIC_REFERENCE = [
    0.552903,
    0.000434,
    0.083938,
    0.161981,
    0.526838,
    0.000156,
    0.465267,
    0.716161,
    0.004334,
    0.19458,
    0.026988,
    0.706628,
    0.631093,
    0.659302,
    0.01349,
    0.505616,
    0.29901,
    0.021016,
    0.12203,
    0.078118,
    0.667988,
    0.008113,
    0.265723,
    0.676631,
    0.120949,
    0.585956,
    0.311816,
    0.648007,
    0.307125,
    0.522121,
    0.2244,
    0.497723,
    0.376893,
    0.021648,
    0.358059,
    0.031008,
    0.472955,
    0.009701,
    0.621076,
    0.051454,
    0.122887,
    0.467208,
    0.334902,
    0.094451,
    0.769629,
    0.476723,
    0.177572,
    0.147997,
]


def test_the_shipped_mosaic_gives_the_same_image_as_before():
    photo = torch.rand(1, 3, 24, 40, generator=torch.Generator().manual_seed(0))
    out = texnet.load("mosaic", device="cpu").stylize(photo, seed=0)
    torch.testing.assert_close(out[0, :, ::6, ::10].flatten(), torch.tensor(MOSAIC_REFERENCE), atol=1e-5, rtol=0)


def test_the_shipped_three_texture_model_blends_and_takes_a_new_texture_by_name(tmp_path, photo_path, one_thread):
    """The shipped network of several textures: each texture and a blend by name, and ``init_from=<name>
    texture.add=<image>`` gives a network of four whose three shipped textures draw exactly what they drew."""
    from test_stylize import train_checkpoint

    name = "mosaic+starry+pebbles"
    before = digest(MODELS_DIR / f"{name}.ckpt")
    assert set(cards()[name]["textures"]) == {"mosaic", "starry", "pebbles"}
    shipped = texnet.load(name, device="cpu", backend="eager")
    photo = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    outs = {mix: shipped.stylize(photo, seed=0, mix=mix) for mix in ("mosaic", "starry", "pebbles")}
    blend = shipped.stylize(photo, seed=0, mix={"mosaic": 0.5, "starry": 0.5})
    assert min((a - b).abs().mean() for a, b in [(outs["mosaic"], outs["starry"]), (outs["starry"], blend)]) > 0.01
    added = texnet.load(
        train_checkpoint(tmp_path / "add", "stylize", f"init_from={name}", f"texture.add={photo_path}"),
        device="cpu",
        backend="eager",
    )
    assert added.textures == ["mosaic", "starry", "pebbles", "astronaut"]
    for mix, out in outs.items():
        assert torch.equal(added.stylize(photo, seed=0, mix=mix), out)
    assert (added.stylize(photo, seed=0, mix="astronaut") - outs["mosaic"]).abs().mean() > 0.01
    assert digest(MODELS_DIR / f"{name}.ckpt") == before  # adding to a shipped model writes only the new run


def test_the_models_command_lists_them_and_prints_one_card(capsys):
    assert main([]) == 0
    table = capsys.readouterr().out
    assert all(any(line.startswith(f"{name} ") for line in table.splitlines()) for name in cards())
    assert main(["pebbles-texture"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card == {
        "name": "pebbles-texture",
        "file": str(MODELS_DIR / "pebbles-texture.ckpt"),
        **cards()["pebbles-texture"],
    }
    assert main(["pebble"]) == 1
    assert (
        capsys.readouterr().err == f"error: 'pebble' is not a shipped model: use one of {', '.join(sorted(cards()))}\n"
    )


def test_rescoring_a_shipped_model_replaces_only_its_quality_figures(tmp_path, monkeypatch):
    """scripts/ship_model.py --rescore: when the Gatys reference changes, the cards' figures follow without retraining;
    the weights, minutes and command stay, and a half-given ship command is a one-line error."""
    spec = importlib.util.spec_from_file_location("ship_model", ROOT / "scripts" / "ship_model.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    texnet_cards = texnet.models.CARDS
    shipped_cards = texnet_cards.read_text()
    cards_copy = tmp_path / "cards.json"
    cards_copy.write_text(shipped_cards)
    monkeypatch.setattr(texnet.models, "CARDS", cards_copy)
    monkeypatch.setattr(script, "CARDS", cards_copy)
    before, weights = cards()["pebbles-texture"], digest(MODELS_DIR / "pebbles-texture.ckpt")
    layers = {f"style/relu{i}_1": 0.5 * i for i in range(1, 6)}
    quality = {"ratio": {"style": 1.23, **layers}, "target_met": False, "diversity": {"network": 2.0, "gatys": 2.5}}
    (tmp_path / "q.json").write_text(json.dumps(quality))

    def ship_model(*args):
        monkeypatch.setattr(sys, "argv", ["ship_model.py", *args])
        script.main()

    ship_model("--name", "pebbles-texture", "--rescore", "--quality", str(tmp_path / "q.json"))
    after = cards()["pebbles-texture"]
    assert after["style_vs_gatys"] == 1.23 and after["diversity_vs_gatys"] == 0.8
    assert after["style_layers_vs_gatys"] == {f"relu{i}_1": 0.5 * i for i in range(1, 6)}
    assert {k: after[k] for k in ("minutes", "command", "steps")} == {
        k: before[k] for k in ("minutes", "command", "steps")
    }
    assert {k: v for k, v in cards().items() if k != "pebbles-texture"} == {
        k: v for k, v in json.loads(shipped_cards).items() if k != "pebbles-texture"
    }
    assert digest(MODELS_DIR / "pebbles-texture.ckpt") == weights
    assert texnet_cards.read_text() == shipped_cards  # the package's own cards were never written
    for args in (["--checkpoint", "x.ckpt"], ["--rescore", "--command", "python train.py"]):
        with pytest.raises(SystemExit, match="^error: .*--checkpoint and --command"):
            ship_model("--name", "pebbles-texture", "--quality", str(tmp_path / "q.json"), *args)
