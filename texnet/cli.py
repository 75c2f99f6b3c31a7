"""Run a Hydra entry point (train.py, stylize.py) so that a mistyped option is one line saying what to write instead.

Hydra reports an unknown option or config-group choice itself, in several lines ending with its search path; it has
no hook for the wording, so the entry point lets Hydra raise instead (HYDRA_FULL_ERROR) and words it here.
:func:`hydra_value` writes a path into an override for the tools that start train.py (the web app, bench/recipe_ab.py).
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path

from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError


def run_hydra_main(
    main: Callable[[], None], hints: Mapping[str, str] | None = None, argv: Sequence[str] | None = None
) -> None:
    """Call a ``@hydra.main`` function; an override Hydra cannot compose ends the process with one line on stderr.
    `hints`: per config group, what else its unknown choice may have meant (``{value}`` stands for the choice);
    ``<group>[]`` the same for a list of choices (``texture=[mosaic,my.jpg]``), ``{value}`` the whole list."""
    if os.environ.get("HYDRA_FULL_ERROR") == "1":  # the user asked for Hydra's full report
        main()
        return
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing its report and exiting
    try:
        main()
    except (ConfigCompositionException, OverrideParseException) as err:
        print(f"error: {override_error(err, sys.argv[1:] if argv is None else argv, hints)}", file=sys.stderr)
        sys.exit(1)


def override_error(err: Exception, argv: Sequence[str], hints: Mapping[str, str] | None = None) -> str:
    """One line for a Hydra composition error: the override, what is wrong with it, and the closest valid one."""
    if isinstance(err, OverrideParseException) and "~" in err.override.partition("=")[2]:
        return f"cannot read the override {err.override!r}: Hydra reads ~ as a deletion; write the path out ($HOME/...)"
    if isinstance(err, OverrideParseException):
        return (
            f"cannot read the override {err.override!r}: {err.message.splitlines()[0]} (quote lists and dicts for the "
            "shell: 'texture.images=[a.jpg,b.jpg]')"
        )
    if isinstance(err, MissingConfigException) and err.missing_cfg_file and err.options is not None:
        return _unknown_choice(err.missing_cfg_file, list(err.options), argv, hints or {})
    listed = re.search(r"Could not load '([^']+)'", str(err))
    if isinstance(err, MissingConfigException) and listed:  # one choice of a list: Hydra names neither it nor options
        return _unknown_listed_choice(listed[1], str(err), argv, hints or {})
    cause = err.__cause__
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and cause.full_key:
        return _unknown_key(str(cause.full_key), cause.parent_node, argv)
    return " ".join(str(err).split())


def _unknown_choice(missing: str, options: list[str], argv: Sequence[str], hints: Mapping[str, str]) -> str:
    """``data=cocoo``: the group's choices and the nearest one, or the group's hint (``texture=my.jpg``)."""
    group, value = next(
        ((key, val) for key, val in _key_values(argv) if f"{key}/{val}" == missing),
        missing.split("/", 1) if "/" in missing else ("", missing),
    )
    line = f"{group}={value} is not one of {', '.join(options)}"
    if group in hints:
        return f"{line}; {hints[group].format(value=value)}"
    close = difflib.get_close_matches(value, options, n=1)
    return f"{line}; did you mean {group}={close[0]}?" if close else line


def _unknown_listed_choice(missing: str, message: str, argv: Sequence[str], hints: Mapping[str, str]) -> str:
    """``texture=[mosaic,nope]``: the override, the choice that is not in the group, and the group's choices."""
    group, given = next(((key, val) for key, val in _key_values(argv) if missing.startswith(f"{key}/")), (missing, ""))
    if not given:
        return f"there is no config {missing!r} ({Path(sys.argv[0]).name} --help lists the groups and their choices)"
    value, options = missing[len(group) + 1 :], _group_options(message, group)
    line = f"{group}={given}: {value} is not one of {', '.join(options)}" if options else f"{group}={given}: no {value}"
    hint = hints.get(f"{group}[]")
    return f"{line}; {hint.format(value=given)}" if hint else line


def _key_values(argv: Sequence[str]) -> list[tuple[str, str]]:
    """Each override as (key without Hydra's + / ++ / ~ prefix, value)."""
    return [(key.lstrip("+~"), value) for key, _, value in (arg.partition("=") for arg in argv)]


def _group_options(message: str, group: str) -> list[str]:
    """A config group's choices in the search path Hydra's error lists (folders and packages of yaml files)."""
    names: set[str] = set()
    for scheme, where in re.findall(r"path=(file|pkg)://(\S+)", message):
        try:
            folder = Path(where) if scheme == "file" else Path(str(resources.files(where)))
        except (ModuleNotFoundError, TypeError):
            continue
        names.update(path.stem for path in (folder / group).glob("*.yaml"))
    return sorted(names)


def _unknown_key(full_key: str, parent: object, argv: Sequence[str]) -> str:
    """``trainer.max_step=3``: the nearest key at that level, and where every option is listed."""
    override = next((arg for arg in argv if arg.partition("=")[0] == full_key), full_key)
    prefix, _, key = full_key.rpartition(".")
    line = f"{override}: there is no option {full_key}"
    keys = [str(k) for k in parent.keys()] if isinstance(parent, DictConfig) else []
    close = difflib.get_close_matches(key, keys, n=1)
    if close:
        line += f"; did you mean {prefix + '.' if prefix else ''}{close[0]}?"
    return f"{line} (--cfg job prints every option)"


def hydra_value(value: str | Path) -> str:
    """A path as a Hydra override value, quoted when it holds characters (spaces, commas, '=') Hydra would parse."""
    text = str(value)
    if re.fullmatch(r"[\w./:+-]+", text):
        return text
    escaped = re.sub(r"(\\+)(?='|$)", r"\1\1", text).replace(
        "'", "\\'"
    )  # Hydra: backslashes are literal unless before a quote
    return f"'{escaped}'"
