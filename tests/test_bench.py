"""The benchmarks users run on their own networks and photos (bench/quality_vs_gatys.py, bench/texture_vs_gatys.py)
say what is wrong with a bad argument in one line, as stylize.py does."""

import os
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.parametrize("script", ["quality_vs_gatys.py", "texture_vs_gatys.py"])
def test_an_unknown_checkpoint_is_one_line(script):
    done = subprocess.run(
        [sys.executable, f"bench/{script}", "--checkpoint", "no-such-model"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TEXNET_OFFLINE": "1"},
    )
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("error: 'no-such-model' is neither a checkpoint file nor a shipped model")
    ), done.stderr
    assert "Traceback" not in done.stderr
