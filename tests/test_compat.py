"""The torchvision guard: torchvision, timm and open_clip import next to CPU torch."""

import subprocess
import sys


def test_vision_stack_imports_after_recx():
    code = "import recx, torchvision, timm, open_clip; import transformers.image_utils; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def test_import_recx_does_not_load_torch():
    code = "import sys, recx, recx.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False", "recx.cli must import torch lazily so `recx --help` is fast"
