"""Item towers on hand-made features: whitening, the linear / mlp / moe adapters, feature towers
(hand-made and built from H5 stores by ``build_tower``), and the add / concat / gated fusions."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from recx.trainer.towers import FeatureTower, FusionTower, IdTower, WhiteningExperts, make_adapter, whiten


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


# -- adapters ---------------------------------------------------------------------------------

def _gelu(v: float) -> float:
    return 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0)))


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def _matvec(w: list[list[float]], x: list[float]) -> list[float]:
    return [sum(a * b for a, b in zip(row, x)) for row in w]


def test_unknown_adapter_and_fusion_are_refused():
    with pytest.raises(ValueError, match="unknown adapter 'conv'; expected linear, mlp or moe"):
        make_adapter("conv", 3, 2)
    with pytest.raises(ValueError, match="unknown fusion 'max'; expected add, concat or gated"):
        FusionTower([IdTower(3, 2), IdTower(3, 2)], "max")


@pytest.mark.parametrize("kind", ["linear", "mlp", "moe"])
def test_adapters_map_any_leading_shape_to_out_dim(kind):
    adapter = make_adapter(kind, 5, 3).eval()
    x = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(0))
    out = adapter(x)
    assert out.shape == (2, 4, 3)
    torch.testing.assert_close(out[1, 2], adapter(x[1, 2]))  # row by row is the same map
    torch.testing.assert_close(out, adapter(x))  # eval: no dropout, deterministic


def test_mlp_adapter_hand_set_weights():
    """Linear(3 -> 4 * 2) -> GELU -> dropout -> Linear(8 -> 2), checked with plain floats."""
    mlp = make_adapter("mlp", 3, 2).eval()
    first, second = _linears(mlp)
    assert (first.in_features, first.out_features, second.in_features, second.out_features) == (3, 8, 8, 2)
    w1 = [[(r - c) / 4.0 for c in range(3)] for r in range(8)]
    b1 = [0.1 * r - 0.3 for r in range(8)]
    w2 = [[((r + 2 * c) % 5 - 2) / 3.0 for c in range(8)] for r in range(2)]
    b2 = [0.5, -0.25]
    with torch.no_grad():
        first.weight.copy_(torch.tensor(w1)), first.bias.copy_(torch.tensor(b1))
        second.weight.copy_(torch.tensor(w2)), second.bias.copy_(torch.tensor(b2))
    for x in ([1.0, -2.0, 0.5], [0.0, 0.0, 0.0], [3.0, 1.0, -1.0]):
        hidden = [_gelu(v + b) for v, b in zip(_matvec(w1, x), b1)]
        want = [v + b for v, b in zip(_matvec(w2, hidden), b2)]
        torch.testing.assert_close(mlp(torch.tensor(x)), torch.tensor(want), rtol=1e-5, atol=1e-6)


def test_mlp_adapter_dropout_only_while_training():
    mlp = make_adapter("mlp", 4, 3, dropout=0.5)
    with torch.no_grad():
        for lin in _linears(mlp):
            lin.weight.fill_(0.3)
    x = torch.ones(64, 4)
    mlp.train()
    assert not torch.equal(mlp(x), mlp(x))  # units dropped at random
    mlp.eval()
    torch.testing.assert_close(mlp(x), torch.full((64, 3), 12 * 0.3 * _gelu(1.2)))  # 4 * 3 hidden units


def test_moe_adapter_is_eight_whitening_experts():
    moe = make_adapter("moe", 6, 3, dropout=0.3)
    assert isinstance(moe, WhiteningExperts)
    assert moe.weight.shape == (8, 6, 3) and moe.bias.shape == (8, 6) and moe.gate.weight.shape == (8, 6)
    assert moe.dropout.p == 0.3


def _moe(in_dim, out_dim, k, bias, weight, gate):
    moe = WhiteningExperts(in_dim, out_dim, num_experts=k, dropout=0.0).eval()
    with torch.no_grad():
        moe.bias.copy_(torch.tensor(bias)), moe.weight.copy_(torch.tensor(weight)), moe.gate.weight.copy_(torch.tensor(gate))
    return moe


def test_moe_adapter_hand_set_weights():
    """sum_k softmax(G x)_k (x - b_k) W_k with K = 2 experts, 2 -> 2, checked with plain floats."""
    bias = [[1.0, 0.0], [0.0, -1.0]]
    weight = [[[1.0, 2.0], [0.0, 1.0]], [[-1.0, 0.0], [0.5, 0.5]]]  # [K, in, out]
    gate = [[1.0, 0.0], [0.0, 2.0]]  # [K, in]
    moe = _moe(2, 2, 2, bias, weight, gate)
    for x in ([1.0, 1.0], [2.0, -1.0], [0.0, 0.0]):
        logits = _matvec(gate, x)
        g = [math.exp(v) / sum(math.exp(u) for u in logits) for v in logits]
        want = [0.0, 0.0]
        for k in range(2):
            centred = [a - b for a, b in zip(x, bias[k])]
            for o in range(2):
                want[o] += g[k] * sum(centred[i] * weight[k][i][o] for i in range(2))
        torch.testing.assert_close(moe(torch.tensor(x)), torch.tensor(want), rtol=1e-5, atol=1e-6)


def test_moe_gate_weights_sum_to_one():
    """Identical experts give that expert's output whatever the gate says, and the initial (zero)
    gate is the plain mean of the experts."""
    g = torch.Generator().manual_seed(3)
    b, w = torch.randn(4, generator=g), torch.randn(4, 3, generator=g)
    moe = _moe(4, 3, 5, b.expand(5, 4).tolist(), w.expand(5, 4, 3).tolist(), torch.randn(5, 4, generator=g).mul(3).tolist())
    x = torch.randn(6, 4, generator=g)
    torch.testing.assert_close(moe(x), (x - b) @ w, rtol=1e-5, atol=1e-5)

    fresh = WhiteningExperts(4, 3, num_experts=5, dropout=0.0)
    assert fresh.gate.weight.abs().sum() == 0
    experts = torch.stack([(x - fresh.bias[k].detach()) @ fresh.weight[k].detach() for k in range(5)])
    torch.testing.assert_close(fresh(x), experts.mean(0), rtol=1e-5, atol=1e-7)


# -- feature towers with mlp / moe adapters ---------------------------------------------------

FEATURES = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 0.5, 2.0], [0.3, 0.3, 0.3]])
PRESENT = torch.tensor([True, True, False, True, True])  # row 0 is padding whatever it says; item 2 lacks the modality


def _nonzero_biases(tower: nn.Module) -> None:
    """Biases away from their zero init, so an adapter maps a zero feature row to a non-zero vector."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in tower.adapter.named_parameters():
            p.add_(torch.randn(p.shape, generator=g) * (0.5 if "bias" in name else 0.2))


@pytest.mark.parametrize("adapter", ["linear", "mlp", "moe"])
def test_feature_tower_rows_padding_and_absent_items(adapter):
    tower = FeatureTower(FEATURES, PRESENT, dim=4, adapter=adapter).eval()
    _nonzero_biases(tower)
    assert not torch.allclose(tower.adapter(torch.zeros(3)), torch.zeros(4))  # so the padding check below can fail
    table = tower.table()
    assert table.shape == (5, 4)
    assert torch.equal(table[0], torch.zeros(4))
    for i in (1, 3, 4):
        torch.testing.assert_close(table[i], tower.adapter(FEATURES[i]))
    assert torch.equal(table[2], tower.missing.detach())
    torch.testing.assert_close(tower(torch.tensor([[4, 0, 2], [1, 3, 3]])), table[torch.tensor([[4, 0, 2], [1, 3, 3]])])


@pytest.mark.parametrize("adapter", ["linear", "mlp", "moe"])
def test_feature_tower_gradients(adapter):
    tower = FeatureTower(FEATURES, PRESENT, dim=4, adapter=adapter).eval()
    _nonzero_biases(tower)
    assert {n for n, p in tower.named_parameters()} == {"missing"} | {f"adapter.{n}" for n, _ in tower.adapter.named_parameters()}
    assert not tower.features.requires_grad  # the store's features stay frozen
    tower(torch.tensor([1, 2, 2, 0, 3])).sum().backward()
    # d(sum)/d(missing) = one per occurrence of the absent item 2; padding contributes nothing
    assert torch.equal(tower.missing.grad, torch.full((4,), 2.0))
    # every adapter weight gets a gradient (moe: through every expert and the gate)
    for name, p in tower.adapter.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name

    tower.zero_grad()
    tower(torch.tensor([0, 0])).sum().backward()  # padding only: no gradient anywhere
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in tower.parameters())


# -- fusions ----------------------------------------------------------------------------------

# two ID towers over items 1..3, dim 2, with hand-set rows
E1 = [[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [1.0, -1.0]]
E2 = [[0.0, 0.0], [0.5, 0.5], [-1.0, 0.0], [2.0, 1.0]]


def _fusion(mode: str) -> FusionTower:
    towers = []
    for rows in (E1, E2):
        t = IdTower(3, 2)
        with torch.no_grad():
            t.embedding.weight.copy_(torch.tensor(rows))
        towers.append(t)
    return FusionTower(towers, mode)


def test_add_fusion_hand_computed():
    fusion = _fusion("add")
    want = [[a + b for a, b in zip(r1, r2)] for r1, r2 in zip(E1, E2)]
    assert torch.equal(fusion.table(), torch.tensor(want))


def test_concat_fusion_hand_computed():
    fusion = _fusion("concat")
    w = [[1.0, 0.0, 2.0, -1.0], [0.5, 1.0, 0.0, 3.0]]  # [D, 2D]
    b = [0.25, -0.5]
    with torch.no_grad():
        fusion.project.weight.copy_(torch.tensor(w)), fusion.project.bias.copy_(torch.tensor(b))
    want = [[0.0, 0.0]] + [[v + c for v, c in zip(_matvec(w, E1[i] + E2[i]), b)] for i in (1, 2, 3)]
    # item 1: cat (1, 0, .5, .5) -> (1 + 1 - .5 + .25, .5 + 1.5 - .5) = (1.75, 1.5)
    assert want[1] == [1.75, 1.5]
    table = fusion.table()
    torch.testing.assert_close(table, torch.tensor(want))
    assert torch.equal(table[0], torch.zeros(2))  # padding stays zero although the projection has a bias
    items = torch.tensor([[3, 0, 1], [2, 2, 0]])
    torch.testing.assert_close(fusion(items), table[items])


def test_gated_fusion_hand_computed():
    fusion = _fusion("gated")
    # a fresh gate (zero weights) weighs the towers equally: the mean
    torch.testing.assert_close(fusion.table(), (torch.tensor(E1) + torch.tensor(E2)) / 2)
    w = [[1.0, 0.0, 0.0, 1.0], [0.0, -1.0, 2.0, 0.0]]  # [k=2, 2D]
    b = [0.0, 0.5]
    with torch.no_grad():
        fusion.gate.weight.copy_(torch.tensor(w)), fusion.gate.bias.copy_(torch.tensor(b))
    want = [[0.0, 0.0]]
    for i in (1, 2, 3):
        logits = [v + c for v, c in zip(_matvec(w, E1[i] + E2[i]), b)]
        g = [math.exp(v) / (math.exp(logits[0]) + math.exp(logits[1])) for v in logits]
        want.append([g[0] * x + g[1] * y for x, y in zip(E1[i], E2[i])])
    table = fusion.table()
    torch.testing.assert_close(table, torch.tensor(want))
    assert torch.equal(table[0], torch.zeros(2))
    items = torch.tensor([[3, 0, 1], [2, 2, 0]])
    torch.testing.assert_close(fusion(items), table[items])
    fusion(items).sum().backward()
    assert fusion.gate.weight.grad.abs().sum() > 0  # the gate learns


# -- feature towers built from H5 stores ------------------------------------------------------

N_ITEMS, F = 8, 5
WITH_IMAGE = {1, 2, 4, 5, 7}  # items 3, 6, 8 have no image
WITH_TEXT = {1, 2, 3, 5, 6, 8}  # items 4, 7 have no text


@pytest.fixture
def image_dataset(tmp_path):
    from recx.data.dataset import Item, write_dataset

    items = [Item(f"i{k}", text=f"item {k}" if k in WITH_TEXT else None, image=f"img/{k}.png" if k in WITH_IMAGE else None)
             for k in range(1, N_ITEMS + 1)]
    seqs = [[1, 2, 3, 4], [5, 6, 7, 8], [2, 4, 6, 8]]
    return write_dataset(tmp_path / "data", items, ["u0", "u1", "u2"], seqs, {"name": "towers"}, image_root=tmp_path)


def _write_store(ds, path, rows: set[int], modality: str, extra: dict | None = None):
    """A float32 store whose item i row is (i, -i, i / 2, 1, 0) + a small per-item pattern: known values."""
    from recx.featurize.store import StoreWriter

    present = sorted(rows)
    values = np.array([[i, -i, i / 2, 1.0, 0.1 * (i % 3)] for i in present], dtype=np.float32)
    attrs = {"modality": modality, "catalog_fingerprint": ds.catalog_fingerprint, "item_count": ds.num_items, **(extra or {})}
    w = StoreWriter(path, ds.num_items + 1, F, attrs, dtype="float32", planned=len(present))
    w.write_rows(np.array(present), values)
    w.finish()
    expected = np.zeros((ds.num_items + 1, F), dtype=np.float32)
    expected[present] = values
    return str(path), torch.from_numpy(expected)


def _tower(item_tower: str, ds, stores: dict[str, str], **options):
    from recx.trainer.config import TrainConfig
    from recx.trainer.model import build_tower

    torch.manual_seed(0)
    cfg = TrainConfig.from_options(item_tower=item_tower, hidden=6, stores=stores, **options)
    return build_tower(cfg, ds).eval()


def _check_feature_rows(tower: FeatureTower, expected: torch.Tensor, present: set[int]):
    table = tower.table()
    assert table.shape == (N_ITEMS + 1, 6)
    assert torch.equal(table[0], torch.zeros(6))
    for i in range(1, N_ITEMS + 1):
        if i in present:
            torch.testing.assert_close(table[i], tower.adapter(expected[i]), rtol=1e-6, atol=1e-7)
        else:  # documented: items without the modality get the learned missing vector
            assert torch.equal(table[i], tower.missing.detach()), i
    items = torch.tensor([[0, 3, 1, 7], [8, 8, 2, 0]])
    torch.testing.assert_close(tower(items), table[items])


@pytest.mark.parametrize("adapter", ["linear", "mlp", "moe"])
def test_image_tower_from_an_image_store(image_dataset, tmp_path, adapter):
    path, expected = _write_store(image_dataset, tmp_path / "image.h5", WITH_IMAGE, "image")
    tower = _tower("image", image_dataset, {"image": path}, adapter=adapter)
    assert isinstance(tower, FeatureTower) and isinstance(tower.adapter, type(make_adapter(adapter, F, 6)))
    assert torch.equal(tower.features, expected)  # the store's rows, absent ones zero
    assert tower.present.tolist() == [i in WITH_IMAGE for i in range(N_ITEMS + 1)]
    _nonzero_biases(tower)
    _check_feature_rows(tower, expected, WITH_IMAGE)


@pytest.mark.parametrize("modality,rows", [("image", WITH_IMAGE), ("text", WITH_TEXT)])
def test_clip_tower_from_a_clip_store_of_either_modality(image_dataset, tmp_path, modality, rows):
    """A CLIP store holds one of the CLIP model's towers (images or texts); ``clip`` takes either."""
    path, expected = _write_store(image_dataset, tmp_path / f"clip-{modality}.h5", rows, modality,
                                  {"model": "clip-vit-b-32", "source": "open_clip:ViT-B-32/openai"})
    tower = _tower("clip", image_dataset, {"clip": path})
    assert torch.equal(tower.features, expected)
    _nonzero_biases(tower)
    _check_feature_rows(tower, expected, rows)


def test_image_tower_refuses_a_store_of_another_modality(image_dataset, tmp_path):
    from recx.featurize.store import StoreMismatchError

    path, _ = _write_store(image_dataset, tmp_path / "text.h5", WITH_TEXT, "text")
    with pytest.raises(StoreMismatchError, match=r"modality='text', expected 'image'"):
        _tower("image", image_dataset, {"image": path})


@pytest.mark.parametrize("fusion", ["add", "concat"])
def test_id_plus_image_tower(image_dataset, tmp_path, fusion):
    path, expected = _write_store(image_dataset, tmp_path / "image.h5", WITH_IMAGE, "image")
    tower = _tower("id+image", image_dataset, {"image": path}, fusion=fusion)
    assert isinstance(tower, FusionTower) and tower.mode == fusion
    ids, image = tower.towers
    assert isinstance(ids, IdTower) and isinstance(image, FeatureTower)
    _check_feature_rows(image, expected, WITH_IMAGE)
    parts = torch.cat([ids.table(), image.table()], dim=-1)
    want = ids.table() + image.table() if fusion == "add" else tower.project(parts)
    want[0] = 0.0
    torch.testing.assert_close(tower.table(), want)
