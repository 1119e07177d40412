import os
from pathlib import Path

import pytest


@pytest.fixture
def shared_data():
    """The real data folder (../shared/data next to the repo, or $RECX_SHARED_DATA); skip if absent."""
    env = os.environ.get("RECX_SHARED_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "data"

    def get(name: str, marker: str) -> Path:
        if not (root / name / marker).exists():
            pytest.skip(f"{root / name} not present")
        return root / name

    return get
