"""`--reo-tuning lora`: peft adapters on a frozen backbone, after any --init checkpoint."""

from __future__ import annotations

import sys

import pytest
import torch

from recx.data.dataset import SequenceDataset
from recx.errors import RecxError
from recx.inference import export_embeddings
from recx.trainer import TrainConfig, fit, load_trained
from recx.trainer.reolm.build import build_reolm
from recx.trainer.reolm.lora import apply_lora, block_linears
from recx.trainer.reolm.pretrain import PretrainConfig, pretrain

pytest.importorskip("peft")


def config(synth_dir, lm_dir, tmp_path, **kw) -> TrainConfig:
    base = dict(dataset=str(synth_dir), model="reo-lm", lm=str(lm_dir), max_len=8, item_tokens=24, user_tokens=96, temperature=0.05, epochs=1,
                batch_size=32, lr=1e-3, encoder_lr=1e-3, runs_dir=str(tmp_path / "runs"), precision="fp32", reo_tuning="lora", lora_rank=4)
    return TrainConfig.from_options(**{**base, **kw})


def test_lora_starts_at_the_backbone_and_trains_only_adapters(synth_dir, lm_dir, tmp_path):
    dataset = SequenceDataset(synth_dir)
    full = build_reolm(config(synth_dir, lm_dir, tmp_path, reo_tuning="full"), dataset).eval()
    lora = build_reolm(config(synth_dir, lm_dir, tmp_path), dataset).eval()
    # 2 blocks x (query, key, value, attention output, intermediate, output) linears
    assert len(block_linears(full.backbone)) == 12
    trainable = [n for n, p in lora.backbone.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable) and len(trainable) == 2 * 12
    # B starts at zero: the adapted model is the backbone, item vectors and all
    with torch.no_grad():
        torch.testing.assert_close(lora.item_table(), full.item_table(), rtol=1e-5, atol=1e-6)

    frozen = {n: p.detach().clone() for n, p in lora.backbone.named_parameters() if not p.requires_grad}
    run = fit(config(synth_dir, lm_dir, tmp_path, name="lora"), progress=False).run_dir
    trained, _, _ = load_trained(run)
    after = dict(trained.backbone.named_parameters())
    assert all(torch.equal(after[n], v) for n, v in frozen.items()), "the backbone itself stays frozen"
    assert any(after[n].abs().sum() > 0 for n in trainable if "lora_B" in n), "the adapters must learn"
    assert export_embeddings(run).item_table.shape == (61, 32)


def test_lora_fine_tunes_a_pretrained_checkpoint(synth_dir, lm_dir, tmp_path):
    ckpt = pretrain(PretrainConfig(domains=[str(synth_dir)], lm=str(lm_dir), item_tokens=24, user_tokens=96, max_len=8, epochs=1,
                                   steps_per_epoch=2, batch_size=16, lr=1e-3, precision="fp32"), tmp_path / "ckpt", progress=False)
    pretrained = torch.load(ckpt / "model.pt", weights_only=True)
    model = build_reolm(config(synth_dir, lm_dir, tmp_path, init=str(ckpt)), SequenceDataset(synth_dir))
    # the adapters wrap the pretrained weights, not the hub's: query -> query.base_layer
    own = model.state_dict()
    name = "backbone.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(own[name.replace("query.weight", "query.base_layer.weight")], pretrained[name])


def test_missing_peft_and_bad_rank_are_clear_errors(synth_dir, lm_dir, tmp_path, monkeypatch):
    backbone = build_reolm(config(synth_dir, lm_dir, tmp_path, reo_tuning="full"), SequenceDataset(synth_dir)).backbone
    with pytest.raises(RecxError, match="--lora-rank 0"):
        apply_lora(backbone, 0, 16)
    monkeypatch.setitem(sys.modules, "peft", None)  # import peft -> ImportError
    with pytest.raises(RecxError, match=r"needs peft: pip install 'recx\[lora\]'"):
        apply_lora(backbone, 4, 16)
