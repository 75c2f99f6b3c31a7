"""Files texnet reads at run time, shipped inside the package so that an installed texnet needs no repository.

``loss/default.yaml`` is the default perceptual loss: :func:`texnet.losses.default_loss_config` reads it, and
the root scripts' Hydra configs find it as ``loss=default`` (``hydra.searchpath: pkg://texnet.resources``).
``textures/*.jpg`` are the built-in textures (:mod:`texnet.textures`), drawn by scripts/make_textures.py.
``models/`` holds the shipped trained models (:mod:`texnet.models`): ``<name>.ckpt``, ``cards.json`` and, for the
stylise models, ``<name>.onnx``, the graph :mod:`texnet.graph_stylize` runs without torch.
"""
