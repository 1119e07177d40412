"""Item towers on hand-made features."""

import torch

from recx.trainer.towers import FeatureTower, whiten


def test_whiten_decorrelates_present_rows_and_keeps_absent_ones_zero():
    g = torch.Generator().manual_seed(0)
    mix = torch.tensor([[3.0, 0.0, 0.0], [2.0, 0.5, 0.0], [1.0, 1.0, 0.2]])
    features = torch.randn(41, 3, generator=g) @ mix + 5.0  # correlated, far from the origin
    present = torch.ones(41, dtype=torch.bool)
    present[0] = present[7] = False
    out = whiten(features, present)
    x = out[present].double()
    assert torch.allclose(x.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-5)
    cov = (x - x.mean(0)).T @ (x - x.mean(0)) / (len(x) - 1)
    torch.testing.assert_close(cov, torch.eye(3, dtype=torch.float64) / 3, rtol=1e-4, atol=1e-5)  # unit variance / F
    assert out[0].abs().sum() == 0 and out[7].abs().sum() == 0


def test_whiten_drops_directions_the_items_do_not_span():
    # 4 present items in 6 dimensions span at most 3 centred directions: no blow-up, and the
    # spanned part is still white (unit variance / F along each spanned direction)
    g = torch.Generator().manual_seed(1)
    features = torch.zeros(5, 6)
    features[1:] = torch.randn(4, 6, generator=g)
    present = torch.tensor([False, True, True, True, True])
    out = whiten(features, present)
    x = out[present].double()
    assert torch.isfinite(out).all() and x.abs().max() < 1.0
    eig = torch.linalg.eigvalsh((x - x.mean(0)).T @ (x - x.mean(0)) / 3)
    torch.testing.assert_close(eig[-3:], torch.full((3,), 1 / 6, dtype=torch.float64), rtol=1e-4, atol=1e-6)
    assert eig[:-3].abs().max() < 1e-8


def test_feature_tower_whitened_option():
    features = torch.tensor([[0.0, 0.0], [1.0, 2.0], [2.0, 4.1], [3.0, 5.9], [0.0, 0.0]])
    present = torch.tensor([False, True, True, True, False])
    plain = FeatureTower(features, present, dim=4)
    white = FeatureTower(features, present, dim=4, whitened=True)
    assert torch.equal(plain.features, features)
    torch.testing.assert_close(white.features, whiten(features, present))
    # padding is zero and the absent item 4 gets the learned missing vector in both
    for tower in (plain, white):
        out = tower(torch.tensor([0, 4]))
        assert out[0].abs().sum() == 0
        torch.testing.assert_close(out[1], tower.missing.detach())
