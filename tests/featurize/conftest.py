"""Tiny local models and datasets for the featurize tests (no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recx.data.dataset import Item, SequenceDataset, write_dataset
from tiny_models import WORDS, save_bert_tokenizer

def make_dataset(root: Path, texts: list[str | None], images: list[str | None] | None = None, name: str = "data") -> SequenceDataset:
    """A dataset whose item k+1 has texts[k] (and images[k], paths relative to root)."""
    images = images or [None] * len(texts)
    items = [Item(id=f"i{k}", text=t, image=im) for k, (t, im) in enumerate(zip(texts, images))]
    n = len(items)
    seqs = [[1 + (u + j) % n for j in range(3)] for u in range(4)]
    return write_dataset(root / name, items, [f"u{u}" for u in range(4)], seqs, meta={"source": "test"}, image_root=root)


def random_texts(n: int, seed: int = 0, missing_every: int = 4) -> list[str | None]:
    rng = np.random.default_rng(seed)
    return [
        None if k % missing_every == 0 else " ".join(rng.choice(WORDS, size=int(rng.integers(1, 12))))
        for k in range(n)
    ]


def write_images(root: Path, n: int, size: tuple[int, int] = (40, 30), seed: int = 0) -> list[str]:
    """n random RGB JPEG-free PNG images under root/img; returns paths relative to root."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    rel = []
    for k in range(n):
        arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(arr).save(root / "img" / f"{k}.png")
        rel.append(f"img/{k}.png")
    return rel


@pytest.fixture
def dataset_factory(tmp_path):
    """make(texts, images=None, name='data') -> SequenceDataset under tmp_path."""

    def make(texts, images=None, name="data"):
        return make_dataset(tmp_path, texts, images, name)

    return make


@pytest.fixture
def texts_factory():
    return random_texts


@pytest.fixture
def images_factory(tmp_path):
    """make(n, size=(40, 30)) -> image paths relative to tmp_path."""

    def make(n, size=(40, 30), seed=0):
        return write_images(tmp_path, n, size, seed)

    return make


def _save_hf(folder: Path, model, with_tokenizer: bool = False, image_size: int | None = None) -> Path:
    import json

    folder.mkdir(parents=True, exist_ok=True)
    if with_tokenizer:
        save_bert_tokenizer(folder)
    if image_size is not None:
        (folder / "preprocessor_config.json").write_text(json.dumps({
            "do_resize": True, "size": {"height": image_size, "width": image_size}, "resample": 3,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}))
    model.eval().save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory) -> Path:
    import torch
    from transformers import RobertaConfig, RobertaModel

    torch.manual_seed(1)
    cfg = RobertaConfig(vocab_size=5 + len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=80, pad_token_id=0)
    return _save_hf(tmp_path_factory.mktemp("tiny-roberta"), RobertaModel(cfg), with_tokenizer=True)


@pytest.fixture(scope="session")
def tiny_opt(tmp_path_factory) -> Path:
    import torch
    from transformers import OPTConfig, OPTModel

    torch.manual_seed(2)
    cfg = OPTConfig(vocab_size=5 + len(WORDS), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, ffn_dim=64,
                    word_embed_proj_dim=32, max_position_embeddings=64, pad_token_id=0)
    return _save_hf(tmp_path_factory.mktemp("tiny-opt"), OPTModel(cfg), with_tokenizer=True)


@pytest.fixture(scope="session")
def tiny_swin(tmp_path_factory) -> Path:
    import torch
    from transformers import SwinConfig, SwinModel

    torch.manual_seed(3)
    cfg = SwinConfig(image_size=32, patch_size=4, embed_dim=16, depths=[1, 2], num_heads=[1, 2], window_size=4)
    return _save_hf(tmp_path_factory.mktemp("tiny-swin"), SwinModel(cfg), image_size=32)


@pytest.fixture(scope="session")
def tiny_mae(tmp_path_factory) -> Path:
    import torch
    from transformers import ViTMAEConfig, ViTMAEModel

    torch.manual_seed(4)
    cfg = ViTMAEConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, mask_ratio=0.75)
    return _save_hf(tmp_path_factory.mktemp("tiny-mae"), ViTMAEModel(cfg), image_size=32)


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> tuple[str, Path]:
    """(arch name, checkpoint file) of a tiny open_clip ViT registered under a test-only name."""
    import json

    import open_clip
    import torch

    folder = tmp_path_factory.mktemp("tiny-clip")
    arch = "recx-test-tiny-clip"
    (folder / f"{arch}.json").write_text(json.dumps({
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    }))
    open_clip.add_model_config(folder / f"{arch}.json")
    torch.manual_seed(5)
    model = open_clip.create_model(arch, pretrained=None)
    torch.save(model.state_dict(), folder / "tiny.pt")
    return arch, folder / "tiny.pt"
