"""`recx pretrain`: recommendation-oriented pre-training of the Reo-LM across domains.

Every domain's catalog joins one global catalog (domain d's item i -> offset_d + i) and every
user's training sequence (``seq[:-2]``, never a valid or test item) is remapped into it, so the
shuffled batches mix domains.  Per step:

- next-item: a random prefix of each row predicts its next item, recx's debiased in-batch CE
  (the same module `recx train` uses) over the LM's user and item vectors;
- masked tokens: ``mlm_ratio`` of the text tokens of the batch's target items hidden, predicted
  by a tied-embedding MLM head (the backbone's own head when its checkpoint has one);
- item-image alignment: symmetric InfoNCE between an item's text vector and its projected image
  token, over the target items that have an image (only when image stores are given).

The checkpoint directory (checkpoint.py) is rewritten after every epoch; ``resume=True``
continues from it and ends with the weights an uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from recx.artifacts import atomic_write_text, torch_save
from recx.data.dataset import SequenceDataset
from recx.device import autocast, autocast_dtype, resolve_device
from recx.errors import RecxError
from recx.trainer.data import Batch, SequenceBatches
from recx.trainer.losses.debiased_ce import DebiasedCrossEntropy
from recx.trainer.reolm.backbone import DEFAULT_LM, load_backbone, load_tokenizer, locate_backbone, tokenizer_hash
from recx.trainer.reolm.checkpoint import CONFIG, METRICS, STATE, WEIGHTS, backbone_signature, canonical_lm, read_config
from recx.trainer.reolm.heads import TiedMLMHead, alignment_loss, mask_tokens
from recx.trainer.reolm.model import ReoLM
from recx.trainer.reolm.packing import Specials, collate, pack
from recx.trainer.reolm.tokens import ItemTokens, item_tokens

FORMAT = "recx-reolm-pretrain-1"


@dataclass
class PretrainConfig:
    """Every knob of `recx pretrain` (written into the checkpoint's config.json)."""

    domains: list[str] = field(default_factory=list)
    image_stores: list[str] = field(default_factory=list)  # matched to domains by catalog fingerprint
    lm: str = DEFAULT_LM
    item_tokens: int = 32
    user_tokens: int = 256
    max_len: int = 50  # most history items packed
    pooling: str = "mean"
    temperature: float = 0.05
    alpha: float = 1.0
    mlm_ratio: float = 0.15
    mlm_weight: float = 1.0
    align_weight: float = 1.0
    epochs: int = 1
    steps_per_epoch: int = 0  # 0: every batch of the mixed data
    batch_size: int = 32
    lr: float = 5e-5  # backbone
    head_lr: float = 1e-3  # new parameters: item positions, image projection, MLM head
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    amp: str = "auto"
    grad_checkpointing: bool = False
    seed: int = 42
    device: str = "auto"

    def validate(self) -> None:
        if not self.domains:
            raise RecxError("recx pretrain needs at least one --domains DIR")
        if self.pooling not in ("mean", "cls"):
            raise RecxError(f"--pooling {self.pooling!r}: expected mean or cls")
        if not 0.0 < self.mlm_ratio < 1.0:
            raise RecxError("--mlm-ratio must be in (0, 1)")
        for name in ("epochs", "batch_size", "item_tokens", "max_len"):
            if getattr(self, name) < 1:
                raise RecxError(f"--{name.replace('_', '-')} must be >= 1")
        if self.user_tokens < self.item_tokens + 3:
            raise RecxError(f"--user-tokens {self.user_tokens} must hold one item (--item-tokens {self.item_tokens} + 3)")


@dataclass
class Domains:
    """The global catalog of several datasets."""

    datasets: list[SequenceDataset]
    offsets: list[int]  # global index of domain d's item i = offsets[d] + i
    tokens: ItemTokens
    train_sequences: list[np.ndarray]
    counts: torch.Tensor  # [N+1] training interactions per global item
    image_features: torch.Tensor | None  # [N+1, F]
    image_present: torch.Tensor | None
    stores: dict[int, str]  # domain -> image store path


def load_domains(cfg: PretrainConfig, tokenizer: Any, tok_hash: str) -> Domains:
    from recx.featurize.store import check_store, open_store

    datasets = [SequenceDataset(d) for d in cfg.domains]
    parts = [item_tokens(ds, tokenizer, tok_hash, cfg.item_tokens) for ds in datasets]  # NoItemTextError names the file
    offsets = list(np.cumsum([0] + [ds.num_items for ds in datasets[:-1]]))
    seqs = [s + off for ds, off in zip(datasets, offsets) for s in ds.train_sequences()]
    counts = torch.from_numpy(np.concatenate([[0]] + [ds.item_popularity()[1:] for ds in datasets]))
    stores: dict[int, str] = {}
    feats = present = None
    if cfg.image_stores:
        by_fp = {ds.catalog_fingerprint: d for d, ds in enumerate(datasets)}
        loaded = {}
        for path in cfg.image_stores:
            store = open_store(path)
            d = by_fp.get(str(store.attrs.get("catalog_fingerprint")))
            if d is None:
                raise RecxError(f"{path}: image store of none of the --domains (its catalog fingerprint matches no domain)")
            check_store(store, datasets[d], expect={"modality": "image"})
            stores[d], loaded[d] = str(path), store
        dims = {s.dim for s in loaded.values()}
        if len(dims) > 1:
            raise RecxError(f"image stores of different widths {sorted(dims)}: use one image encoder for every domain")
        dim = dims.pop()
        total = sum(ds.num_items for ds in datasets) + 1
        feats = torch.zeros(total, dim)
        present = torch.zeros(total, dtype=torch.bool)
        for d, s in loaded.items():
            n = datasets[d].num_items
            feats[offsets[d] + 1 : offsets[d] + 1 + n] = torch.from_numpy(s.embeddings[1:])
            present[offsets[d] + 1 : offsets[d] + 1 + n] = torch.from_numpy(s.present[1:])
    return Domains(datasets, [int(o) for o in offsets], ItemTokens.concat(parts), seqs, counts, feats, present, stores)


def checkpoint_config(cfg: PretrainConfig, backbone: nn.Module, folder: Path, tok_hash: str, domains: Domains, has_image: bool) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "backbone": {"name": cfg.lm, "canonical": canonical_lm(cfg.lm), "path": str(folder), "signature": backbone_signature(backbone)},
        "tokenizer_hash": tok_hash,
        "packing": {"item_tokens": cfg.item_tokens, "user_tokens": cfg.user_tokens, "max_items": cfg.max_len, "image_slot": has_image, "pooling": cfg.pooling},
        "domains": [
            {"path": str(ds.path), "name": ds.name, "fingerprint": ds.fingerprint, "catalog_fingerprint": ds.catalog_fingerprint,
             "items": ds.num_items, "image_store": domains.stores.get(d)}
            for d, ds in enumerate(domains.datasets)
        ],
        "options": dataclasses.asdict(cfg),
    }


class Pretrainer(nn.Module):
    """The LM and its MLM head; ``step`` returns the weighted loss and its parts."""

    def __init__(self, lm: ReoLM, head: TiedMLMHead, ce: DebiasedCrossEntropy, cfg: PretrainConfig):
        super().__init__()
        self.lm, self.mlm_head, self.ce, self.cfg = lm, head, ce, cfg

    def step(self, batch: Batch, generator: torch.Generator, amp_dtype: torch.dtype | None) -> tuple[torch.Tensor, dict[str, float]]:
        lm, cfg = self.lm, self.cfg
        device = lm.item_position.weight.device
        batch = lm.training_batch(batch, generator)
        with autocast(device, amp_dtype):
            states = lm(batch.inputs)
            next_item = self.ce(states.float(), batch, lm.tower)
            # masked tokens and alignment over the batch's target items, text only
            items = torch.unique(batch.targets[:, -1]).tolist()
            packed = [pack([i], lm.tokens, lm.user_budget, lm.specials, image_slot=False) for i in items]
            tb = {k: torch.from_numpy(v).to(device) for k, v in collate(packed, lm.specials.pad).items()}
            masked_ids, chosen = mask_tokens(tb["input_ids"], tb["item_positions"] > 0, cfg.mlm_ratio, lm.specials.slot, generator)
            hidden = lm.hidden(tb, masked_ids)
            lm.tokens_seen += int(tb["attention_mask"].sum())
            logits = self.mlm_head(hidden[chosen], lm.backbone.get_input_embeddings().weight)
            mlm = nn.functional.cross_entropy(logits.float(), tb["input_ids"][chosen])
            loss = next_item + cfg.mlm_weight * mlm
            parts = {"next_item": next_item.item(), "mlm": mlm.item()}
            if lm.has_image:
                ids = torch.tensor(items, device=device)
                has = lm.image_present[ids]
                if int(has.sum()) >= 2:
                    text = lm.pool(hidden, tb["attention_mask"])[has]
                    image = lm.image_proj(lm.image_features[ids[has]])
                    align = alignment_loss(text, image, cfg.temperature)
                    loss = loss + cfg.align_weight * align
                    parts["align"] = align.item()
        return loss, parts


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state()}


def pretrain(cfg: PretrainConfig, out: str | Path, resume: bool = False, progress: bool = True, max_epochs_this_call: int | None = None) -> Path:
    """Pre-train into the checkpoint dir ``out``; returns it."""
    cfg.validate()
    out = Path(out)
    if (out / CONFIG).is_file() and not resume:
        raise RecxError(f"{out}: a pretrain checkpoint exists; continue it with --resume or choose another --out")
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    device = resolve_device(cfg.device)
    amp_dtype = autocast_dtype(cfg.amp, device)
    folder = locate_backbone(cfg.lm)
    tokenizer = load_tokenizer(folder)
    tok_hash = tokenizer_hash(tokenizer)
    backbone = load_backbone(folder)
    domains = load_domains(cfg, tokenizer, tok_hash)
    lm = ReoLM(
        backbone, domains.tokens, Specials.of(tokenizer), user_budget=cfg.user_tokens, max_items=cfg.max_len,
        image_features=domains.image_features, image_present=domains.image_present, pooling=cfg.pooling,
        normalize=True, grad_checkpointing=cfg.grad_checkpointing,
    )
    head = TiedMLMHead(lm.dim, backbone.get_input_embeddings().weight.shape[0], eps=float(getattr(backbone.config, "layer_norm_eps", 1e-12)))
    head_from_backbone = head.load_from_backbone(folder)
    ce = DebiasedCrossEntropy(domains.counts, cfg.alpha, cfg.temperature, "sequence")
    model = Pretrainer(lm, head, ce, cfg).to(device)
    config = checkpoint_config(cfg, backbone, folder, tok_hash, domains, lm.has_image)
    config["mlm_head"] = "backbone" if head_from_backbone else "tied, fresh"

    backbone_ids = {id(p) for p in backbone.parameters()}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((id(p) in backbone_ids, p.dim() < 2), []).append(p)
    optimizer = torch.optim.AdamW(
        [{"params": ps, "lr": cfg.lr if is_bb else cfg.head_lr, "weight_decay": 0.0 if no_decay else cfg.weight_decay} for (is_bb, no_decay), ps in sorted(groups.items())]
    )
    batches = SequenceBatches(domains.train_sequences, cfg.max_len, cfg.batch_size, cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    start, history = 0, []
    if resume:
        saved = read_config(out)
        if [d["fingerprint"] for d in saved["domains"]] != [ds.fingerprint for ds in domains.datasets]:
            raise RecxError(f"{out / CONFIG}: pretrained on other domains (fingerprints differ from --domains)")
        if saved.get("tokenizer_hash") != tok_hash or saved["backbone"]["signature"] != config["backbone"]["signature"]:
            raise RecxError(f"{out / CONFIG}: another backbone or tokenizer than --lm {cfg.lm!r}")
        if (out / STATE).is_file():
            state = torch.load(out / STATE, map_location="cpu", weights_only=False)
            model.lm.load_state_dict(state["lm"])
            model.mlm_head.load_state_dict(state["mlm_head"])
            optimizer.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["rng"]["torch"])
            np.random.set_state(state["rng"]["numpy"])
            generator.set_state(state["generator"])
            start = state["epoch"] + 1
            history = [json.loads(l) for l in (out / METRICS).read_text().splitlines() if l.strip()][:start]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CONFIG, json.dumps({**config, "epochs_done": start}, indent=2, sort_keys=True) + "\n")

    steps = batches.num_batches() if cfg.steps_per_epoch <= 0 else min(cfg.steps_per_epoch, batches.num_batches())
    done = 0
    for epoch in range(start, cfg.epochs):
        if max_epochs_this_call is not None and done >= max_epochs_this_call:
            break
        model.train()
        lm.tokens_seen = 0
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        n = 0
        for step, batch in enumerate(batches.epoch(epoch)):
            if step >= steps:
                break
            loss, parts = model.step(Batch(batch.inputs.to(device), batch.targets.to(device), batch.rows), generator, amp_dtype)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            n += 1
            for k, v in {"loss": loss.item(), **parts}.items():
                sums[k] = sums.get(k, 0.0) + v
            if progress and step % 20 == 0:
                print(f"epoch {epoch} step {step}/{steps} loss {loss.item():.4f}", flush=True)
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch, "steps": n, "seconds": seconds, **{k: v / max(n, 1) for k, v in sums.items()}, **lm.epoch_stats(seconds)}
        history.append(row)
        weights = {**lm.state_dict(), **{f"mlm_head.{k}": v for k, v in model.mlm_head.state_dict().items()}}
        torch_save(weights, out / WEIGHTS)
        torch_save({"lm": lm.state_dict(), "mlm_head": model.mlm_head.state_dict(), "optimizer": optimizer.state_dict(),
                     "rng": _rng_state(), "generator": generator.get_state(), "epoch": epoch}, out / STATE)
        atomic_write_text(out / METRICS, "".join(json.dumps(r, sort_keys=True) + "\n" for r in history))
        atomic_write_text(out / CONFIG, json.dumps({**config, "epochs_done": epoch + 1}, indent=2, sort_keys=True) + "\n")
        if progress:
            print(f"epoch {epoch}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch"), flush=True)
        done += 1
    return out
