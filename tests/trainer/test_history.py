"""The history term (recx/trainer/history.py): its values, its training form inside the losses
(checked against loop references), its configuration, and that training moves it the right way."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from recx.trainer.config import ConfigError, TrainConfig
from recx.trainer.data import Batch
from recx.trainer.history import HistoryTerm, log_bucket
from recx.trainer.losses.debiased_ce import DebiasedCrossEntropy, log_popularity
from recx.trainer.losses.full_ce import FullCrossEntropy


def _filled(mode: str, num_items: int, window: int) -> HistoryTerm:
    """A term with distinct values per part: recency r, count 10 c, item 100 i (item mode)."""
    term = HistoryTerm(mode, num_items, window)
    with torch.no_grad():
        term.recency.copy_(torch.arange(term.recency.numel(), dtype=torch.float32))
        term.count.copy_(10 * torch.arange(term.count.numel(), dtype=torch.float32))
        term.item.copy_(100 * torch.arange(term.item.numel(), dtype=torch.float32))
    return term


def test_log_buckets():
    x = torch.tensor([0, 1, 2, 3, 4, 7, 8, 63, 64, 1000])
    assert log_bucket(x, 8).tolist() == [0, 1, 2, 2, 3, 3, 4, 6, 7, 7]
    assert log_bucket(x, 5).tolist() == [0, 1, 2, 2, 3, 3, 4, 4, 4, 4]


def test_prefix_scores_by_hand():
    """Row [pad, 3, 5, 3, 7, 3]: each prediction position scores the items it has seen, each
    item once, at its latest occurrence (recency d buckets, count c buckets, item propensity)."""
    term = _filled("item", 10, 6)
    out = term.prefix_scores(torch.tensor([[0, 3, 5, 3, 7, 3]]))[0]
    want = torch.zeros(6, 6)
    want[1, 1] = 300  # t=1: item 3, d=0, c=1
    want[2, 1], want[2, 2] = 301, 500  # t=2: 3 (d=1), 5 (d=0)
    want[3, 2], want[3, 3] = 501, 310  # t=3: 5 (d=1), 3 again (d=0, c=2)
    want[4, 2], want[4, 3], want[4, 4] = 502, 311, 700  # 5 at d=2 -> bucket 2
    want[5, 2], want[5, 4], want[5, 5] = 502, 701, 320  # 5 at d=3 -> bucket 2; 3 three times -> count bucket 2
    assert torch.equal(out, want)


@pytest.mark.parametrize("mode", ["bias", "recency", "item"])
def test_last_scores_are_the_prefix_scores_of_the_last_position(mode):
    torch.manual_seed(0)
    term = HistoryTerm(mode, 12, 9)
    with torch.no_grad():
        for p in term.parameters():
            p.normal_()
    padded = torch.randint(0, 6, (40, 9))  # many repeats, some padding
    items, values = term.last_scores(padded)
    prefix = term.prefix_scores(padded)[:, -1]  # [U, W]
    assert torch.equal(values, prefix)
    for u in range(len(padded)):
        real = padded[u][padded[u] > 0]
        assert sorted(items[u][items[u] > 0].tolist()) == sorted(set(real.tolist()))  # each history item once


def test_scores_reads_the_window_of_each_history():
    term = _filled("recency", 20, 4)
    scores = term.scores([np.array([9, 1, 2, 3, 4]), np.array([5]), np.array([], dtype=np.int64)])
    assert scores.items.tolist() == [[1, 2, 3, 4], [0, 0, 0, 5], [0, 0, 0, 0]]  # item 9 is outside the window
    assert scores.values.tolist() == [[2, 2, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def _batch(inputs, targets):
    return Batch(torch.tensor(inputs), torch.tensor(targets), torch.arange(len(inputs)))


def _reference_debiased(states, batch, table, log_p, history, mask_scope):
    """One position at a time over the batch's distinct items.  With ``history`` [B, L, L] the
    past items are scored with the term; without, they are masked like the row's other items
    (sequence scope) or alone (past scope).  The target always stays."""
    inputs, targets = batch.inputs, batch.targets
    cand = sorted({int(x) for x in torch.cat([inputs.flatten(), targets.flatten()]) if x > 0})
    losses = []
    for b in range(inputs.shape[0]):
        for t in range(inputs.shape[1]):
            target = int(targets[b, t])
            if target == 0:
                continue
            past = {int(x) for x in inputs[b, : t + 1] if x > 0}
            row_items = {int(x) for x in torch.cat([inputs[b], targets[b]]) if x > 0}
            logits = []
            for j in cand:
                s = float(states[b, t] @ table[j]) - float(log_p[j])
                if j != target and j in past and history is None:
                    s = -math.inf
                elif j in past and history is not None:
                    s += sum(float(history[b, t, p]) for p in range(t + 1) if int(inputs[b, p]) == j)
                elif j != target and mask_scope == "sequence" and j in row_items:
                    s = -math.inf
                logits.append(s)
            losses.append(-F.log_softmax(torch.tensor(logits), 0)[cand.index(target)])
    return torch.stack(losses).mean()


@pytest.mark.parametrize("mask_scope", ["sequence", "past"])
@pytest.mark.parametrize("gradient", ["term", "all"])
def test_debiased_ce_with_history_equals_a_loop_reference(table_items, mask_scope, gradient):
    """``all``: one softmax with the past items scored by the term; ``term``: the term-free loss
    plus that softmax (each half trains its own part, see the gradient test)."""
    torch.manual_seed(1)
    table = torch.randn(11, 4)
    batch = _batch([[0, 2, 3, 2, 5], [1, 4, 1, 4, 6]], [[0, 3, 2, 5, 2], [4, 1, 4, 6, 9]])
    states = torch.randn(2, 5, 4)
    history = _filled("item", 10, 5).prefix_scores(batch.inputs).detach() / 100  # logits in a sensible range
    counts = torch.arange(11).float() + 1
    got = DebiasedCrossEntropy(counts, mask_scope=mask_scope, history_gradient=gradient)(states, batch, table_items(table), history)
    want = _reference_debiased(states, batch, table, log_popularity(counts), history, mask_scope)
    if gradient == "term":
        want = want + _reference_debiased(states, batch, table, log_popularity(counts), None, mask_scope)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    plain = DebiasedCrossEntropy(counts, mask_scope=mask_scope)(states, batch, table_items(table))
    assert plain.item() == pytest.approx(_reference_debiased(states, batch, table, log_popularity(counts), None, mask_scope).item(), rel=1e-5)


@pytest.mark.parametrize("gradient", ["term", "all"])
def test_full_ce_with_history_equals_a_reference(table_items, gradient):
    torch.manual_seed(2)
    table = torch.randn(9, 4)
    batch = _batch([[0, 2, 3, 2], [1, 4, 1, 4]], [[0, 3, 2, 5], [4, 1, 4, 6]])
    states = torch.randn(2, 4, 4)
    history = _filled("recency", 8, 4).prefix_scores(batch.inputs).detach()
    got = FullCrossEntropy(history_gradient=gradient)(states, batch, table_items(table), history)
    with_term, plain = [], []
    for b in range(2):
        for t in range(4):
            if batch.targets[b, t] == 0:
                continue
            logits = states[b, t] @ table[1:].T
            plain.append(F.cross_entropy(logits[None], batch.targets[b, t].view(1) - 1))
            for p in range(t + 1):
                if batch.inputs[b, p] > 0:
                    logits = logits.clone()
                    logits[batch.inputs[b, p] - 1] += history[b, t, p]
            with_term.append(F.cross_entropy(logits[None], batch.targets[b, t].view(1) - 1))
    want = torch.stack(with_term).mean() + (torch.stack(plain).mean() if gradient == "term" else 0)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)


@pytest.mark.parametrize("loss_cls", [DebiasedCrossEntropy, FullCrossEntropy])
def test_history_gradient_decides_what_learns_from_the_past_items(loss_cls, table_items):
    """``term``: the encoder's gradients are exactly those of the term-free loss (it learns as if
    the model had no term) while the term learns; ``all``: the past items move the encoder too."""
    batch = _batch([[1, 2, 1, 3]], [[2, 1, 3, 4]])

    def grads(gradient):
        torch.manual_seed(0)
        table, states = torch.randn(6, 3, requires_grad=True), torch.randn(1, 4, 3, requires_grad=True)
        term = _filled("recency", 5, 4)
        make = (lambda **kw: loss_cls(torch.ones(6), **kw)) if loss_cls is DebiasedCrossEntropy else loss_cls
        history = term.prefix_scores(batch.inputs) / 10 if gradient else None
        make(**({"history_gradient": gradient} if gradient else {}))(states, batch, table_items(table), history).backward()
        return states.grad, table.grad, None if term.recency.grad is None else term.recency.grad.abs().sum()

    plain, term, full = grads(None), grads("term"), grads("all")
    torch.testing.assert_close(term[0], plain[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(term[1], plain[1], rtol=0, atol=1e-6)
    assert term[2] > 0 and full[2] > 0
    assert not torch.allclose(full[0], plain[0], atol=1e-4)


def test_config_applies_only_where_the_history_is_the_causal_past():
    assert TrainConfig().model.history_term in ("off", "bias", "recency", "item")
    for options in ({"model": "bert4rec", "loss": "full_ce"}, {"loss": "bce"}, {"loss": "sampled_softmax"}):
        cfg = TrainConfig.from_options(history_term="recency", **options)
        assert cfg.history_mode == "off"
        assert "--history-term applies to --model sasrec | gru4rec with --loss debiased_ce | full_ce" in cfg.inapplicable({"history_term"})[0]
    with pytest.raises(ConfigError, match="--history-term"):
        TrainConfig.from_options(history_term="sometimes")
    assert TrainConfig.from_options(history_term="item", model="gru4rec").history_mode == "item"


def _repeat_dataset(root, repeats: bool):
    """Users walk through a category; with ``repeats`` every third item is a recent one again."""
    from recx.data.dataset import Item, write_dataset

    rng = np.random.default_rng(0)
    n_items = 40
    seqs = []
    for u in range(80):
        seq = []
        for i in range(10):
            if repeats and i >= 2 and i % 3 == 2:
                seq.append(seq[-2])
            else:
                options = [x for x in range(u % 4 + 1, n_items + 1, 4) if x not in seq]
                seq.append(int(rng.choice(options)))
        seqs.append(seq)
    return write_dataset(root, [Item(f"i{k}") for k in range(n_items)], [f"u{u}" for u in range(80)], seqs, {"name": "repeats"})


@pytest.mark.parametrize("repeats", [True, False])
def test_training_learns_the_sign_of_repeating(tmp_path, repeats):
    """Where users buy the item two steps back again, the term for d = 1 grows positive; where
    they never repeat, every history item is pushed down."""
    from recx.trainer import fit, load_trained

    ds = _repeat_dataset(tmp_path / "data", repeats)
    cfg = TrainConfig.from_options(dataset=str(ds.path), hidden=16, layers=1, heads=2, max_len=10, epochs=30, batch_size=8, lr=1e-2,
                                   history_term="recency", runs_dir=str(tmp_path / "runs"), name="r", seed=0, precision="fp32",
                                   patience=100)
    model, _, _ = load_trained(fit(cfg, progress=False).run_dir)
    recency = model.history_term.recency.detach()
    if repeats:
        assert recency[1] > 0 and recency[1] - recency[[0, 2, 3]].max() > 0.3  # d = 1: the item two steps back comes again
    else:
        assert (recency[:4] < -0.5).all()


def test_format_4_runs_load_without_a_term(tmp_path):
    """Runs written before the term existed load as they trained, whatever today's default."""
    from recx.trainer.runconfig import migrate

    cfg = TrainConfig.from_options(history_term="recency")
    raw = {"run_format": 4, "config": {k: v for k, v in cfg.to_dict().items()}}
    del raw["config"]["model"]["history_term"]
    out = migrate(json.loads(json.dumps(raw)))
    assert out["run_format"] == TrainConfig.FORMAT and out["config"]["model"]["history_term"] == "off"


def test_with_gradient_term_the_encoder_trains_exactly_as_without_a_term(tmp_path):
    """--history-gradient term: the encoder's weights after training equal a run without a term
    (the term only learns beside it, and clips on its own)."""
    from recx.trainer import fit
    from recx.trainer.checkpoint import load_checkpoint

    ds = _repeat_dataset(tmp_path / "data", repeats=True)
    weights = {}
    for term in ("off", "recency"):
        cfg = TrainConfig.from_options(dataset=str(ds.path), hidden=16, layers=1, heads=2, max_len=10, epochs=3, batch_size=16,
                                       history_term=term, runs_dir=str(tmp_path / "runs"), name=term, seed=0, precision="fp32", grad_clip=0.5)
        weights[term] = load_checkpoint(fit(cfg, progress=False).run_dir / "last.pt")["model"]
    assert any(k.startswith("history_term.") for k in weights["recency"])
    for key, value in weights["off"].items():
        torch.testing.assert_close(weights["recency"][key], value, rtol=0, atol=1e-6)


def test_validation_decides_whether_rankings_add_the_term(tmp_path):
    """Under --history-gradient term, validation ranks with and without the term and keeps the
    better; an inactive term adds nothing on any path."""
    from recx.inference.encoders import ModelUserEncoder
    from recx.trainer.loop import evaluate_split
    from recx.trainer.registry import build_model

    ds = _repeat_dataset(tmp_path / "data", repeats=True)  # every valid target is the item two steps back
    cfg = TrainConfig.from_options(dataset=str(ds.path), hidden=8, layers=1, heads=2, max_len=10, history_term="recency")
    model = build_model(cfg, ds)
    term = model.history_term
    with torch.no_grad():
        term.recency[1] = 50.0  # d = 1 first: the right call here
    assert evaluate_split(model, ds, "valid", cfg, choose_term=True)["hr@10"] == 1.0 and term.is_active
    with torch.no_grad():
        term.recency[1] = -50.0  # d = 1 last: worse than no term
    chosen = evaluate_split(model, ds, "valid", cfg, choose_term=True)
    assert not term.is_active and chosen["hr@10"] < 1.0
    model.history_term = None
    assert chosen == evaluate_split(model, ds, "valid", cfg)  # exactly the ranking without a term
    model.history_term = term
    assert ModelUserEncoder(model, 10).history_scores(ds.split("test")[0]) is None
    assert not term.scores(ds.split("test")[0]).items.any()
