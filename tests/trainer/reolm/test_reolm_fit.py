"""Reo-LM through recx's training loop and `recx eval`, and the pretrain -> fine-tune round trip."""

from __future__ import annotations

import json

import pytest
import torch

from recx.data.dataset import SequenceDataset
from recx.evaluate.protocol import popularity_result
from recx.trainer import TrainConfig, fit
from recx.inference import export_embeddings
from recx.trainer.reolm.checkpoint import CheckpointMismatchError
from recx.trainer.reolm.pretrain import PretrainConfig, pretrain
from recx.trainer.reolm.tokens import NoItemTextError


def config(synth_dir, lm_dir, tmp_path, **kw) -> TrainConfig:
    # the joined text and a --max-len window (recx's recipe before ROMA's): small and fast
    base = dict(dataset=str(synth_dir), model="reo-lm", lm=str(lm_dir), max_len=8, item_tokens=24, user_tokens=96, temperature=0.05,
                item_text="text", user_items=0,
                epochs=3, batch_size=32, lr=1e-3, encoder_lr=1e-3, runs_dir=str(tmp_path / "runs"), precision="fp32")
    base.update(kw)
    return TrainConfig.from_options(**base)


def test_end_to_end_beats_popularity_and_evaluates_through_export(synth_dir, lm_dir, tmp_path):
    cfg = config(synth_dir, lm_dir, tmp_path, epochs=5, name="e2e")
    result = fit(cfg, progress=False)
    for f in ("config.json", "best.pt", "last.pt", "metrics.jsonl", "curve.png"):
        assert (result.run_dir / f).is_file(), f
    rows = [json.loads(l) for l in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(r["tokens"] > 0 and r["tokens_per_s"] > 0 for r in rows)
    emb = export_embeddings(result.run_dir, split="test")  # what `recx eval` ranks
    from recx.evaluate.protocol import evaluate_arrays

    ours = evaluate_arrays(emb.user_vectors, emb.item_table, emb.targets, emb.histories, (10,)).metrics
    pop = popularity_result(SequenceDataset(synth_dir), "test", (10,)).metrics
    assert ours["ndcg@10"] > pop["ndcg@10"] + 0.02, (ours, pop)

    # serving: `recx recommend` ranks as `recx eval` does; `recx export` refuses in one line
    from typer.testing import CliRunner

    from recx.cli import app
    from recx.inference import Recommender

    rec = Recommender.from_run(result.run_dir)
    top = rec.recommend_indices(emb.histories[:5], k=10)
    assert top.items.tolist() == torch.topk(torch.from_numpy(emb.user_vectors[:5] @ emb.item_table.T)[:, 1:], 10).indices.add(1).tolist()
    out = CliRunner().invoke(app, ["export", "--run", str(result.run_dir), "--out", str(tmp_path / "exp")])
    assert out.exit_code == 1 and "Traceback" not in out.output and "no item-vector user encoder" in out.output, out.output
    assert not (tmp_path / "exp").exists()


def test_resume_gives_identical_weights(synth_dir, lm_dir, tmp_path):
    straight = fit(config(synth_dir, lm_dir, tmp_path, epochs=2, name="straight"), progress=False).run_dir
    cfg = config(synth_dir, lm_dir, tmp_path, epochs=2, name="cut")
    run = fit(cfg, progress=False, max_epochs_this_call=1).run_dir
    fit(cfg, run_dir=run, resume=True, progress=False)
    a = torch.load(straight / "last.pt", weights_only=False)["model"]
    b = torch.load(run / "last.pt", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_warm_start_into_a_longer_packing_keeps_the_item_positions_it_has(synth_dir, lm_dir, tmp_path):
    from recx.trainer.reolm.build import build_reolm
    from recx.trainer.warm_start import warm_start

    dataset = SequenceDataset(synth_dir)
    short = fit(config(synth_dir, lm_dir, tmp_path, epochs=1, max_len=2, user_tokens=48, name="short"), progress=False).run_dir
    source = torch.load(short / "best.pt", weights_only=False)["model"]
    longer = build_reolm(config(synth_dir, lm_dir, tmp_path, max_len=5), dataset)
    report = warm_start(longer, short, dataset.fingerprint)
    assert report.fresh == []
    positions = longer.item_position.weight.detach()
    assert positions.shape == (6, source["item_position.weight"].shape[1])
    assert torch.equal(positions[:3], source["item_position.weight"]) and source["item_position.weight"][1:].abs().sum() > 0
    assert torch.equal(positions[3:], torch.zeros_like(positions[3:]))  # positions the source never had start fresh
    state = longer.state_dict()
    assert all(torch.equal(state[k], v) for k, v in source.items() if k.startswith("backbone."))


def pre_cfg(synth_dir, lm_dir, **kw) -> PretrainConfig:
    base = dict(domains=[str(synth_dir)], lm=str(lm_dir), item_tokens=24, user_tokens=96, max_len=8, epochs=2, steps_per_epoch=3, batch_size=16, lr=1e-3, precision="fp32")
    base.update(kw)
    return PretrainConfig(**base)


def test_pretrain_then_fine_tune_round_trips_and_resumes_exactly(synth_dir, lm_dir, tmp_path):
    ckpt = pretrain(pre_cfg(synth_dir, lm_dir), tmp_path / "ckpt", progress=False)
    saved = json.loads((ckpt / "config.json").read_text())
    assert saved["epochs_done"] == 2 and saved["domains"][0]["fingerprint"] == SequenceDataset(synth_dir).fingerprint
    rows = [json.loads(l) for l in (ckpt / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1] and all(r["mlm"] > 0 and r["next_item"] > 0 for r in rows)
    # interrupted after one epoch and resumed: the same weights
    cut = pretrain(pre_cfg(synth_dir, lm_dir), tmp_path / "cut", progress=False, max_epochs_this_call=1)
    pretrain(pre_cfg(synth_dir, lm_dir), cut, resume=True, progress=False)
    a = torch.load(ckpt / "model.pt", weights_only=True)
    b = torch.load(cut / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(Exception, match="exists"):
        pretrain(pre_cfg(synth_dir, lm_dir), ckpt, progress=False)
    # fine-tuning starts from the pretrained weights, and eval needs only the run
    from recx.trainer.reolm.build import build_reolm

    cfg = config(synth_dir, lm_dir, tmp_path, init=str(ckpt), epochs=1, name="ft")
    model = build_reolm(cfg, SequenceDataset(synth_dir))
    own = model.state_dict()
    assert all(torch.equal(own[k], a[k]) for k in own if k.startswith("backbone."))
    run = fit(cfg, progress=False).run_dir
    assert export_embeddings(run).item_table.shape == (61, 32)


def test_mismatched_checkpoint_is_refused(synth_dir, lm_dir, other_lm_dir, tmp_path):
    ckpt = pretrain(pre_cfg(synth_dir, lm_dir, epochs=1, steps_per_epoch=1), tmp_path / "ckpt", progress=False)
    with pytest.raises(CheckpointMismatchError, match=r"config.json: pretrained backbone .* but --lm is"):
        fit(config(synth_dir, other_lm_dir, tmp_path, init=str(ckpt), name="x"), progress=False)
    # same backbone name, another tokenizer: named as such
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["tokenizer_hash"] = "f" * 64
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointMismatchError, match="config.json: tokenizer hash ffffffffffff differs"):
        fit(config(synth_dir, lm_dir, tmp_path, init=str(ckpt), name="y"), progress=False)


def test_domain_without_text_is_refused(synth_dir, lm_dir, tmp_path):
    from recx.data.dataset import Item, write_dataset

    bare = write_dataset(tmp_path / "bare", [Item(f"i{k}") for k in range(5)], ["u0"], [[1, 2, 3]], {"source": "test"})
    with pytest.raises(NoItemTextError, match="bare/items.jsonl: no item has text"):
        pretrain(pre_cfg(synth_dir, lm_dir, domains=[str(synth_dir), str(bare.path)]), tmp_path / "c", progress=False)


def test_pretrain_with_an_image_store_aligns_and_fine_tunes_with_images(synth_dir, lm_dir, tmp_path):
    from tiny_models import write_random_image_store

    store = write_random_image_store(SequenceDataset(synth_dir), tmp_path / "img.h5")
    ckpt = pretrain(pre_cfg(synth_dir, lm_dir, image_stores=[str(store)], epochs=1, steps_per_epoch=2, align_weight=1.0), tmp_path / "ckpt", progress=False)
    row = json.loads((ckpt / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["align"] > 0
    assert json.loads((ckpt / "config.json").read_text())["packing"]["image_slot"] is True
    from recx.trainer.reolm.build import build_reolm

    model = build_reolm(config(synth_dir, lm_dir, tmp_path, init=str(ckpt), stores={"image": str(store)}), SequenceDataset(synth_dir))
    saved = torch.load(ckpt / "model.pt", weights_only=True)
    assert torch.equal(model.image_proj.weight, saved["image_proj.weight"])
