"""The suite cleans up after itself: one $TEXNET_CACHE of its own, the folder pytest_sessionfinish removes."""

from __future__ import annotations

import os
import sys


def test_the_suite_has_one_cache_of_its_own() -> None:
    """Importing conftest under a second name (``from tests.conftest import ...``) runs it again: a second cache
    folder, never removed (37 MB of ONNX graphs left in /tmp per run). Test modules import it as ``conftest``."""
    copies = {name for name, module in sys.modules.items() if hasattr(module, "TEST_CACHE") and "conftest" in name}
    assert copies == {"conftest"}, f"conftest imported as {sorted(copies)}: use 'from conftest import ...'"
    assert os.environ["TEXNET_CACHE"] == str(sys.modules["conftest"].TEST_CACHE)
