"""`recx pretrain`'s ROMA recipe: next item + 0.1 x MLM over the masked user sequence (one
forward gives both), no alignment unless asked, and molora routed by domain with exact resume."""

from __future__ import annotations

import json

import pytest
import torch
from torch.nn import functional as F

from recx.errors import RecxError
from recx.trainer.data import SequenceBatches
from recx.trainer.engine import seed_everything
from recx.trainer.reolm.backbone import (
    load_backbone,
    load_tokenizer,
    locate_backbone,
    tokenizer_hash,
)
from recx.trainer.reolm.heads import mask_tokens
from recx.trainer.reolm.molora import ADAPTER, adapters
from recx.trainer.reolm.pretrain import (
    PretrainConfig,
    load_domains,
    make_pretrainer,
    maskable,
    pretrain,
)


def pre_cfg(domains, lm_dir, **kw) -> PretrainConfig:
    base = dict(domains=[str(d) for d in domains], lm=str(lm_dir), item_tokens=24, user_tokens=96, max_len=8, epochs=2, steps_per_epoch=2,
                batch_size=8, lr=1e-3, precision="fp32")
    return PretrainConfig(**{**base, **kw})


def pretrainer(cfg: PretrainConfig):
    """(Pretrainer in eval mode: no dropout, so a forward can be recomputed by hand; a batch)."""
    seed_everything(cfg.seed)  # as pretrain() does: the same fresh adapters
    folder = locate_backbone(cfg.lm)
    tokenizer = load_tokenizer(folder)
    backbone = load_backbone(folder)
    domains = load_domains(cfg, tokenizer, tokenizer_hash(tokenizer))
    model, _ = make_pretrainer(cfg, folder, tokenizer, backbone, domains)
    batch = next(iter(SequenceBatches(domains.train_sequences, cfg.max_len, cfg.batch_size, seed=0).epoch(0)))
    return model.eval(), batch


def spy(model) -> tuple[list, list]:
    """Record lm.hidden's (batch, input_ids) and count the backbone's forwards."""
    calls, forwards = [], []
    hidden = model.lm.hidden

    def recording(batch, input_ids=None):
        calls.append((batch, input_ids))
        return hidden(batch, input_ids)

    model.lm.hidden = recording
    model.lm.backbone.register_forward_hook(lambda *a: forwards.append(1))
    return calls, forwards


@pytest.fixture
def one_chunk(monkeypatch):
    """A step's users and items in one padded batch each, so its forwards can be counted and
    replayed by hand (test_length_chunks_keep_each_rows_domain: chunks give the same step)."""
    import recx.trainer.reolm.model as reolm_model

    monkeypatch.setattr(reolm_model, "CHUNK_COST_TOKENS", 10**9)


def store(synth_dir, tmp_path):
    from tiny_models import write_random_image_store

    from recx.data.dataset import SequenceDataset

    return str(write_random_image_store(SequenceDataset(synth_dir), tmp_path / "img.h5"))


def test_mlm_masks_only_the_user_sequences_text_and_the_user_vector_reads_the_masked_input(synth_dir, lm_dir, tmp_path, one_chunk):
    cfg = pre_cfg([synth_dir], lm_dir, image_stores=[store(synth_dir, tmp_path)])  # image slots in the user sequence
    model, batch = pretrainer(cfg)
    lm = model.lm
    calls, forwards = spy(model)
    gen = torch.Generator().manual_seed(3)
    replay = torch.Generator().manual_seed(3)
    loss, parts = model(batch, gen, None)
    assert len(forwards) == 2  # the masked users (user vector + MLM) and the in-batch items; no lone-target MLM pass
    users, masked = calls[0]
    ids = users["input_ids"]
    changed = masked != ids
    assert changed.any() and (masked[changed] == lm.specials.slot).all()
    text = (users["item_positions"] > 0) & (users["image_items"] == 0) & (users["attention_mask"] > 0)
    assert not (changed & ~text).any()  # [CLS], [SEP], image slots and padding never masked
    assert (users["image_items"] > 0).any() and (ids[:, 0] == lm.specials.cls).all()
    assert 0.05 < changed.sum() / text.sum() < 0.35  # about mlm_ratio 0.15
    assert all(b.get("item_positions") is None or (b["item_positions"] <= 1).all() for b, _ in calls[1:])  # then lone items, unmasked

    # the same loss by hand: the user vector from the masked input, + 0.1 x MLM
    with torch.no_grad():
        tb = lm.training_batch(batch, replay)
        again, chosen = mask_tokens(ids, maskable(users), cfg.mlm_ratio, lm.specials.slot, replay)
        assert torch.equal(again, masked)
        hidden = lm.hidden(users, masked)
        user = lm.pool(hidden, users["attention_mask"]).unsqueeze(1).expand(-1, tb.inputs.shape[1], -1)
        next_item = model.ce(user, tb, lm.tower)
        logits = model.mlm_head(hidden[chosen], lm.backbone.get_input_embeddings().weight)
        mlm = F.cross_entropy(logits, ids[chosen])
        unmasked_user = lm.pool(lm.hidden(users), users["attention_mask"]).unsqueeze(1).expand(-1, tb.inputs.shape[1], -1)
        unmasked = model.ce(unmasked_user, tb, lm.tower)
    torch.testing.assert_close(loss, next_item + 0.1 * mlm)
    assert parts["next_item"] == pytest.approx(next_item.item()) and parts["mlm"] == pytest.approx(mlm.item())
    assert abs(unmasked.item() - next_item.item()) > 1e-6  # the check can tell the masked input from the plain one


def test_mlm_weight_scales_the_masked_token_term_exactly(synth_dir, lm_dir):
    model, batch = pretrainer(pre_cfg([synth_dir], lm_dir))
    assert model.cfg.mlm_weight == 0.1 and model.cfg.align_weight == 0.0  # the recipe's defaults
    out = {}
    for w in (0.1, 0.7):
        model.cfg.mlm_weight = w
        with torch.no_grad():
            out[w] = model(batch, torch.Generator().manual_seed(5), None)
    (a, pa), (b, pb) = out[0.1], out[0.7]
    assert pa == pb  # the same masks and parts
    assert a.item() == pytest.approx(pa["next_item"] + 0.1 * pa["mlm"], rel=1e-6)
    assert b.item() == pytest.approx(pb["next_item"] + 0.7 * pb["mlm"], rel=1e-6)
    assert (b - a).item() == pytest.approx(0.6 * pa["mlm"], rel=1e-5)
    # weight 0: nothing masked, no MLM part
    model.cfg.mlm_weight = 0.0
    calls, _ = spy(model)
    with torch.no_grad():
        loss, parts = model(batch, torch.Generator().manual_seed(5), None)
    assert "mlm" not in parts and torch.equal(calls[0][1], calls[0][0]["input_ids"])
    assert loss.item() == pytest.approx(parts["next_item"], rel=1e-6)


def test_alignment_is_not_computed_at_weight_zero(synth_dir, lm_dir, tmp_path, one_chunk):
    image = store(synth_dir, tmp_path)
    for weight, passes in ((0.0, 2), (1.0, 3)):
        model, batch = pretrainer(pre_cfg([synth_dir], lm_dir, image_stores=[image], align_weight=weight))
        assert model.lm.has_image
        _, forwards = spy(model)
        with torch.no_grad():
            loss, parts = model(batch, torch.Generator().manual_seed(0), None)
        assert len(forwards) == passes and ("align" in parts) == (weight > 0)
        assert loss.item() == pytest.approx(sum(parts[k] * w for k, w in (("next_item", 1.0), ("mlm", 0.1), ("align", weight)) if k in parts), rel=1e-6)


def test_options_are_validated():
    with pytest.raises(RecxError, match="--item-text text needs --item-tokens"):
        PretrainConfig(domains=["x"], item_text="text").validate()
    with pytest.raises(RecxError, match="does not combine with --grad-checkpointing"):
        PretrainConfig(domains=["x"], tuning="molora", grad_checkpointing=True).validate()
    with pytest.raises(RecxError, match="--tuning 'lora': expected one of full, molora"):
        PretrainConfig(domains=["x"], tuning="lora").validate()
    PretrainConfig(domains=["x"], item_text="text", item_tokens=32).validate()
    assert PretrainConfig().item_tokens == 0 and PretrainConfig().user_items == 9


def test_molora_pretraining_routes_by_domain_resumes_exactly_and_fine_tunes(synth_dir, lm_dir, tmp_path, one_chunk):
    from recx.data.dataset import SequenceDataset
    from recx.data.synth import synthesize

    other = synthesize(tmp_path / "other", num_items=40, num_users=60, seed=1, image_size=16).path
    cfg = lambda: pre_cfg([synth_dir, other], lm_dir, tuning="molora", lora_rank=4, lora_experts=2)

    # the user rows and the items of the second domain route to expert 1
    model, batch = pretrainer(cfg())
    seen = []
    top = adapters(model.lm.backbone)[-1]
    top.register_forward_pre_hook(lambda m, a: seen.append(None if m.domains is None else m.domains.clone()))
    with torch.no_grad():
        model(batch, torch.Generator().manual_seed(0), None)
    n0 = SequenceDataset(synth_dir).num_items
    tb = model.lm.training_batch(batch, torch.Generator().manual_seed(0))
    rows = tb.targets[:, -1]
    assert torch.equal(seen[0], (rows > n0).long()) and 0 < int((rows > n0).sum()) < len(rows)  # both domains in the batch
    items = torch.unique(torch.cat([tb.inputs.reshape(-1), tb.targets.reshape(-1)]))
    assert len(seen) == 2 and torch.equal(seen[1], (items[items > 0] > n0).long())  # the candidates, each by its own domain
    assert top.domains is None  # None after the step

    straight = pretrain(cfg(), tmp_path / "straight", progress=False)
    cut = pretrain(cfg(), tmp_path / "cut", progress=False, max_epochs_this_call=1)
    pretrain(cfg(), cut, resume=True, progress=False)
    a = torch.load(straight / "model.pt", weights_only=True)
    b = torch.load(cut / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    saved = json.loads((straight / "config.json").read_text())
    assert saved["tuning"] == {"name": "molora", "rank": 4, "alpha": 16.0, "experts": 2}
    assert {k: saved["packing"][k] for k in ("item_text", "attr_tokens", "user_items", "max_items")} == \
        {"item_text": "attributes", "attr_tokens": 32, "user_items": 9, "max_items": 9}
    names = saved["packing"]["attribute_names"]  # what `recx train --init` maps its type rows by
    assert len(names) == saved["packing"]["attribute_types"] > 1 and "colour" in names
    # only the adapters trained (gates frozen: hard routing never reads them)
    fresh, _ = pretrainer(cfg())
    init = {f"lm.{k}": v for k, v in a.items()}
    start = fresh.state_dict()
    moved = {k for k in init if k in start and k.startswith("lm.backbone.") and not torch.equal(init[k], start[k])}
    assert moved and all(ADAPTER in k and ".gate." not in k for k in moved)
    assert any(k.endswith(".down.weight") for k in moved) and any(k.endswith(".up.weight") for k in moved)
    with pytest.raises(RecxError, match="pretrained with --tuning"):
        pretrain(pre_cfg([synth_dir, other], lm_dir, epochs=3), cut, resume=True, progress=False)

    # `recx train --reo-tuning molora --init` starts from the pretrained adapters
    from recx.trainer import TrainConfig
    from recx.trainer.reolm.build import build_reolm

    ft = TrainConfig.from_options(dataset=str(synth_dir), model="reo-lm", lm=str(lm_dir), max_len=8, item_tokens=24, user_tokens=96,
                                  temperature=0.05, reo_tuning="molora", lora_rank=4, lora_experts=2, init=str(straight))
    tuned = build_reolm(ft, SequenceDataset(synth_dir)).state_dict()
    assert all(torch.equal(tuned[k], v) for k, v in a.items() if ADAPTER in k)


def test_length_chunks_keep_each_rows_domain(synth_dir, lm_dir, tmp_path, monkeypatch):
    """Pre-training runs users (every token's state, for the masked tokens) and items in length
    chunks: the loss and gradients equal one padded batch's, each chunk routed by its own rows'
    domains (a chunk once got the whole batch's routing and stopped the step)."""
    import numpy as np

    import recx.trainer.reolm.model as reolm_model
    from recx.data.synth import synthesize

    other = synthesize(tmp_path / "other", num_items=40, num_users=60, seed=1, image_size=16).path
    model, batch = pretrainer(pre_cfg([synth_dir, other], lm_dir, tuning="molora", lora_rank=4, lora_experts=2))
    torch.manual_seed(0)
    for name, p in model.named_parameters():
        if ADAPTER in name and name.endswith(".up.weight"):
            torch.nn.init.normal_(p, std=0.5)  # the experts differ (zero at init), so a misrouted row would show
    splits = {"one batch": lambda lengths, cost: [np.arange(len(lengths))],
              "one row a chunk, reversed": lambda lengths, cost: [np.array([i]) for i in reversed(range(len(lengths)))]}
    results = []
    for split in splits.values():
        monkeypatch.setattr(reolm_model, "length_chunks", split)
        model.zero_grad()
        loss, parts = model(batch, torch.Generator().manual_seed(0), None)
        loss.backward()
        results.append((loss.detach(), parts, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (a, parts_a, grads_a), (b, parts_b, grads_b) = results
    assert parts_a["mlm"] > 0
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
    assert parts_b == pytest.approx(parts_a, rel=1e-5)
    assert grads_a.keys() == grads_b.keys() and any(ADAPTER in n for n in grads_a)
    for n in grads_a:
        torch.testing.assert_close(grads_b[n], grads_a[n], rtol=1e-4, atol=1e-6, msg=n)
