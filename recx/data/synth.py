"""A small synthetic multimodal catalog whose content really predicts behaviour.

Every item has latent attributes (category, colour, material, brand, size, a free adjective).
The same attributes are written into its text ("Classic red linen dress by Norda, striped,
size M.") and drawn into its 64x64 image (shape = category, fill = colour, texture = material,
scale = size, corner badge = brand).  Users have tastes (preferred categories, colours, brands)
and sequential habits: the next item tends to share the category, brand and colour of the last
one, on top of a popularity skew.  A content tower can therefore generalise to items seen only
a few times, while an ID table must learn every item from its own interactions.

Generation is seeded (one ``numpy.random.Generator``) and takes a few seconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recx.artifacts import DATASET, check_replaceable
from recx.data.dataset import DatasetError, Item, SequenceDataset, write_dataset
from recx.options import DEFAULT_SEED, show_progress

CATEGORIES = ("dress", "shirt", "trousers", "shoes", "hat", "bag", "scarf", "jacket")
# category -> shape drawn in the image (same order as CATEGORIES)
SHAPES = ("triangle", "square", "tall-rectangle", "wide-ellipse", "circle", "hexagon", "diamond", "cross")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (204, 34, 34),
    "blue": (34, 68, 204),
    "green": (34, 153, 51),
    "yellow": (238, 204, 17),
    "black": (20, 20, 20),
    "white": (250, 250, 250),
    "pink": (238, 119, 170),
    "orange": (238, 119, 17),
    "purple": (119, 34, 170),
    "brown": (120, 72, 30),
}
# material -> texture drawn over the fill, and the word the text uses for it
MATERIALS = ("cotton", "linen", "denim", "wool", "silk", "leather")
PATTERNS = ("plain", "striped", "twill", "checked", "dotted", "stitched")
BRANDS = (
    "Norda", "Velto", "Kasimo", "Brisk", "Oakhaven", "Lumo", "Tessel", "Marlow", "Quill", "Zephyr",
    "Arden", "Solace", "Pellam", "Rivo", "Fenwick", "Halden", "Imari", "Juno", "Kestrel", "Loomis",
)
SIZES = ("S", "M", "L", "XL")
ADJECTIVES = ("classic", "slim", "vintage", "oversized", "everyday", "summer", "winter", "soft", "bold", "minimal", "relaxed", "tailored")
BADGE_COLOURS = ((0, 0, 0), (90, 90, 90), (0, 128, 128), (160, 0, 96), (96, 96, 0))
BACKGROUND = (225, 225, 225)
TEXT_TEMPLATE = "{Adjective} {colour} {material} {category} by {brand}, {pattern}, size {size}."

# Strength of each habit in the next-item logits (log-odds over an unrelated item).
SAME_CATEGORY = 3.0
SAME_BRAND = 3.0
SAME_COLOUR = 1.2
LIKES_CATEGORY = 1.0
LIKES_BRAND = 0.8
LIKES_COLOUR = 0.6
POPULARITY_EXPONENT = 0.9  # item weight ~ 1 / (rank + 10) ** exponent


@dataclass(frozen=True)
class Attributes:
    """Latent attributes of the catalog, one entry per item (0-based, item index - 1)."""

    category: np.ndarray  # [N] int, index into CATEGORIES
    colour: np.ndarray  # [N] int, index into COLOURS
    material: np.ndarray  # [N] int, index into MATERIALS
    brand: np.ndarray  # [N] int, index into BRANDS
    size: np.ndarray  # [N] int, index into SIZES
    adjective: np.ndarray  # [N] int, index into ADJECTIVES

    def describe(self, i: int) -> dict[str, str]:
        """Attribute names of item ``i`` (0-based), as stored in the item's ``meta``."""
        return {
            "category": CATEGORIES[self.category[i]],
            "colour": list(COLOURS)[self.colour[i]],
            "material": MATERIALS[self.material[i]],
            "brand": BRANDS[self.brand[i]],
            "size": SIZES[self.size[i]],
            "adjective": ADJECTIVES[self.adjective[i]],
        }


def item_text(attrs: dict[str, str]) -> str:
    """The text of an item from its attribute names (see TEXT_TEMPLATE)."""
    return TEXT_TEMPLATE.format(
        Adjective=attrs["adjective"].capitalize(),
        colour=attrs["colour"],
        material=attrs["material"],
        category=attrs["category"],
        brand=attrs["brand"],
        pattern=PATTERNS[MATERIALS.index(attrs["material"])],
        size=attrs["size"],
    )


def _shape_polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    """Vertices of ``shape`` centred at (cx, cy) with half-extent r; None for ellipse-like shapes."""
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "tall-rectangle":
        w = 0.5 * r
        return [(cx - w, cy - r), (cx + w, cy - r), (cx + w, cy + r), (cx - w, cy + r)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    if shape == "hexagon":
        return [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in np.arange(6) * np.pi / 3]
    if shape == "cross":
        w = 0.35 * r
        return [
            (cx - w, cy - r), (cx + w, cy - r), (cx + w, cy - w), (cx + r, cy - w), (cx + r, cy + w), (cx + w, cy + w),
            (cx + w, cy + r), (cx - w, cy + r), (cx - w, cy + w), (cx - r, cy + w), (cx - r, cy - w), (cx - w, cy - w),
        ]
    return None


def draw_item_image(attrs: dict[str, str], image_size: int = 64) -> "PIL.Image.Image":  # noqa: F821
    """Render an item's attributes as an RGB image [image_size, image_size].

    Shape follows the category, fill the colour, texture the material, scale the size, and a
    corner badge (shape and colour) the brand.  The centre pixel always shows the fill colour,
    so tests can check image <-> text consistency.
    """
    from PIL import Image, ImageDraw

    s = image_size
    fill = COLOURS[attrs["colour"]]
    shade = tuple(max(0, int(c * 0.55)) for c in fill) if sum(fill) > 120 else (110, 110, 110)
    shape = SHAPES[CATEGORIES.index(attrs["category"])]
    r = s * (0.24 + 0.05 * SIZES.index(attrs["size"]))
    cx = cy = s / 2

    mask = Image.new("L", (s, s), 0)
    md = ImageDraw.Draw(mask)
    poly = _shape_polygon(shape, cx, cy, r)
    if poly is not None:
        md.polygon(poly, fill=255)
    elif shape == "wide-ellipse":
        md.ellipse([cx - r, cy - 0.6 * r, cx + r, cy + 0.6 * r], fill=255)
    else:  # circle
        md.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)

    tex = Image.new("RGB", (s, s), fill)
    td = ImageDraw.Draw(tex)
    pattern = PATTERNS[MATERIALS.index(attrs["material"])]
    step = max(4, s // 10)
    # Textures keep clear of the centre pixel so the fill colour stays readable there.
    if pattern == "striped":
        for y in range(2, s, step):
            if abs(y - s // 2) > 1:
                td.line([(0, y), (s, y)], fill=shade, width=1)
    elif pattern == "twill":
        for k in range(-s, s, step):
            if abs(k) > 2:
                td.line([(k, 0), (k + s, s)], fill=shade, width=1)
    elif pattern == "checked":
        for k in range(2, s, step):
            if abs(k - s // 2) > 1:
                td.line([(k, 0), (k, s)], fill=shade, width=1)
                td.line([(0, k), (s, k)], fill=shade, width=1)
    elif pattern == "dotted":
        for y in range(3, s, step):
            for x in range(3, s, step):
                if abs(x - s // 2) > 2 or abs(y - s // 2) > 2:
                    td.ellipse([x - 1, y - 1, x + 1, y + 1], fill=shade)
    elif pattern == "stitched":
        inner = _shape_polygon("square", cx, cy, 0.6 * r)
        td.line(inner + [inner[0]], fill=shade, width=1)

    img = Image.new("RGB", (s, s), BACKGROUND)
    img.paste(tex, (0, 0), mask)
    brand = BRANDS.index(attrs["brand"])
    badge, colour = brand % 4, BADGE_COLOURS[brand // 4]
    b = max(3, s // 10)
    x0, y0 = s - 2 * b - 2, 2
    d = ImageDraw.Draw(img)
    if badge == 0:
        d.rectangle([x0, y0, x0 + 2 * b, y0 + 2 * b], fill=colour)
    elif badge == 1:
        d.ellipse([x0, y0, x0 + 2 * b, y0 + 2 * b], fill=colour)
    elif badge == 2:
        d.polygon([(x0 + b, y0), (x0 + 2 * b, y0 + 2 * b), (x0, y0 + 2 * b)], fill=colour)
    else:
        d.rectangle([x0, y0 + b - 1, x0 + 2 * b, y0 + b + 1], fill=colour)
    return img


def sample_attributes(rng: np.random.Generator, num_items: int) -> Attributes:
    return Attributes(
        category=rng.integers(len(CATEGORIES), size=num_items),
        colour=rng.integers(len(COLOURS), size=num_items),
        material=rng.integers(len(MATERIALS), size=num_items),
        brand=rng.integers(len(BRANDS), size=num_items),
        size=rng.integers(len(SIZES), size=num_items),
        adjective=rng.integers(len(ADJECTIVES), size=num_items),
    )


def _pick(rng: np.random.Generator, num_users: int, n: int, k: int) -> np.ndarray:
    """[num_users, n] bool: k distinct random choices per user."""
    keys = rng.random((num_users, n))
    chosen = np.argsort(keys, axis=1)[:, :k]
    out = np.zeros((num_users, n), dtype=bool)
    np.put_along_axis(out, chosen, True, axis=1)
    return out


def sample_sequences(
    rng: np.random.Generator, attrs: Attributes, num_users: int, min_len: int = 5, max_len: int = 30
) -> list[np.ndarray]:
    """Per user, a sequence of distinct 0-based item positions drawn from the habit model.

    The logit of item j for user u after item i is
    ``log pop_j + SAME_*[attr_j == attr_i] + LIKES_*[attr_j in tastes_u]``; consumed items are
    excluded.  Sampling is Gumbel-max over all still-growing users at once, one step at a time.
    """
    n = len(attrs.category)
    pop = 1.0 / (rng.permutation(n) + 10.0) ** POPULARITY_EXPONENT
    base = np.log(pop / pop.sum())
    likes_cat = _pick(rng, num_users, len(CATEGORIES), 2)
    likes_brand = _pick(rng, num_users, len(BRANDS), 3)
    likes_colour = _pick(rng, num_users, len(COLOURS), 2)
    taste = (
        base[None, :]
        + LIKES_CATEGORY * likes_cat[:, attrs.category]
        + LIKES_BRAND * likes_brand[:, attrs.brand]
        + LIKES_COLOUR * likes_colour[:, attrs.colour]
    ).astype(np.float32)  # [U, N]
    lengths = np.minimum(min_len + np.floor(rng.exponential(8.0, size=num_users)).astype(int), max_len)
    seqs = np.zeros((num_users, max_len), dtype=np.int64)
    used = np.zeros((num_users, n), dtype=bool)
    for t in range(int(lengths.max())):
        active = np.nonzero(lengths > t)[0]  # only users whose sequence is still growing
        logits = taste[active]
        if t > 0:
            last = seqs[active, t - 1]
            logits += SAME_CATEGORY * (attrs.category[None, :] == attrs.category[last][:, None])
            logits += SAME_BRAND * (attrs.brand[None, :] == attrs.brand[last][:, None])
            logits += SAME_COLOUR * (attrs.colour[None, :] == attrs.colour[last][:, None])
        logits[used[active]] = -np.inf
        gumbel = -np.log(-np.log(rng.random(logits.shape, dtype=np.float32) + np.float32(1e-12)) + np.float32(1e-12))
        nxt = np.argmax(logits + gumbel, axis=1)
        seqs[active, t] = nxt
        used[active, nxt] = True
    return [seqs[u, : lengths[u]] for u in range(num_users)]


def synthesize(
    out_dir: str | os.PathLike,
    num_items: int = 2000,
    num_users: int = 1000,
    seed: int = DEFAULT_SEED,
    force: bool = False,
    image_size: int = 64,
    missing_image: float = 0.10,
    missing_text: float = 0.05,
    progress: bool = True,
) -> SequenceDataset:
    """Generate the synthetic catalog and user sequences into a dataset directory.

    Args:
        out_dir: dataset directory to create (refused if it exists and is not empty, unless force).
        num_items / num_users: catalog size N and number of users U.
        seed: everything (attributes, tastes, sequences, missing modalities) follows from it.
        image_size: side of the square PNGs written to ``images/``.
        missing_image / missing_text: share of items without that modality.
        progress: a bar while drawing many images (on a terminal only).
    """
    if num_items < 40 or num_users < 1:
        raise ValueError(f"synthesize needs at least 40 items and 1 user (got {num_items} items, {num_users} users)")
    check_replaceable(Path(out_dir).resolve(), DATASET, force, error=DatasetError)  # before any work
    rng = np.random.default_rng(seed)
    attrs = sample_attributes(rng, num_items)
    no_image = rng.random(num_items) < missing_image
    no_text = rng.random(num_items) < missing_text
    seqs = sample_sequences(rng, attrs, num_users)
    start = 1_600_000_000 + rng.integers(0, 86_400 * 365, size=num_users)
    gaps = [rng.integers(60, 86_400 * 7, size=len(s)) for s in seqs]

    items: list[Item] = []
    to_draw: list[tuple[str, dict[str, str]]] = []
    for i in range(num_items):
        item_id = f"syn{i + 1:05d}"
        a = attrs.describe(i)
        image = None
        if not no_image[i]:
            image = f"images/{item_id}.png"
            to_draw.append((image, a))
        items.append(Item(id=item_id, text=None if no_text[i] else item_text(a), image=image, meta=a))

    def draw_images(tmp: Path) -> None:
        from tqdm import tqdm

        (tmp / "images").mkdir()
        bar = progress and show_progress() and len(to_draw) >= 500  # bars only on a terminal
        for rel, a in tqdm(to_draw, desc="drawing images", unit="img", leave=False, disable=not bar):
            draw_item_image(a, image_size).save(tmp / rel, format="PNG")

    meta = {
        "name": "synth",
        "source": {
            "format": "synth",
            "seed": seed,
            "num_items": num_items,
            "num_users": num_users,
            "image_size": image_size,
            "missing_image": missing_image,
            "missing_text": missing_text,
        },
        "filters": {"k_core": None, "min_sequence_length": 5, "dedup": "items never repeat within a sequence"},
        "text": {"template": TEXT_TEMPLATE, "fields": ["adjective", "colour", "material", "category", "brand", "size"]},
        "image": {"format": "png", "size": image_size, "dir": "images"},
    }
    return write_dataset(
        out_dir,
        items,
        [f"user{u + 1:05d}" for u in range(num_users)],
        [s + 1 for s in seqs],
        meta,
        timestamps=[start[u] + np.cumsum(g) for u, g in enumerate(gaps)],
        force=force,
        populate=draw_images,
    )
