"""recx.evaluate is the metrics library: importing every module of it loads nothing above it."""

import subprocess
import sys
from pathlib import Path

import recx.evaluate

ABOVE = ("recx.inference", "recx.trainer", "recx.workspace", "recx.data", "recx.ensemble", "recx.evalrun", "recx.options", "recx.cli")


def test_evaluate_imports_nothing_above_it():
    modules = sorted(f"recx.evaluate.{p.stem}" for p in Path(recx.evaluate.__file__).parent.glob("*.py") if p.stem != "__init__")
    code = (f"import sys; import {', '.join(modules)}; "
            f"print(sorted(m for m in sys.modules if m.startswith({ABOVE!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_run_loading_lives_in_evalrun():
    import recx.evalrun

    assert not hasattr(recx.evaluate, "run") and "run" not in recx.evaluate.__all__
    assert callable(recx.evalrun.run) and callable(recx.evalrun.evaluate_models)
