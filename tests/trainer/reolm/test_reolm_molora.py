"""Mixture-of-LoRA adapters (ROMA's MoA, `--reo-tuning molora`): zero-init, mean / routed / gated
experts, only adapters train, and `recx train --model reo-lm --reo-tuning molora`."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn import functional as F

from recx.errors import RecxError
from recx.trainer.reolm.molora import (
    ADAPTER,
    MoLoRAAdapter,
    adapters,
    apply_molora,
    set_domains,
)

RANK, ALPHA, EXPERTS = 4, 8.0, 3


def tiny_bert(layers: int = 2):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    return BertModel(cfg).eval()


def adapted(layers: int = 2):
    """(plain backbone, a copy with molora adapters), both in eval mode (no dropout)."""
    plain = tiny_bert(layers)
    model = copy.deepcopy(plain)
    apply_molora(model, RANK, ALPHA, EXPERTS)
    return plain, model.eval()


def ids() -> torch.Tensor:
    return torch.randint(5, 40, (2, 7), generator=torch.Generator().manual_seed(1))


def adapter(model, block: int) -> MoLoRAAdapter:
    return getattr(model.encoder.layer[block], ADAPTER)


def randomize(a: MoLoRAAdapter, experts=None, gate: bool = False) -> None:
    """Known non-zero values in the up-projections of ``experts`` (all by default) and the gate."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for e in range(a.experts) if experts is None else experts:
            a.up.weight[e] = torch.randn(a.rank, a.hidden, generator=g)
            a.up.bias[e] = torch.randn(a.hidden, generator=g)
        if gate:
            a.gate.weight.copy_(torch.randn(a.gate.weight.shape, generator=g))
            a.gate.bias.copy_(torch.randn(a.gate.bias.shape, generator=g))


def experts_by_hand(a: MoLoRAAdapter, x: torch.Tensor) -> torch.Tensor:
    """[B, T, E, H] each expert's scaled output, one expert at a time."""
    z = F.gelu(a.down(x))  # eval: no dropout
    outs = [z[..., e * a.rank : (e + 1) * a.rank] @ a.up.weight[e] + a.up.bias[e] for e in range(a.experts)]
    return torch.stack(outs, dim=-2) * (ALPHA / RANK)


def capture(model, block: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(attention output, block output) of ``block`` for input ids ``x``."""
    seen = {}
    layer = model.encoder.layer[block]
    h1 = layer.attention.register_forward_hook(lambda m, i, o: seen.__setitem__("attention", o[0]))
    h2 = layer.register_forward_hook(lambda m, i, o: seen.__setitem__("out", o[0] if isinstance(o, tuple) else o))
    try:
        with torch.no_grad():
            model(x)
    finally:
        h1.remove()
        h2.remove()
    return seen["attention"], seen["out"]


def test_starts_exactly_at_the_backbone_and_only_adapters_train():
    plain, model = adapted()
    x = ids()
    with torch.no_grad():
        ref = plain(x).last_hidden_state
        assert torch.equal(model(x).last_hidden_state, ref)  # zero up-projections: gated mode
        set_domains(model, torch.tensor([0, 1]))
        assert torch.equal(model(x).last_hidden_state, ref)  # and routed mode
        set_domains(model, None)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    # per block: down (weight, bias) + up (weight, bias); the top block also its gate (weight, bias)
    assert len(trainable) == 2 * 4 + 2 and all(f"{ADAPTER}." in n and "molora_" in n for n in trainable)
    assert {n for n, _ in plain.named_parameters()} <= {n for n, _ in model.named_parameters()}  # base weights keep their names
    assert [a.gate is None for a in adapters(model)] == [True, False]  # lower half averaged, top half gated


def test_lower_blocks_add_the_mean_of_the_experts_to_the_block_output():
    plain, model = adapted()
    a = adapter(model, 0)
    randomize(a)
    x = ids()
    attention, plain_out = capture(plain, 0, x)
    _, out = capture(model, 0, x)
    with torch.no_grad():
        expected = plain_out + experts_by_hand(a, attention).mean(dim=-2)
        torch.testing.assert_close(a(attention), experts_by_hand(a, attention).mean(dim=-2))
    torch.testing.assert_close(out, expected)
    set_domains(model, torch.tensor([0, 1]))  # routing leaves the lower half averaged
    _, routed = capture(model, 0, x)
    torch.testing.assert_close(routed, expected)


def test_top_blocks_route_each_row_to_its_domains_expert():
    plain, model = adapted()
    randomize(adapter(model, 1), experts=[1])  # only expert 1 of the top block differs from zero
    x = ids()
    with torch.no_grad():
        ref = plain(x).last_hidden_state
        set_domains(model, torch.tensor([0, 1]))
        out = model(x).last_hidden_state
        assert torch.equal(out[0], ref[0])  # row 0: expert 0, still zero
        assert not torch.allclose(out[1], ref[1])  # row 1: expert 1
        set_domains(model, torch.tensor([EXPERTS, 1 + EXPERTS]))  # domain d -> expert d % E
        assert torch.equal(model(x).last_hidden_state, out)
        a = adapter(model, 1)
        attention, _ = capture(model, 1, x)
        torch.testing.assert_close(a(attention)[1], experts_by_hand(a, attention)[1, :, 1])


def test_gated_mode_mixes_experts_by_the_softmax_of_the_gate():
    _, model = adapted()
    a = adapter(model, 1)
    randomize(a, gate=True)
    set_domains(model, None)
    attention, _ = capture(model, 1, ids())
    with torch.no_grad():
        w = torch.softmax(a.gate(attention), dim=-1)  # [B, T, E]
        expected = (w.unsqueeze(-1) * experts_by_hand(a, attention)).sum(dim=-2)
        torch.testing.assert_close(a(attention), expected)
        # a zero gate is the mean
        a.gate.weight.zero_()
        a.gate.bias.zero_()
        torch.testing.assert_close(a(attention), experts_by_hand(a, attention).mean(dim=-2))


def test_gradient_reaches_every_expert_and_frozen_gates_stay_out():
    plain = tiny_bert()
    apply_molora(plain, RANK, ALPHA, EXPERTS, train_gates=False)
    assert not any(p.requires_grad for n, p in plain.named_parameters() if ".gate." in n)
    for a in adapters(plain):
        randomize(a)
    set_domains(plain, torch.tensor([0, 0]))
    plain.train()
    plain(ids()).last_hidden_state.sum().backward()
    # experts no row routes to still get a (zero) gradient: DDP sees every trainable parameter used
    assert all(p.grad is not None for p in plain.parameters() if p.requires_grad)
    top = adapter(plain, 1).up.weight.grad
    assert top[0].abs().sum() > 0 and torch.equal(top[1:], torch.zeros_like(top[1:]))


def test_clear_errors():
    _, model = adapted()
    with pytest.raises(RecxError, match="expected domains \\[B\\] long"):
        set_domains(model, torch.tensor([0.0, 1.0]))
    set_domains(model, torch.tensor([0, 1, 2]))
    with pytest.raises(RecxError, match="3 domains for a batch of 2 rows"):
        model(ids())
    with pytest.raises(RecxError, match="already has molora adapters"):
        apply_molora(model, RANK, ALPHA, EXPERTS)
    with pytest.raises(RecxError, match="no molora adapters"):
        set_domains(tiny_bert(), None)
    with pytest.raises(RecxError, match="must be >= 1"):
        apply_molora(tiny_bert(), 0, ALPHA, EXPERTS)
    from transformers import DistilBertConfig, DistilBertModel

    distil = DistilBertModel(DistilBertConfig(vocab_size=40, dim=16, n_layers=2, n_heads=2, hidden_dim=32, max_position_embeddings=32))
    with pytest.raises(RecxError, match="not BERT-like"):
        apply_molora(distil, RANK, ALPHA, EXPERTS)


# -- recx train --model reo-lm --reo-tuning molora ------------------------------------------------
def config(synth_dir, lm_dir, tmp_path, **kw):
    from recx.trainer import TrainConfig

    base = dict(dataset=str(synth_dir), model="reo-lm", lm=str(lm_dir), max_len=8, item_tokens=24, user_tokens=96, temperature=0.05, epochs=1,
                batch_size=32, lr=1e-3, encoder_lr=1e-3, runs_dir=str(tmp_path / "runs"), precision="fp32", reo_tuning="molora",
                lora_rank=4, lora_experts=3)
    return TrainConfig.from_options(**{**base, **kw})


def test_train_builds_molora_and_a_step_changes_only_adapters_in_the_backbone(synth_dir, lm_dir, tmp_path):
    from recx.data.dataset import SequenceDataset
    from recx.trainer.data import SequenceBatches
    from recx.trainer.engine import LoopSettings, adamw
    from recx.trainer.losses.debiased_ce import DebiasedCrossEntropy
    from recx.trainer.reolm.build import build_reolm

    dataset = SequenceDataset(synth_dir)
    full = build_reolm(config(synth_dir, lm_dir, tmp_path, reo_tuning="full"), dataset).eval()
    model = build_reolm(config(synth_dir, lm_dir, tmp_path), dataset)
    assert len(adapters(model.backbone)) == 2
    with torch.no_grad():
        torch.testing.assert_close(model.eval().item_table(), full.item_table(), rtol=0, atol=0)
    model.train()
    trainable = [n for n, p in model.backbone.named_parameters() if p.requires_grad]
    assert trainable and all("molora_" in n for n in trainable)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = adamw(model, model.pretrained_parameters(), LoopSettings(epochs=1, lr=1e-3, weight_decay=0.01, pretrained_lr=1e-2,
                                                                          pretrained_weight_decay=0.01, seed=0))
    batch = next(iter(SequenceBatches(dataset.train_sequences(), 8, 16, seed=0).epoch(0)))
    batch = model.training_batch(batch, torch.Generator().manual_seed(0))
    loss = DebiasedCrossEntropy(torch.from_numpy(dataset.item_popularity()), temperature=0.05)(model(batch.inputs), batch, model.step_items())
    loss.backward()
    optimizer.step()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    backbone = {k for k in changed if k.startswith("backbone.")}
    assert backbone and all("molora_" in k for k in backbone), sorted(backbone)
    assert any(k.endswith(f"{ADAPTER}.up.weight") for k in backbone)  # the zero-init up-projections move first


def test_molora_run_trains_and_loads_back(synth_dir, lm_dir, tmp_path):
    from recx.inference import export_embeddings
    from recx.trainer import fit, load_trained

    run = fit(config(synth_dir, lm_dir, tmp_path, name="molora"), progress=False).run_dir
    saved = torch.load(run / "best.pt", weights_only=False)["model"]
    trained, _, _ = load_trained(run)
    own = trained.state_dict()
    assert any(ADAPTER in k for k in saved)
    assert all(torch.equal(own[k], v) for k, v in saved.items() if ADAPTER in k)
    assert any(saved[k].abs().sum() > 0 for k in saved if k.endswith(f"{ADAPTER}.up.weight")), "the adapters must learn"
    assert export_embeddings(run).item_table.shape == (61, 32)
