"""ModelUserEncoder reads history items from the finished item table; it must equal the tower path."""

from __future__ import annotations

import numpy as np
import pytest

from recx.inference.run import load_run


@pytest.mark.parametrize("tower", ["id", "text"])
def test_user_vectors_from_the_item_table_equal_the_tower_path(trained, tower):
    run = load_run(trained("sasrec", tower))
    histories, _ = run.dataset.split("test")
    lookup = run.encoder.encode(histories)  # inputs are rows of item_table()
    direct = run.encoder.model.user_vectors(list(histories), run.encoder.max_len, 7).numpy()  # the tower at every position
    np.testing.assert_allclose(lookup, direct, rtol=1e-5, atol=1e-6)
