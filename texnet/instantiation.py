"""Config nodes with a ``_target_`` (data, trainer, callbacks, loggers, optimisers) built by Hydra's ``instantiate``,
with one line for what the user can fix instead of Hydra's traceback (which ends in a HYDRA_FULL_ERROR hint).

Kept apart from texnet.errors, which the torch-free entry points import: this module imports Lightning.
"""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from texnet.errors import TexnetError, user_error

# What a constructor raises for options it rejects (a wrong name, type or value, a package the option needs) or Hydra
# for a _target_ it cannot import: the user's to fix, one line. Anything else is a bug and keeps its traceback.
REJECTED_OPTION = (TypeError, ValueError, ImportError, MisconfigurationException)


def build_node(node: DictConfig | dict, where: str, **kwargs: Any) -> Any:
    """``instantiate(node, **kwargs)`` for the config node at `where` (``data``, ``trainer``, ``callbacks.<name>``,
    ``logger.<name>``, ``optim.<key>._target_=...``); a ``_target_`` there that cannot be found, or options its
    constructor rejects, is a one-line TexnetError naming `where`, with the library's reason."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        if user_error(err) is not None:  # texnet's own checks (the data module's): already one line
            raise
        if not isinstance(err.__cause__, REJECTED_OPTION):
            raise
        raise TexnetError(f"{where} cannot be built: {instantiation_reason(err)}") from None


def instantiation_reason(err: BaseException) -> str:
    """One line of why Hydra's ``instantiate`` failed (its InstantiationException `err`): the target it could not
    find, or the target it called and the first line of what its constructor raised (a wrong or out-of-range option,
    a package the option needs)."""
    reason = str(err).strip().splitlines()[0].removesuffix(", set env var HYDRA_FULL_ERROR=1 to see chained exception.")
    if reason.startswith("Error in call to target") and err.__cause__ is not None:
        reason = f"{reason} {str(err.__cause__).strip().splitlines()[0]}"
    return reason
