"""The Reo-LM model: one HF encoder reads packed item text (+ image tokens) for both towers.

- Item tower: a lone item packed as ``[CLS] tokens [IMG] [SEP]`` -> pooled vector [D].
- User tower: the user's items newest first (see packing.py) -> pooled vector [D], same weights.
- Image token: ``image_proj(frozen store embedding)``, or a learned missing-image vector.
- Item positions: a learned embedding (zero at init, so the pretrained LM starts unchanged)
  added to the token embeddings before the LM adds its own position embeddings; so is the
  attribute type of each token (title, category, brand, ...) when items are read as attributes.
- Negatives (stage 1): the loss's candidates outside the step's own targets come from a
  catalog table encoded without gradient at the start of each epoch (or each validation
  interval), so ``--loss full_ce`` / ``sampled_softmax`` rank against the whole catalog at the
  cost of one no-grad pass over it; the step's targets are encoded with gradient.
- Stage 2: the item table is encoded once (from the weights the run starts with) and frozen
  into the model's state; the loss ranks against it and only the user side learns.  With
  ``item_ids`` a learned vector per item (zero at the start), times ``item_id_scale``, is added
  to each frozen row: the item side can then learn what an item's text does not say (a text + ID
  fusion, not ROMA's).  With ``history_ids`` another learned vector per item (zero at the start)
  is added to the input embedding of every token of that item in a user's packed sequence, so
  the user side reads which items the history holds, not only their text.  Stage 2 never
  encodes an item again (its table was frozen before any ID moved), so only users read them.

The training loop (recx/trainer/loop.py) drives it through the interface SequentialRecommender
has: ``training_batch``, ``forward`` -> states, ``tower`` (ItemVectors for the loss),
``item_table``, ``user_vectors`` and ``targets_per_step``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from recx.errors import RecxError
from recx.featurize.base import masked_mean
from recx.trainer.data import Batch
from recx.trainer.reolm.molora import routed_rows
from recx.trainer.reolm.packing import Packed, Specials, collate, length_chunks, pack
from recx.trainer.reolm.tokens import ItemTokens

TUNINGS = ("full", "topk")
EVAL_TOKENS = 16384  # tokens per no-grad batch when encoding users or the catalog
CHUNK_COST_TOKENS = 64  # padded tokens one more forward pass is worth (encode's length chunks)


class StepCatalog:
    """ItemVectors of one training step.

    - In-batch losses (stage 1): every item asked for is encoded with gradient, once each
      (under DDP that includes the other ranks' targets, as the gathered loss needs).
    - Catalog-wide losses (stage 1, ``catalog_negatives``): the step's own targets are encoded
      with gradient, every other item is a row of the epoch's no-grad catalog table.
    - Stage 2 (``frozen_items``): every item is a row of the frozen table.
    """

    def __init__(self, model: "ReoLM"):
        self.model = model
        self.ids = torch.zeros(0, dtype=torch.long, device=model.item_position.weight.device)
        self.vectors: torch.Tensor | None = None  # [len(ids), D] with gradient

    def prefetch(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Encode the batch's targets [B, L] (under the caller's autocast).  ``inputs`` are not
        encoded: a Reo-LM user reads the items' tokens, not their vectors."""
        if self.model.frozen_items:
            return
        if self.model.catalog_negatives:
            self.model.negatives_table()  # under the step's autocast, like the targets
        ids = torch.unique(targets[targets > 0])
        self.ids, self.vectors = ids, self.model.encode_items(ids)

    def _fresh_rows(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(found [n] bool, rows [n]) of flat ``items`` in the step's fresh vectors."""
        if not len(self.ids):
            return torch.zeros_like(items, dtype=torch.bool), torch.zeros_like(items)
        pos = torch.searchsorted(self.ids, items).clamp(max=len(self.ids) - 1)
        return self.ids[pos] == items, pos

    def __call__(self, items: torch.Tensor) -> torch.Tensor:
        """items [...] -> [..., D]: fresh rows for the step's targets, table rows otherwise."""
        flat = items.reshape(-1)
        found, pos = self._fresh_rows(flat)
        if bool(found.all()) and self.vectors is not None:
            return self.vectors[pos].view(*items.shape, -1)
        if not (self.model.frozen_items or self.model.catalog_negatives):  # in-batch: encode what is missing
            new = torch.unique(flat[~found])
            fresh = self.model.encode_items(new)
            self.ids, order = torch.sort(torch.cat([self.ids, new]))
            self.vectors = (fresh if self.vectors is None else torch.cat([self.vectors, fresh]))[order]
            return self(items)
        out = self.model.negatives_table()[flat]
        if self.vectors is not None and bool(found.any()):
            out = torch.where(found.unsqueeze(-1), self.vectors[pos].to(out.dtype), out)
        return out.view(*items.shape, -1)

    def table(self) -> torch.Tensor:
        """[N+1, D]: the no-grad table with the step's targets' rows replaced by their fresh vectors."""
        table = self.model.negatives_table()
        if self.vectors is None or not len(self.ids):
            return table
        return table.index_put((self.ids,), self.vectors.to(table.dtype))


class ItemEncoder:
    """ItemVectors over a ReoLM (deliberately not a Module: the model owns every parameter)."""

    def __init__(self, model: "ReoLM"):
        self.model = model

    def __call__(self, items: torch.Tensor) -> torch.Tensor:
        return self.model.encode_items(items)

    def table(self) -> torch.Tensor:
        return self.model.item_table()

    @property
    def dim(self) -> int:
        return self.model.dim


class ReoLM(nn.Module):
    """Args:
        backbone: HF ``AutoModel`` (BERT-like; must accept ``inputs_embeds``).
        tokens: item token ids of the catalog (N items).
        specials: special token ids (packing.Specials).
        user_budget: tokens of a packed user sequence; max_items: most history items read.
        image_features: [N+1, F] frozen image embeddings and image_present [N+1] bool, or None
            for text only (no image slot).
        pooling: "mean" | "cls"; normalize: L2-normalise output vectors (cosine scores).
        tuning: "full" (every backbone weight) or "topk" (only the top ``tune_blocks`` blocks).
        attribute_types: attribute types the item text has (0: none, no type embedding).
        catalog_negatives: the loss ranks against the whole catalog (full_ce, sampled_softmax):
            the step builds the no-grad catalog table once per epoch.
        frozen_items: stage 2, the item table is encoded once and frozen (``frozen_table``).
        item_ids: stage 2 only, add a learned per-item vector [N+1, D] (zero at init, row 0
            padding), times ``item_id_scale``, to the frozen table.  build_reolm passes the
            loss temperature as the scale: an ID then adds u.w to a logit, an unscaled dot
            product as in an ID table, not u.w / temperature (at 0.05, 20 times the step).
        history_ids: stage 2 only, add a learned per-item vector [N+1, H] (zero at init, row 0
            padding) to the input embedding of each token of that item in a packed user;
            ``history_id_dropout`` drops their elements in training (SASRec's input dropout).
    """

    causal = True  # one next-item target per row; the loop's seq2seq batches feed it
    history_term = None  # no repeat-aware term (config.HISTORY_MODELS)

    def __init__(
        self,
        backbone: nn.Module,
        tokens: ItemTokens,
        specials: Specials,
        *,
        user_budget: int = 256,
        max_items: int = 50,
        image_features: torch.Tensor | None = None,
        image_present: torch.Tensor | None = None,
        image_dim: int | None = None,
        pooling: str = "mean",
        normalize: bool = True,
        tuning: str = "full",
        tune_blocks: int = 1,
        grad_checkpointing: bool = False,
        table_batch: int = 256,
        attribute_types: int = 0,
        catalog_negatives: bool = False,
        frozen_items: bool = False,
        item_ids: bool = False,
        item_id_scale: float = 1.0,
        history_ids: bool = False,
        history_id_dropout: float = 0.0,
    ):
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"Reo-LM pooling must be mean or cls, not {pooling!r}")
        if tuning not in TUNINGS:
            raise ValueError(f"--reo-tuning {tuning!r}: expected one of {', '.join(TUNINGS)} (lora is applied by build_reolm)")
        self.backbone = backbone
        self.dim = int(backbone.config.hidden_size)
        self.tokens = tokens
        self.specials = specials
        self.user_budget = user_budget
        self.max_items = max_items
        self.pooling = pooling
        self.normalize = normalize
        self.table_batch = table_batch
        self.item_position = nn.Embedding(max_items + 1, self.dim)
        nn.init.zeros_(self.item_position.weight)
        self.attribute_type: nn.Embedding | None = None
        if attribute_types:
            self.attribute_type = nn.Embedding(attribute_types + 1, self.dim)  # row 0: special tokens
            nn.init.zeros_(self.attribute_type.weight)
        self.catalog_negatives = catalog_negatives
        self.frozen_items = frozen_items
        if frozen_items:  # saved with the weights: evaluation and resume score against the same table
            self.register_buffer("frozen_table", torch.zeros(tokens.num_items + 1, self.dim))
            self.register_buffer("frozen_ready", torch.zeros((), dtype=torch.bool))
        self.item_ids: nn.Embedding | None = None
        if item_ids:
            if not frozen_items:
                raise ValueError("Reo-LM item_ids are added to the frozen table of stage 2 (frozen_items)")
            self.item_ids = nn.Embedding(tokens.num_items + 1, self.dim, padding_idx=0)
            self.item_id_scale = float(item_id_scale)
            nn.init.zeros_(self.item_ids.weight)  # stage 2 starts from the text table alone
        self.history_ids: nn.Embedding | None = None
        if history_ids:
            if not frozen_items:  # an item encoded with gradient would read its own ID: another model
                raise ValueError("Reo-LM history_ids are read by the user side of stage 2 (frozen_items)")
            self.history_ids = nn.Embedding(tokens.num_items + 1, self.dim, padding_idx=0)
            nn.init.zeros_(self.history_ids.weight)  # stage 2 starts from the users' text alone
            self.history_id_dropout = nn.Dropout(history_id_dropout)
        self._negatives: torch.Tensor | None = None
        feat_dim = image_dim if image_dim is not None else (None if image_features is None else int(image_features.shape[1]))
        self.has_image = feat_dim is not None
        if self.has_image:
            self.image_proj = nn.Linear(feat_dim, self.dim)
            self.missing_image = nn.Parameter(torch.randn(self.dim) * 0.02)
            if image_features is None:  # pretraining domains without a store: every item is missing
                image_features = torch.zeros(tokens.num_items + 1, feat_dim)
                image_present = torch.zeros(tokens.num_items + 1, dtype=torch.bool)
            self.register_buffer("image_features", image_features.float(), persistent=False)
            self.register_buffer("image_present", image_present.bool(), persistent=False)
        self.tower = ItemEncoder(self)
        self.tokens_seen = 0  # real tokens encoded in training mode since the last epoch_stats()
        self._table: tuple[Any, torch.Tensor] | None = None
        pooler = getattr(backbone, "pooler", None)
        if isinstance(pooler, nn.Module):  # never read (we pool ourselves): no gradient, so DDP must not wait for one
            pooler.requires_grad_(False)
        if tuning == "topk":
            freeze_below_top(backbone, tune_blocks)
        if grad_checkpointing:
            backbone.gradient_checkpointing_enable()

    def adapt_state(self, state: dict[str, torch.Tensor], attribute_names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Another Reo-LM's weights fitted to this one's shapes, for `--init` and `--warm-start`:
        a model that packs more items keeps the source's item positions and starts the new
        ones fresh (zero); one that packs fewer keeps the first ones.  ``attribute_names``: the
        attributes of the source's token-type rows 1.. (None: this catalog's own, as in a warm
        start); each of this model's attributes takes the source's row of the same name, and one
        the source never read starts fresh (zero)."""
        state = dict(state)
        w, own = state.get("item_position.weight"), self.item_position.weight.detach()
        if w is not None and w.shape != own.shape and w.shape[1] == own.shape[1]:
            rows = min(len(w), len(own))
            state["item_position.weight"] = torch.cat([w[:rows].to(own.dtype), own[rows:].cpu()])
        types = state.get("attribute_type.weight")
        if attribute_names is not None and types is not None and self.attribute_type is not None:
            source = {name: k + 1 for k, name in enumerate(attribute_names)}
            mine = self.attribute_type.weight.detach().cpu().clone()
            mine[0] = types[0]  # the special tokens' row
            for k, name in enumerate(self.tokens.attributes):
                if name in source:
                    mine[k + 1] = types[source[name]]
            state["attribute_type.weight"] = mine
        return state

    # -- the LM over packed sequences ------------------------------------------------------
    def pretrained_parameters(self) -> list[nn.Parameter]:
        """The backbone's weights (their own learning rate and weight decay)."""
        return list(self.backbone.parameters())

    def embed(self, batch: dict[str, torch.Tensor], input_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Input embeddings [B, T, H]: word embeddings, image slots replaced, item positions (and
        attribute types, history IDs when the model has them) added."""
        ids = batch["input_ids"] if input_ids is None else input_ids
        emb = self.backbone.get_input_embeddings()(ids)
        if self.has_image:
            slots = batch["image_items"] > 0
            if slots.any():
                items = batch["image_items"][slots]
                vec = self.image_proj(self.image_features[items])
                vec = torch.where(self.image_present[items].unsqueeze(-1), vec, self.missing_image.to(vec.dtype))
                emb = emb.clone()
                emb[slots] = vec.to(emb.dtype)
        emb = emb + self.item_position(batch["item_positions"].clamp(max=self.max_items)).to(emb.dtype)
        if self.attribute_type is not None:
            emb = emb + self.attribute_type(batch["token_types"].clamp(max=self.attribute_type.num_embeddings - 1)).to(emb.dtype)
        if self.history_ids is not None:
            emb = emb + self.history_id_dropout(self.history_ids(batch["token_items"])).to(emb.dtype)
        return emb

    def hidden(self, batch: dict[str, torch.Tensor], input_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Last hidden states [B, T, H]."""
        return self.backbone(inputs_embeds=self.embed(batch, input_ids), attention_mask=batch["attention_mask"]).last_hidden_state

    def hidden_in_chunks(self, batch: dict[str, torch.Tensor], input_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``hidden`` of a right-padded batch of mixed lengths, run in encode's length chunks:
        [B, T, H], the same at every real token; a chunk's padding beyond its own longest is zero.
        Pre-training reads it: its masked-token loss needs every token's state, not a pooled one."""
        lengths = batch["attention_mask"].sum(1)  # [B]
        chunks = length_chunks(lengths.tolist(), CHUNK_COST_TOKENS)
        if len(chunks) == 1:
            return self.hidden(batch, input_ids)
        ids = batch["input_ids"] if input_ids is None else input_ids
        out: torch.Tensor | None = None
        for idx in chunks:
            rows = torch.from_numpy(idx).to(ids.device)
            width = int(lengths[rows].max())
            part = {k: v[rows, :width] for k, v in batch.items()}
            with routed_rows(self.backbone, rows):
                h = self.hidden(part, ids[rows, :width])  # [b, width, H]
            if out is None:
                out = h.new_zeros(*ids.shape, h.shape[-1])
            out[rows, :width] = h
        return out

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """hidden [B, T, H], mask [B, T] -> float32 [B, H] (unit norm when ``normalize``)."""
        out = masked_mean(hidden, mask) if self.pooling == "mean" else hidden[:, 0].float()
        return nn.functional.normalize(out, dim=-1) if self.normalize else out

    def encode(self, packed: Sequence[Packed]) -> torch.Tensor:
        """Packed sequences -> float32 [B, D], in their order.  Sequences of mixed lengths (a
        training batch's users: random prefixes of up to ``--user-items`` items) are encoded in
        length-sorted chunks, each padded only to its longest (``length_chunks``)."""
        chunks = length_chunks([len(p.input_ids) for p in packed], CHUNK_COST_TOKENS)
        if len(chunks) == 1:
            return self._encode_padded(packed)
        parts = []
        for idx in chunks:
            with routed_rows(self.backbone, torch.from_numpy(idx)):  # pre-training routes experts per row
                parts.append(self._encode_padded([packed[i] for i in idx]))
        out = torch.cat(parts)  # [B, D] in chunk order
        where = torch.from_numpy(np.argsort(np.concatenate(chunks), kind="stable")).to(out.device)
        return out[where]

    def _encode_padded(self, packed: Sequence[Packed]) -> torch.Tensor:
        """Packed sequences, right-padded to the longest -> float32 [B, D]."""
        device = self.item_position.weight.device
        batch = {k: torch.from_numpy(v).to(device) for k, v in collate(packed, self.specials.pad).items()}
        if self.training:
            self.tokens_seen += int(batch["attention_mask"].sum())
        return self.pool(self.hidden(batch), batch["attention_mask"])

    def pack_items(self, items: Sequence[int]) -> list[Packed]:
        return [pack([i], self.tokens, self.user_budget, self.specials, self.has_image) for i in items]

    def pack_users(self, histories: Sequence[Sequence[int]]) -> list[Packed]:
        return [pack(h, self.tokens, self.user_budget, self.specials, self.has_image, self.max_items) for h in histories]

    # -- towers ----------------------------------------------------------------------------
    def encode_items(self, items: torch.Tensor) -> torch.Tensor:
        """items [...] catalog indices (0 = padding -> zeros) -> [..., D] (each distinct item once)."""
        uniq, inverse = torch.unique(items.reshape(-1), return_inverse=True)
        out = torch.zeros(len(uniq), self.dim, device=self.item_position.weight.device)
        real = uniq > 0
        if real.any():
            out = out.index_put((real.nonzero(as_tuple=True)[0],), self.encode(self.pack_items(uniq[real].tolist())))
        return out[inverse].view(*items.shape, self.dim)

    def forward(self, inputs: torch.Tensor, masked: torch.Tensor | None = None, items=None) -> torch.Tensor:
        """inputs [B, L] left-padded histories -> states [B, L, D]: the user vector at every
        position (the loss reads the one position that has a target)."""
        u = self.encode(self.pack_users([row[row > 0].tolist() for row in inputs.cpu()]))
        return u.unsqueeze(1).expand(-1, inputs.shape[1], -1)

    def sequence_encoder(self) -> nn.Module:
        """Reo-LM has none: it encodes a user from the items' tokens, not from item vectors, so
        there is no item-vector encoder for `recx export` to script."""
        raise RecxError("a reo-lm run encodes users from item tokens, so it has no item-vector user encoder to export; "
                        "serve it with `recx recommend --run RUN` or `Recommender.from_run(RUN)`")

    def _weights_version(self) -> tuple:
        """Changes whenever any weight is written in place (optimizer steps, load_state_dict)."""
        return (self.training, torch.is_autocast_enabled("cpu"), tuple(p._version for p in self.parameters()), tuple(id(p) for p in self.parameters()))

    def begin_epoch(self) -> None:
        """A new epoch (or validation interval): the stage-1 catalog table is encoded again."""
        self._negatives = None

    def negatives_table(self) -> torch.Tensor:
        """[N+1, D] catalog vectors a step's loss ranks against: the frozen table (stage 2; with
        gradient into ``item_ids`` when it has them), else the no-grad table of the weights at the
        start of this epoch (the one validation just encoded, so it costs nothing more), encoded
        without dropout."""
        if self.frozen_items:
            return self.item_table()
        if self._negatives is None:
            self._negatives = self._encode_table_eval()
        return self._negatives

    @torch.no_grad()
    def _encode_table_eval(self) -> torch.Tensor:
        """[N+1, D] the catalog encoded by the current weights without dropout or gradient (the
        stage-1 negatives table, stage 2's frozen table)."""
        was = self.training
        self.eval()
        try:
            return self._encode_table()
        finally:
            self.train(was)

    def item_table(self) -> torch.Tensor:
        """[N+1, D] every catalog item encoded with the current weights (row 0 zeros), or the
        frozen table in stage 2 (plus ``item_ids``).  Cached until a weight changes; items sorted
        by token count so each batch pads little."""
        if self.frozen_items:
            if not bool(self.frozen_ready):
                self._freeze_table()
            return self.frozen_table if self.item_ids is None else self.frozen_table + self.item_id_scale * self.item_ids.weight
        return self._encode_table()

    @torch.no_grad()
    def _freeze_table(self) -> None:
        self.frozen_table.copy_(self._encode_table_eval())
        self.frozen_ready.fill_(True)

    def _encode_table(self) -> torch.Tensor:
        key = self._weights_version()
        if self._table is not None and self._table[0] == key:
            return self._table[1]
        lengths = self.tokens.lengths()[1:]
        order = np.argsort(lengths, kind="stable") + 1
        device = self.item_position.weight.device
        table = torch.zeros(self.tokens.num_items + 1, self.dim, device=device)
        with torch.set_grad_enabled(self.training and torch.is_grad_enabled()):
            for s in range(0, len(order), self.table_batch):
                idx = order[s : s + self.table_batch]
                table[torch.from_numpy(idx).to(device)] = self.encode(self.pack_items(idx.tolist()))
        self._table = None if table.requires_grad else (key, table)
        return table

    @torch.no_grad()
    def user_vectors(self, histories: list[np.ndarray], max_len: int, batch_size: int = 1024, autocast: Callable | None = None,
                     table: torch.Tensor | None = None) -> torch.Tensor:
        """[U, D] float32 user vectors in the order given; users batched by packed length.

        ``table`` is accepted for the shared signature and unused: the user tower reads the
        items' tokens, not their vectors."""
        device = self.item_position.weight.device
        packed = [pack(h[-max_len:] if max_len else h, self.tokens, self.user_budget, self.specials, self.has_image, self.max_items) for h in histories]
        order = np.argsort([len(p.input_ids) for p in packed], kind="stable")
        out = torch.zeros(len(histories), self.dim, device=device)
        # batches of about EVAL_TOKENS tokens: a fixed user count would make long batches huge
        s = 0
        while s < len(order):
            n = min(batch_size, len(order) - s)
            while n > 1 and n * len(packed[order[s + n - 1]].input_ids) > EVAL_TOKENS:
                n = max(1, n // 2)
            idx = order[s : s + n]
            with autocast() if autocast else torch.autocast(device.type, enabled=False):
                out[torch.from_numpy(idx).to(device)] = self.encode([packed[i] for i in idx]).float()
            s += n
        return out

    # -- what the training loop asks ---------------------------------------------------------
    def training_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        """One example per row: a random prefix of the row's items predicts the item after it.

        inputs [B, L'] the prefix, left-padded (right-aligned); targets [B, L'] zeros but the
        last column.  The cut is drawn from ``generator`` (saved in checkpoints: exact resume).
        """
        inputs, targets = batch.inputs.cpu(), batch.targets.cpu()
        B, L = inputs.shape
        valid = (inputs > 0) & (targets > 0)
        counts = valid.sum(1).clamp(min=1)
        cut = L - counts + (torch.rand(B, generator=generator) * counts).long().clamp(max=counts - 1)  # [B]
        shift = (L - 1 - cut).unsqueeze(1)  # move position cut to the last column
        src = torch.arange(L).unsqueeze(0) - shift
        new_inputs = torch.where(src >= 0, inputs.gather(1, src.clamp(min=0)), torch.zeros_like(inputs))
        width = int((new_inputs > 0).sum(1).max())
        new_inputs = new_inputs[:, L - width :]
        new_targets = torch.zeros_like(new_inputs)
        new_targets[:, -1] = targets[torch.arange(B), cut]
        device = batch.inputs.device
        return Batch(new_inputs.to(device), new_targets.to(device), batch.rows, *batch[3:])

    def epoch_stats(self, seconds: float) -> dict[str, float]:
        """Tokens encoded while training since the last call, and their rate over ``seconds``."""
        n, self.tokens_seen = self.tokens_seen, 0
        return {"tokens": n, "tokens_per_s": n / max(seconds, 1e-9)}

    def step_items(self) -> StepCatalog:
        """The step's item vectors: its targets encoded with gradient, other items from the
        catalog table (stage 1) or the frozen table (stage 2)."""
        return StepCatalog(self)

    @staticmethod
    def targets_per_step(batches: Any, mask_ratio: float) -> float:
        """One target per row."""
        return batches.num_rows / batches.num_batches()


def freeze_below_top(backbone: nn.Module, k: int) -> list[str]:
    """Freeze the backbone except its top ``k`` transformer blocks; returns their names."""
    from recx.featurize.text import find_blocks
    from recx.trainer.encoder_towers import unfreeze_top_of

    names = find_blocks(backbone, int(getattr(backbone.config, "num_hidden_layers", 0)))
    return unfreeze_top_of(backbone, names, k, "the backbone")
