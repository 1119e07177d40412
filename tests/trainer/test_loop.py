import json

import numpy as np
import pytest
import torch

from recx.data.dataset import Item, write_dataset
from recx.trainer import TrainConfig, fit, load_trained
from recx.trainer.checkpoint import RunError, load_run_config


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """40 items in 4 'categories'; users walk mostly within one category."""
    rng = np.random.default_rng(0)
    items = [Item(f"i{k}", text=f"item {k} of category {k % 4}") for k in range(40)]
    seqs = []
    for u in range(60):
        cat = u % 4
        seqs.append([int(rng.choice(np.arange(cat, 40, 4))) + 1 for _ in range(rng.integers(4, 12))])
    out = tmp_path_factory.mktemp("ds") / "data"
    write_dataset(out, items, [f"u{u}" for u in range(60)], seqs, {"name": "tiny"})
    return out


def config(ds, tmp_path, **kw):
    base = dict(dataset=str(ds), item_tower="id", hidden=16, layers=1, heads=2, max_len=8, epochs=4, batch_size=16, patience=10, runs_dir=str(tmp_path / "runs"))
    base.update(kw)
    return TrainConfig.from_options(**base)


@pytest.mark.parametrize("loss", ["bce", "debiased_ce", "full_ce", "sampled_softmax"])
def test_fit_writes_a_complete_run(tiny_dataset, tmp_path, loss):
    cfg = config(tiny_dataset, tmp_path, loss=loss, num_negatives=8, name=f"r-{loss}")
    result = fit(cfg, progress=False)
    run = result.run_dir
    for f in ("config.json", "best.pt", "last.pt", "metrics.jsonl", "curve.png"):
        assert (run / f).is_file(), f
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1, 2, 3]
    assert all(np.isfinite(r["loss"]) for r in rows)
    assert load_run_config(run) == cfg
    model, _, _ = load_trained(run)
    assert model.item_table().shape == (41, 16)


def test_resume_ends_with_identical_weights_and_metrics(tiny_dataset, tmp_path):
    cfg = config(tiny_dataset, tmp_path, loss="bce", epochs=5, name="straight")
    straight = fit(cfg, progress=False).run_dir
    cfg2 = config(tiny_dataset, tmp_path, loss="bce", epochs=5, name="interrupted")
    run = fit(cfg2, progress=False, max_epochs_this_call=2).run_dir
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    fit(cfg2, run_dir=run, resume=True, progress=False)
    a = torch.load(straight / "last.pt", weights_only=False)["model"]
    b = torch.load(run / "last.pt", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    strip = lambda p: [{k: v for k, v in json.loads(l).items() if k not in ("seconds", "positions_per_s")} for l in (p / "metrics.jsonl").read_text().splitlines()]
    assert strip(straight) == strip(run)


def test_fp16_trains_with_a_grad_scaler_that_resumes_exactly(tiny_dataset, tmp_path, monkeypatch):
    import recx.trainer.engine as engine

    monkeypatch.setattr(engine, "autocast_dtype", lambda precision, device: torch.float16)  # the CUDA fp16 path, on the CPU
    straight = fit(config(tiny_dataset, tmp_path, epochs=3, name="fp16"), progress=False).run_dir
    cfg = config(tiny_dataset, tmp_path, epochs=3, name="fp16-cut")
    run = fit(cfg, progress=False, max_epochs_this_call=1).run_dir
    fit(cfg, run_dir=run, resume=True, progress=False)
    a, b = (torch.load(d / "last.pt", weights_only=False) for d in (straight, run))
    assert a["scaler"]["_growth_tracker"] > 0 and a["scaler"]["scale"] > 0  # the scaler ran (a disabled one saves {})
    assert a["scaler"] == b["scaler"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_early_stopping_and_refusing_to_overwrite(tiny_dataset, tmp_path):
    cfg = config(tiny_dataset, tmp_path, epochs=50, patience=2, lr=1e-6, name="stop")
    result = fit(cfg, progress=False)
    assert result.epochs_run == result.best_epoch + 1 + 2  # stops after exactly --patience epochs without improvement
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["best"] for r in rows[result.best_epoch + 1 :]] == [False, False]
    assert json.loads((result.run_dir / "finished.json").read_text())["stopped_early"] is True
    with pytest.raises(RunError, match="exists"):
        fit(config(tiny_dataset, tmp_path, name="stop"), progress=False)


def test_learns_the_category_structure(tiny_dataset, tmp_path):
    cfg = config(tiny_dataset, tmp_path, epochs=30, lr=5e-3, dropout=0.1, loss="full_ce", name="learn")
    result = fit(cfg, progress=False)
    # 10 items per category: a model that learned categories ranks the target in the top 10 far
    # more often than the 25% of chance
    assert result.best_valid["hr@10"] > 0.5


@pytest.mark.parametrize("model", ["gru4rec", "bert4rec"])
def test_other_sequence_models_train_and_resume(tiny_dataset, tmp_path, model):
    cfg = config(tiny_dataset, tmp_path, model=model, loss="full_ce", epochs=3, dropout=0.1, name=f"{model}-a")
    straight = fit(cfg, progress=False)
    assert straight.best_valid["hr@10"] > 0.0
    cfg2 = config(tiny_dataset, tmp_path, model=model, loss="full_ce", epochs=3, dropout=0.1, name=f"{model}-b")
    run = fit(cfg2, progress=False, max_epochs_this_call=1).run_dir
    fit(cfg2, run_dir=run, resume=True, progress=False)
    a = torch.load(straight.run_dir / "last.pt", weights_only=False)["model"]
    b = torch.load(run / "last.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("exclude_history", [False, True])
def test_evaluate_split_equals_one_user_at_a_time(make_text_dataset, tmp_path, exclude_history):
    """Ranks from the batched path equal a naive per-user loop: score every item, drop padding
    and (optionally) the history except the target, count items scoring at least the target."""
    from recx.evaluate.metrics import metrics_from_ranks
    from recx.trainer.loop import evaluate_split
    from recx.trainer.registry import build_model

    dataset = make_text_dataset(tmp_path, n_items=30, n_users=40)
    cfg = TrainConfig.from_options(dataset=str(dataset.path), hidden=16, layers=1, heads=2, max_len=5, dropout=0.0, eval_batch_size=7)
    torch.manual_seed(0)
    model = build_model(cfg, dataset).eval()
    histories, targets = dataset.split("valid")
    table = model.item_table().detach()
    ranks = []
    for history, target in zip(histories, targets):
        user = model.user_vectors([history], cfg.model.max_len)[0]
        scores = (table @ user).tolist()
        dropped = {0} | (set(int(i) for i in history) - {int(target)} if exclude_history else set())
        ranks.append(1 + sum(1 for j, s in enumerate(scores) if j not in dropped and j != target and s >= scores[target]))
    expected = metrics_from_ranks(torch.tensor(ranks, dtype=torch.float64), (1, 5))
    got = evaluate_split(model, dataset, "valid", cfg, ks=(1, 5), exclude_history=exclude_history)
    assert got == pytest.approx(expected, abs=1e-12)


def test_loss_scale_weighs_positions_or_batches():
    from recx.trainer.loop import loss_scale

    # one process, two batches whose position losses are [1, 2] and [3, 4, 5, 6]
    batches = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0, 5.0, 6.0])]
    reference = 6 / 2  # average positions per step
    by_position = sum(loss_scale(len(b), len(b), 1, reference) * b.mean() for b in batches)
    assert by_position.item() == pytest.approx(21 / reference)  # every position weighs 1 / reference
    by_batch = sum(loss_scale(len(b), len(b), 1, None) * b.mean() for b in batches)
    assert by_batch.item() == pytest.approx(1.5 + 4.5)  # every batch's mean weighs 1
    # two ranks of one step: DDP's gradient average of scale_r * mean_r equals the global mean
    ranks = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0, 5.0, 6.0])]
    ddp = sum(loss_scale(len(b), 6, 2, None) * b.mean() for b in ranks) / 2
    assert ddp.item() == pytest.approx(21 / 6)
    ddp_positions = sum(loss_scale(len(b), 6, 2, 4.0) * b.mean() for b in ranks) / 2
    assert ddp_positions.item() == pytest.approx(21 / 4.0)


def _as_format(run, version):
    """Rewrite a run's config.json as recx wrote it in an older format (flat options)."""
    raw = json.loads((run / "config.json").read_text())
    cfg = load_run_config(run)
    flat = {**cfg.options(), "amp": "off" if cfg.run.precision == "fp32" else cfg.run.precision, "reo_pooling": cfg.reolm.pooling}
    for new in ("precision", "pooling"):
        del flat[new]
    flat.update({k: raw[k] for k in ("dataset_fingerprint", "num_items", "world_size", "store_digests")})
    if version == 1:
        del flat["loss_weighting"], flat["store_digests"]
    else:
        flat["run_format"] = 2
    (run / "config.json").write_text(json.dumps(flat))


@pytest.mark.parametrize("version,weighting", [(1, "batch"), (2, "positions")])
def test_older_config_formats_migrate(tiny_dataset, tmp_path, version, weighting):
    """Format 1 (no loss_weighting: such runs trained each batch's mean alike) and format 2 (flat
    options, --amp) load as today's nested config, evaluate and resume."""
    # a run as those formats trained it: no history term (the 4 -> 5 migration says so)
    result = fit(config(tiny_dataset, tmp_path, epochs=2, precision="fp32", history_term="off"), run_dir=tmp_path / "run", progress=False,
                 max_epochs_this_call=1)
    _as_format(result.run_dir, version)
    cfg = load_run_config(result.run_dir)
    assert cfg.optim.loss_weighting == weighting and cfg.run.precision == "fp32" and cfg.model.hidden == 16
    model, _, _ = load_trained(result.run_dir, "best.pt")
    assert model.item_table().shape == (41, 16)
    fit(cfg, run_dir=result.run_dir, resume=True, progress=False)  # resumes, and rewrites config.json in the current format
    assert json.loads((result.run_dir / "config.json").read_text())["run_format"] == TrainConfig.FORMAT


def test_a_moved_workspace_still_loads_its_runs(tiny_dataset, tmp_path):
    """Paths inside the workspace are stored relative to the run, so moving the folder keeps
    every run usable; the data is found where it now is."""
    import shutil

    from recx.workspace import Workspace

    ws = tmp_path / "ws"
    shutil.copytree(tiny_dataset, ws / "data")
    Workspace.init(ws, ws / "data")
    run = fit(config(ws / "data", tmp_path, runs_dir=str(ws / "runs"), name="r", epochs=1), progress=False).run_dir
    saved = json.loads((run / "config.json").read_text())["config"]
    assert saved["run"]["dataset"] == "../../data"
    moved = tmp_path / "elsewhere" / "ws2"
    shutil.move(str(ws), moved)
    cfg = load_run_config(moved / "runs" / "r")
    assert cfg.run.dataset == str((moved / "data").resolve()) and cfg.run.runs_dir == str((moved / "runs").resolve())
    model, _, dataset = load_trained(moved / "runs" / "r")
    assert dataset.path.resolve() == (moved / "data").resolve()


def test_resume_refuses_another_world_size(tiny_dataset, tmp_path):
    from recx.trainer.engine import LoopError

    cfg = config(tiny_dataset, tmp_path, epochs=3, name="ws")
    run = fit(cfg, progress=False, max_epochs_this_call=1).run_dir
    state = torch.load(run / "last.pt", weights_only=False)
    state["world_size"] = 2
    torch.save(state, run / "last.pt")
    with pytest.raises(LoopError, match=r"written by 2 process\(es\), resumed by 1.*--nproc-per-node 2"):
        fit(cfg, run_dir=run, resume=True, progress=False)


def test_last_checkpoints_from_before_the_shared_loop_resume_exactly(tiny_dataset, tmp_path):
    """A format-1 last.pt (rank 0's RNG and the loss at the top level) resumes to the same end."""
    straight = fit(config(tiny_dataset, tmp_path, loss="sampled_softmax", num_negatives=8, epochs=3, name="s"), progress=False).run_dir
    cfg = config(tiny_dataset, tmp_path, loss="sampled_softmax", num_negatives=8, epochs=3, name="old")
    run = fit(cfg, progress=False, max_epochs_this_call=1).run_dir
    new = torch.load(run / "last.pt", weights_only=False)
    mine = new["ranks"][0]
    old = {k: new[k] for k in ("model", "optimizer", "scheduler", "scaler", "epoch", "best_value", "best_epoch", "bad_epochs", "stopped")}
    old.update(loss=mine["task"]["loss"], rng=mine["rng"], mask_generator=mine["task"]["mask_generator"])
    torch.save(old, run / "last.pt")
    fit(cfg, run_dir=run, resume=True, progress=False)
    a, b = (torch.load(d / "last.pt", weights_only=False)["model"] for d in (straight, run))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("schedule,warmup", [("cosine", 0), ("constant", 4), ("cosine", 4), ("linear", 2)])
def test_learning_rate_schedules(schedule, warmup):
    """The factor per step: linear warmup to 1, then constant, cosine or linear decay to 0."""
    import math

    from recx.trainer.engine import LoopSettings, lr_factor

    f = lr_factor(LoopSettings(epochs=1, lr=1.0, weight_decay=0, pretrained_lr=1.0, pretrained_weight_decay=0, seed=0,
                               schedule=schedule, warmup_steps=warmup), total_steps=12)
    got = [f(step) for step in range(13)]
    decay = 12 - warmup
    expected = [(s + 1) / warmup if s < warmup else
                {"constant": 1.0, "cosine": 0.5 * (1 + math.cos(math.pi * (s - warmup) / decay)), "linear": 1 - (s - warmup) / decay}[schedule]
                for s in range(13)]
    assert got == pytest.approx(expected)
    assert got[12] == pytest.approx(0.0 if schedule != "constant" else 1.0)


def test_fit_follows_the_schedule(tiny_dataset, tmp_path):
    """The optimiser's learning rate after training is the schedule's last factor times --lr."""
    cfg = config(tiny_dataset, tmp_path, epochs=2, schedule="cosine", warmup_steps=2, lr=2e-3, name="cos")
    run = fit(cfg, progress=False).run_dir
    state = torch.load(run / "last.pt", weights_only=False)
    steps = state["scheduler"]["last_epoch"]
    assert steps == 2 * 4  # 60 users in batches of 16, two epochs
    assert [g["lr"] for g in state["optimizer"]["param_groups"]] == pytest.approx([0.0, 0.0], abs=1e-12)  # cosine ends at 0
    assert [g["initial_lr"] for g in state["optimizer"]["param_groups"]] == [2e-3, 2e-3]


def test_validation_on_a_user_sample_ranks_the_same_users_every_time(tiny_dataset, tmp_path):
    """--valid-users N: every validation of the run ranks one fixed sample of N users, and its
    numbers are those of ranking exactly those users."""
    from recx.data.dataset import user_sample
    from recx.trainer.loop import evaluate_split

    sample = user_sample(60, 25, seed=42)
    assert len(sample) == 25 and np.array_equal(sample, np.unique(sample)) and np.array_equal(sample, user_sample(60, 25, seed=42))
    assert user_sample(60, 0, 42) is None and user_sample(60, 60, 42) is None
    cfg = config(tiny_dataset, tmp_path, epochs=2, valid_users=25, history_term="off", name="sampled")
    run = fit(cfg, progress=False).run_dir
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    model, cfg_back, ds = load_trained(run, checkpoint="last.pt")
    assert cfg_back.optim.valid_users == 25
    assert evaluate_split(model, ds, "valid", cfg_back, users=sample) == pytest.approx(rows[-1]["valid"], abs=1e-9)
    assert evaluate_split(model, ds, "valid", cfg_back) != pytest.approx(rows[-1]["valid"], abs=1e-9)  # all 60 users differ


def test_the_fused_adamw_steps_as_the_plain_one_and_marks_weights_changed():
    """engine.adamw uses the fused kernel (one pass over a whole table); its steps equal the
    per-tensor AdamW's, groups and weight decay included, and it bumps every parameter's version
    counter (the kernel does not), which Reo-LM's cached item table reads to know it is stale."""
    from recx.trainer.engine import LoopSettings, adamw

    s = LoopSettings(epochs=1, lr=1e-2, weight_decay=0.1, pretrained_lr=1e-3, pretrained_weight_decay=0.01, seed=0)
    torch.manual_seed(0)
    fused_model = torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.Linear(8, 8))
    plain_model = torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.Linear(8, 8))
    plain_model.load_state_dict(fused_model.state_dict())
    fused = adamw(fused_model, [fused_model[1].weight], s)
    assert all(g["fused"] for g in fused.param_groups)
    names = {id(p): n for n, p in fused_model.named_parameters()}
    plain_params = dict(plain_model.named_parameters())
    plain = torch.optim.AdamW([{"params": [plain_params[names[id(p)]] for p in g["params"]], "lr": g["lr"], "weight_decay": g["weight_decay"]}
                               for g in fused.param_groups], lr=s.lr, foreach=False)
    assert sorted((g["lr"], g["weight_decay"]) for g in plain.param_groups) == [(1e-3, 0.01), (1e-2, 0.0), (1e-2, 0.1)]
    ids = torch.randint(1, 50, (6, 5), generator=torch.Generator().manual_seed(1))
    for _ in range(5):
        for model, opt in ((fused_model, fused), (plain_model, plain)):
            opt.zero_grad()
            model(ids).pow(2).mean().backward()
            before = [p._version for p in model.parameters()]
            opt.step()
            assert all(p._version > v for p, v in zip(model.parameters(), before))
    for (name, a), b in zip(fused_model.named_parameters(), plain_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
