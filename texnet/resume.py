"""The options a resumed run trains with: the run's own (its folder's config.yaml), not today's defaults.

``python train.py ckpt_path=<run>/checkpoints/last.ckpt`` (which goes on in ``<run>``: texnet.run_folder) composes
train.yaml's current defaults, so a run started with ``texture=starry``, or by an older texnet whose defaults differ,
would go on with other options than it started with. Hydra has no "resume from this config" (it rewrites
``.hydra/`` when the job starts), hence this module: the run's saved options win, options typed on the resume
command change them, and a config group typed there that would change the run (``texture=pebbles`` on a starry run)
is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from texnet.errors import TexnetError, first_line

log = logging.getLogger("texnet.train")

# Keys that are the resume command's by nature: the checkpoint it resumes from and the folder (the same run's).
RESUME_KEYS = ("ckpt_path", "run_dir")
CONFIG_NAME = "train"  # train.py's primary config (conf/train.yaml)
_ABSENT = object()


@dataclass
class ResumeCommand:
    """What a resume command's overrides do: options it sets or deletes, config groups it chooses."""

    set: list[str] = field(default_factory=list)  # option keys given a value (trainer.max_steps=2000, seed=1)
    deleted: list[str] = field(default_factory=list)  # ~key
    groups: dict[str, str] = field(default_factory=dict)  # group -> its override, for groups with a node (texture=)
    global_groups: list[str] = field(default_factory=list)  # groups that may set any key (experiment=quality)
    global_keys: set[str] | None = None  # the keys global_groups set, where known (None: any key)

    @classmethod
    def parse(cls, cfg: DictConfig, overrides: Sequence[str]) -> ResumeCommand:
        command = cls()
        for override, parsed in zip(overrides, OverridesParser.create().parse_overrides(list(overrides))):
            key = parsed.key_or_group
            if parsed.is_delete():
                command.deleted.append(key)
            elif "." not in key and key not in cfg:
                command.global_groups.append(override)  # experiment=: @package _global_, no node of its own
            elif "." not in key and isinstance(cfg[key], DictConfig):
                command.groups[key] = override
            else:
                command.set.append(key)
        return command

    def choose(self, key: str) -> bool:
        """Whether a group this command chooses may have set `key`."""
        return self._global_may_set(key) or _under(key, list(self.groups))

    def blame(self, keys: Sequence[str]) -> list[str]:
        """The overrides that set `keys`: the global groups for the keys they set (all of them where not known),
        each other group for the keys under it."""
        own = [k for k in keys if self.global_keys is None or k not in self.global_keys]
        blamed = [o for group, o in self.groups.items() if any(_under(k, [group]) for k in own)]
        return blamed + (self.global_groups if any(self._global_may_set(k) for k in keys) else [])

    def _global_may_set(self, key: str) -> bool:
        return bool(self.global_groups) and (self.global_keys is None or key in self.global_keys)


def resumed_config(cfg: DictConfig, saved: Path, overrides: Sequence[str]) -> DictConfig:
    """`cfg` (the resume command's composed config, `overrides` its command-line options) with the run's saved
    options from `saved` wherever the command does not set them. Keys the saved run lacks (options added to texnet
    since) keep today's defaults, and are logged."""
    try:
        run = OmegaConf.to_container(OmegaConf.load(saved))
    except (OSError, yaml.YAMLError) as err:  # a hand-edited or truncated file
        raise TexnetError(f"cannot read {saved} to resume its run ({first_line(err)})") from None
    if not isinstance(run, dict):
        raise TexnetError(f"{saved} holds no run options (not a mapping): restore it from the run's first start")
    composed = OmegaConf.to_container(cfg, resolve=True)
    command = ResumeCommand.parse(cfg, overrides)
    ours, theirs = _leaves(composed), _leaves(run)
    differ = [
        k
        for k in sorted(ours.keys() | theirs.keys())
        if ours.get(k, _ABSENT) != theirs.get(k, _ABSENT) and k.split(".")[0] not in RESUME_KEYS
    ]
    untyped = [k for k in differ if not _under(k, command.set + command.deleted)]
    command.global_keys = _keys_global_groups_set(overrides, command.global_groups, composed)
    by_group = [k for k in untyped if command.choose(k)]
    if by_group:
        choices = command.blame(by_group)
        shown = ", ".join(f"{k} (the run has {_show(theirs.get(k, _ABSENT))})" for k in by_group[:3])
        more = f" and {len(by_group) - 3} more" if len(by_group) > 3 else ""
        raise TexnetError(
            f"{' '.join(choices)} would change the run in {saved.parent} as it resumes: {shown}{more}; leave "
            f"{'them' if len(choices) > 1 else 'it'} out to resume the run with its own options (its config.yaml), "
            "or start a new run from the checkpoint with init_from="
        )
    result = OmegaConf.merge(composed, run)  # the run's options; today's defaults only where it has none
    for key in command.set:  # typed on the resume command: these change the run
        OmegaConf.update(result, key, OmegaConf.select(cfg, key), merge=False)
    for key in command.deleted:
        _delete(result, key)
    for name in RESUME_KEYS:
        result[name] = cfg[name]
    OmegaConf.set_struct(result, True)  # as Hydra's: a mistyped key in the code is an error, not None
    if kept := [k for k in untyped if k in theirs]:
        log.info("resuming with the run's own %s from %s, not today's defaults", ", ".join(kept), saved)
    if new := [k for k in untyped if k not in theirs]:
        log.info("%s lacks %s (options added since): today's defaults are used for them", saved, ", ".join(new))
    return result


def _keys_global_groups_set(
    overrides: Sequence[str], global_groups: Sequence[str], composed: dict[str, Any]
) -> set[str] | None:
    """The option keys to which the resume command's global groups (experiment=quality) give another value than
    the command without them would (`composed`: the command's config, resolved): the command composed again
    without them, as Hydra has no list of what a group sets. None where no Hydra config search path is initialised
    (train() called on a config built by hand)."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra

    if not global_groups or not GlobalHydra.instance().is_initialized():
        return None
    without = compose(config_name=CONFIG_NAME, overrides=[o for o in overrides if o not in global_groups])
    OmegaConf.set_struct(without, False)
    for key in RESUME_KEYS:  # run_dir is ${hydra:...}, which a compose outside the job cannot resolve
        without[key] = composed[key]
    ours, theirs = _leaves(composed), _leaves(OmegaConf.to_container(without, resolve=True))
    return {k for k in ours.keys() | theirs.keys() if ours.get(k, _ABSENT) != theirs.get(k, _ABSENT)}


def _delete(node: DictConfig, key: str) -> None:
    parent, _, leaf = key.rpartition(".")
    container = OmegaConf.select(node, parent) if parent else node
    if isinstance(container, DictConfig) and leaf in container:
        del container[leaf]


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value for every leaf of a plain dict (a list is one leaf)."""
    if not isinstance(node, dict) or not node:
        return {prefix: node} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _under(key: str, prefixes: Sequence[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def _show(value: Any) -> str:
    return "no such option" if value is _ABSENT else repr(value)
