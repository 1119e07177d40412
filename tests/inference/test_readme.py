"""The README's five-line Recommender example, run verbatim on a tiny synthetic run."""

import re
from pathlib import Path

import numpy as np

from recx.data.dataset import Item, write_dataset

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- readme-recommender-example -->\n```python\n(.*?)```", text, re.S)
    assert m, "README lost its Recommender example"
    return m.group(1)


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    from recx.trainer import TrainConfig, fit

    code = readme_example()
    assert len(code.strip().splitlines()) == 5
    rng = np.random.default_rng(0)
    items = [Item(f"syn{k:05d}", text=f"item {k}") for k in range(1, 31)]  # ids as `recx data synth` makes them
    seqs = [[int(x) for x in rng.integers(1, 31, size=int(rng.integers(4, 9)))] for _ in range(30)]
    write_dataset(tmp_path / "data", items, [f"u{u}" for u in range(30)], seqs, {"name": "readme"})
    fit(TrainConfig.from_options(dataset=str(tmp_path / "data"), item_tower="id", hidden=8, layers=1, heads=1, max_len=8, epochs=1,
                    batch_size=16, runs_dir=str(tmp_path / "runs"), name="id-run"), progress=False)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    ids = re.findall(r"'(syn\d{5})'", capsys.readouterr().out)
    assert len(ids) == 10 + 5 and len(set(ids[:10])) == 10
    assert not {"syn00001", "syn00002"} & set(ids[:10])  # exclude_history=True
    assert "syn00001" not in ids[10:]  # an item is not similar to itself
