"""recx: modality-based sequential recommendation (ID vs text/image/CLIP item towers)."""

from recx import compat as _compat

__version__ = "0.1.0"

# torchvision (and timm / open_clip / transformers' image code through it) must be guarded
# before its first import; the hook runs the guard lazily, so `import recx` stays cheap.
_compat.install_import_hook()
