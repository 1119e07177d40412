"""`recx pretrain`: recommendation-oriented pre-training of the Reo-LM across domains.

Every domain's catalog joins one global catalog (domain d's item i -> offset_d + i) and every
user's training sequence (``seq[:-2]``, never a valid or test item) is remapped into it, so the
shuffled batches mix domains.  Per step (ROMA's recipe):

- next-item: a random prefix of each row predicts its next item, recx's debiased in-batch CE
  (the same module `recx train` uses) over the LM's user vector and the items encoded alone;
- masked tokens (weight ``mlm_weight``, 0.1): ``mlm_ratio`` of the text tokens of the packed
  user sequence (never [CLS] / [SEP], image slots or padding) hidden and predicted by a
  tied-embedding MLM head (the backbone's own head when its checkpoint has one).  One forward
  over the masked user sequence gives both the MLM hidden states and the user vector;
- item-image alignment (``align_weight``, 0 by default: not computed): symmetric InfoNCE
  between an item's text vector and its projected image token, over the target items that
  have an image (only when image stores are given).

``tuning="molora"`` freezes the backbone and trains mixture-of-LoRA adapters (molora.py); the
top blocks' experts are routed by domain: each forward's rows (a user's row, an item) use the
expert of the domain they come from.

The checkpoint directory (checkpoint.py) is rewritten after every epoch; ``resume=True``
continues from it and ends with the weights an uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from recx.artifacts import atomic_write_text, torch_save
from recx.data.dataset import SequenceDataset
from recx.device import autocast
from recx.distributed import join
from recx.errors import RecxError
from recx.trainer.engine import LoopSettings, StepOutput, Task, run_epochs, seed_everything
from recx.trainer.data import Batch, SequenceBatches
from recx.trainer.losses.debiased_ce import DebiasedCrossEntropy
from recx.trainer.losses.softmax import softmax_cross_entropy
from recx.trainer.reolm.backbone import load_backbone, load_tokenizer, locate_backbone, tokenizer_hash
from recx.trainer.checkpoint import read_metrics
from recx.trainer.reolm.checkpoint import CONFIG, STATE, WEIGHTS, backbone_signature, canonical_lm, read_config
from recx.trainer.reolm.heads import TiedMLMHead, alignment_loss, mask_tokens
from recx.trainer.reolm.model import ReoLM
from recx.trainer.reolm.molora import apply_molora, set_domains
from recx.trainer.reolm.packing import Specials, collate, pack
from recx.trainer.reolm.pretrain_config import PretrainConfig
from recx.trainer.reolm.tokens import ItemTokens, item_tokens

FORMAT = "recx-reolm-pretrain-1"


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

    def item_domains(self) -> torch.Tensor:
        """[N+1] long: the --domains index of every global item (row 0, padding: 0)."""
        out = torch.zeros(self.tokens.num_items + 1, dtype=torch.long)
        for d, (ds, off) in enumerate(zip(self.datasets, self.offsets)):
            out[off + 1 : off + 1 + ds.num_items] = d
        return out


def load_domains(cfg: PretrainConfig, tokenizer: Any, tok_hash: str) -> Domains:
    from recx.featurize.store import check_store, open_store

    datasets = [SequenceDataset(d) for d in cfg.domains]
    # NoItemTextError names the file
    parts = [item_tokens(ds, tokenizer, tok_hash, cfg.item_tokens, mode=cfg.item_text, attr_budget=cfg.attr_tokens) for ds in datasets]
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


def attribute_types(tokens: ItemTokens) -> int:
    """Rows of the LM's attribute-type embedding: the attributes items are read as (0: plain text)."""
    return len(tokens.attributes) if tokens.types is not None else 0


def tuning_config(cfg: PretrainConfig) -> dict[str, Any]:
    """What the checkpoint's weights need to be read again (resume, `recx train --init`)."""
    if cfg.tuning == "molora":
        return {"name": "molora", "rank": cfg.lora_rank, "alpha": cfg.lora_alpha, "experts": cfg.lora_experts}
    return {"name": cfg.tuning}


def checkpoint_config(cfg: PretrainConfig, backbone: nn.Module, folder: Path, tok_hash: str, domains: Domains, has_image: bool) -> dict[str, Any]:
    packing = {"item_text": cfg.item_text, "attr_tokens": cfg.attr_tokens, "item_tokens": cfg.item_tokens, "user_tokens": cfg.user_tokens,
               "user_items": cfg.user_items, "max_items": cfg.user_items or cfg.max_len, "attribute_types": attribute_types(domains.tokens),
               "attribute_names": list(domains.tokens.attributes) if domains.tokens.types is not None else [], "image_slot": has_image, "pooling": cfg.pooling}
    return {
        "format": FORMAT,
        "backbone": {"name": cfg.lm, "canonical": canonical_lm(cfg.lm), "path": str(folder), "signature": backbone_signature(backbone)},
        "tokenizer_hash": tok_hash,
        "packing": packing,
        "tuning": tuning_config(cfg),
        "domains": [
            {"path": str(ds.path), "name": ds.name, "fingerprint": ds.fingerprint, "catalog_fingerprint": ds.catalog_fingerprint,
             "items": ds.num_items, "image_store": domains.stores.get(d)}
            for d, ds in enumerate(domains.datasets)
        ],
        "options": dataclasses.asdict(cfg),
    }


def maskable(users: dict[str, torch.Tensor]) -> torch.Tensor:
    """[B, T] bool: the text tokens of packed user sequences (not [CLS] / [SEP], image slots or padding)."""
    return (users["item_positions"] > 0) & (users["image_items"] == 0) & (users["attention_mask"] > 0)


class RoutedItems:
    """The LM's item tower with each item's domain routing the top experts (molora): the
    ItemVectors the in-batch loss reads during pre-training."""

    def __init__(self, model: "Pretrainer"):
        self.model = model

    def __call__(self, items: torch.Tensor) -> torch.Tensor:
        """items [...] global indices (0 = padding -> zeros) -> [..., D], each distinct item encoded once."""
        lm = self.model.lm
        uniq, inverse = torch.unique(items.reshape(-1), return_inverse=True)
        out = torch.zeros(len(uniq), lm.dim, device=lm.item_position.weight.device)
        real = uniq > 0
        if real.any():
            ids = uniq[real]
            self.model.route(ids)
            out = out.index_put((real.nonzero(as_tuple=True)[0],), lm.encode(lm.pack_items(ids.tolist())))
        return out[inverse].view(*items.shape, lm.dim)


class Pretrainer(nn.Module):
    """The LM and its MLM head; ``forward`` returns the weighted loss and its parts.

    item_domains [N+1] long: the domain of every global item (routes molora's top experts)."""

    def __init__(self, lm: ReoLM, head: TiedMLMHead, ce: DebiasedCrossEntropy, cfg: PretrainConfig, item_domains: torch.Tensor | None = None):
        super().__init__()
        self.lm, self.mlm_head, self.ce, self.cfg = lm, head, ce, cfg
        self.routed = cfg.tuning == "molora"
        if item_domains is None:
            item_domains = torch.zeros(lm.tokens.num_items + 1, dtype=torch.long)
        self.register_buffer("item_domains", item_domains.long(), persistent=False)

    def route(self, items: torch.Tensor | None) -> None:
        """The next forwards' rows are ``items`` [B] (global indices; their domains route the top
        experts); None: no routing (the gate)."""
        if self.routed:
            set_domains(self.lm.backbone, None if items is None else self.item_domains[items.to(self.item_domains.device)])

    def user_batch(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """inputs [B, L] left-padded histories -> the packed users' tensors, each [B, T]."""
        lm = self.lm
        packed = lm.pack_users([row[row > 0].tolist() for row in inputs.cpu()])
        return {k: torch.from_numpy(v).to(lm.item_position.weight.device) for k, v in collate(packed, lm.specials.pad).items()}

    def forward(self, batch: Batch, generator: torch.Generator, amp_dtype: torch.dtype | None) -> tuple[torch.Tensor, dict[str, float]]:
        """batch inputs / targets [B, L] -> (the weighted loss, its parts as floats)."""
        lm, cfg = self.lm, self.cfg
        device = lm.item_position.weight.device
        batch = lm.training_batch(batch, generator)
        users = self.user_batch(batch.inputs)
        ids, chosen = users["input_ids"], None
        if cfg.mlm_weight > 0:
            ids, chosen = mask_tokens(users["input_ids"], maskable(users), cfg.mlm_ratio, lm.specials.slot, generator)
        try:
            with autocast(device, amp_dtype):
                self.route(batch.targets[:, -1])  # a row's items all come from its user's domain
                hidden = lm.hidden_in_chunks(users, ids)  # [B, T, H]: the user vector and the MLM read the same states
                if lm.training:
                    lm.tokens_seen += int(users["attention_mask"].sum())
                user = lm.pool(hidden, users["attention_mask"])  # [B, D]
                states = user.unsqueeze(1).expand(-1, batch.inputs.shape[1], -1)
                next_item = self.ce(states, batch, RoutedItems(self) if self.routed else lm.tower)
                loss, parts = next_item, {"next_item": next_item.item()}
                if chosen is not None:
                    mlm = self.mlm_loss(hidden, users["input_ids"], chosen)
                    loss = loss + cfg.mlm_weight * mlm
                    parts["mlm"] = mlm.item()
                align = self.align_loss(batch.targets[:, -1]) if cfg.align_weight > 0 and lm.has_image else None
                if align is not None:
                    loss = loss + cfg.align_weight * align
                    parts["align"] = align.item()
        finally:
            self.route(None)
        return loss, parts

    def mlm_loss(self, hidden: torch.Tensor, input_ids: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        """hidden [B, T, H] of the masked input, the true input_ids [B, T], chosen [B, T] bool -> CE."""
        logits = self.mlm_head(hidden[chosen], self.lm.backbone.get_input_embeddings().weight)  # [M, V]
        return softmax_cross_entropy(logits.float(), input_ids[chosen])

    def align_loss(self, targets: torch.Tensor) -> torch.Tensor | None:
        """InfoNCE of text vs image over the distinct targets [B] that have an image (None: under 2)."""
        lm = self.lm
        ids = torch.unique(targets)
        ids = ids[(ids > 0) & lm.image_present[ids]]
        if len(ids) < 2:
            return None
        self.route(ids)
        text = lm.encode([pack([i], lm.tokens, lm.user_budget, lm.specials, image_slot=False) for i in ids.tolist()])  # [M, D], no image slot
        return alignment_loss(text, lm.image_proj(lm.image_features[ids]), self.cfg.temperature)


def make_pretrainer(cfg: PretrainConfig, folder: Path, tokenizer: Any, backbone: nn.Module, domains: Domains) -> tuple[Pretrainer, bool]:
    """The Reo-LM over the domains' catalog, its MLM head (and molora adapters); returns it and
    whether the head came from the backbone's checkpoint."""
    lm = ReoLM(
        backbone, domains.tokens, Specials.of(tokenizer), user_budget=cfg.user_tokens, max_items=cfg.user_items or cfg.max_len,
        image_features=domains.image_features, image_present=domains.image_present, pooling=cfg.pooling,
        normalize=True, grad_checkpointing=cfg.grad_checkpointing, attribute_types=attribute_types(domains.tokens),
    )
    if cfg.tuning == "molora":  # pre-training routes the top experts by domain: the gates stay frozen (and unread)
        apply_molora(backbone, cfg.lora_rank, cfg.lora_alpha, cfg.lora_experts, train_gates=False)
    head = TiedMLMHead(lm.dim, backbone.get_input_embeddings().weight.shape[0], eps=float(getattr(backbone.config, "layer_norm_eps", 1e-12)))
    from_backbone = head.load_from_backbone(folder)
    if cfg.mlm_weight == 0:
        head.requires_grad_(False)  # never read: no gradient, so DDP must not wait for one
    ce = DebiasedCrossEntropy(domains.counts, cfg.alpha, cfg.temperature, "sequence")
    return Pretrainer(lm, head, ce, cfg, domains.item_domains()), from_backbone


def loop_settings(cfg: PretrainConfig) -> LoopSettings:
    """New parameters train at --head-lr, the backbone (pretrained) at --lr."""
    return LoopSettings(epochs=cfg.epochs, lr=cfg.head_lr, weight_decay=cfg.weight_decay, pretrained_lr=cfg.lr,
                        pretrained_weight_decay=cfg.weight_decay, seed=cfg.seed, schedule=cfg.schedule, warmup_steps=cfg.warmup_steps,
                        grad_clip=cfg.grad_clip, precision=cfg.precision, steps_per_epoch=cfg.steps_per_epoch, lr_hint="--lr / --head-lr")


class PretrainTask(Task):
    """Reo-LM pre-training in the shared loop: one next-item target per row, plus the masked
    tokens and alignment terms of :class:`Pretrainer`."""

    def __init__(self, model: Pretrainer, batches: SequenceBatches, cfg: PretrainConfig, config: dict[str, Any], out: Path, device: torch.device):
        self.model = self.module = model
        self.sequences, self.cfg, self.config, self.out, self.device = batches, cfg, config, out, device
        self.generator = torch.Generator().manual_seed(cfg.seed + 1)

    def batches(self, epoch: int):
        return self.sequences.epoch(epoch)

    def num_batches(self) -> int:
        return self.sequences.num_batches()

    def step(self, module: nn.Module, batch: Batch, amp_dtype: torch.dtype | None) -> StepOutput:
        loss, parts = module(Batch(batch.inputs.to(self.device), batch.targets.to(self.device), batch.rows), self.generator, amp_dtype)
        return StepOutput(loss, int(batch.inputs.shape[0]), parts)

    def pretrained_parameters(self) -> list[nn.Parameter]:
        return list(self.model.lm.backbone.parameters())

    def epoch_stats(self, seconds: float) -> dict[str, float]:
        return self.model.lm.epoch_stats(seconds)

    def rank_state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_rank_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])

    def on_epoch_end(self, epoch: int, row: dict[str, Any], improved: bool) -> None:
        lm = self.model.lm
        torch_save({**lm.state_dict(), **{f"mlm_head.{k}": v for k, v in self.model.mlm_head.state_dict().items()}}, self.out / WEIGHTS)
        atomic_write_text(self.out / CONFIG, json.dumps({**self.config, "epochs_done": epoch + 1}, indent=2, sort_keys=True) + "\n")


def pretrain(cfg: PretrainConfig, out: str | Path, resume: bool = False, progress: bool = True, max_epochs_this_call: int | None = None) -> Path:
    """Pre-train into the checkpoint dir ``out``; returns it."""
    cfg.validate()
    out = Path(out)
    if (out / CONFIG).is_file() and not resume:
        raise RecxError(f"{out}: a pretrain checkpoint exists; continue it with --resume or choose another --out")
    seed_everything(cfg.seed)
    ctx = join(cfg.device)
    device = ctx.device
    folder = locate_backbone(cfg.lm)
    tokenizer = load_tokenizer(folder)
    tok_hash = tokenizer_hash(tokenizer)
    backbone = load_backbone(folder)
    domains = load_domains(cfg, tokenizer, tok_hash)
    model, head_from_backbone = make_pretrainer(cfg, folder, tokenizer, backbone, domains)
    model = model.to(device)
    config = checkpoint_config(cfg, backbone, folder, tok_hash, domains, model.lm.has_image)
    config["mlm_head"] = "backbone" if head_from_backbone else "tied, fresh"
    if resume:
        saved = read_config(out)
        if [d["fingerprint"] for d in saved["domains"]] != [ds.fingerprint for ds in domains.datasets]:
            raise RecxError(f"{out / CONFIG}: pretrained on other domains (fingerprints differ from --domains)")
        if saved.get("tokenizer_hash") != tok_hash or saved["backbone"]["signature"] != config["backbone"]["signature"]:
            raise RecxError(f"{out / CONFIG}: another backbone or tokenizer than --lm {cfg.lm!r}")
        if saved.get("tuning", {"name": "full"}) != config["tuning"]:
            raise RecxError(f"{out / CONFIG}: pretrained with --tuning {saved.get('tuning', {'name': 'full'})}, resumed with {config['tuning']}")
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        epochs_done = len(read_metrics(out)) if resume else 0
        atomic_write_text(out / CONFIG, json.dumps({**config, "epochs_done": epochs_done}, indent=2, sort_keys=True) + "\n")
    ctx.barrier()
    batches = SequenceBatches(domains.train_sequences, cfg.max_len, cfg.batch_size, cfg.seed, ctx.rank, ctx.world_size)
    task = PretrainTask(model, batches, cfg, config, out, device)
    run_epochs(task, loop_settings(cfg), out, ctx, state_file=STATE, resume=resume, progress=progress, max_epochs_this_call=max_epochs_this_call)
    return out
