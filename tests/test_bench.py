"""The benchmarks users run on their own networks and photos (bench/quality_vs_gatys.py, bench/texture_vs_gatys.py)
say what is wrong with a bad argument in one line, as stylize.py does."""

import pytest
from conftest import run_script


@pytest.mark.parametrize("script", ["quality_vs_gatys.py", "texture_vs_gatys.py"])
def test_an_unknown_checkpoint_is_one_line(script):
    done = run_script(f"bench/{script}", "--checkpoint", "no-such-model")
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("error: 'no-such-model' is neither a checkpoint file nor a shipped model")
    ), done.stderr
    assert "Traceback" not in done.stderr
