"""`recx recommend` and `recx export` through the typer app."""

import csv
import io
import json

from typer.testing import CliRunner

from recx.cli import app


def invoke(args, code=0):
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def test_recommend_formats_and_unknown_ids(trained, tiny_dataset):
    run = trained()
    res = invoke(["recommend", "--run", run, "--history", "i1,i5,nope", "--k", "3", "--format", "csv", "--exclude-history"])
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["rank"] for r in rows] == ["1", "2", "3"] and all(r["query"] == "history 1" for r in rows)
    assert not {r["item_id"] for r in rows} & {"i1", "i5"}
    assert rows[0]["title"] == tiny_dataset.texts[tiny_dataset.index_of(rows[0]["item_id"])]
    assert "skipped unknown item id(s) 'nope'" in res.stderr

    res = invoke(["recommend", "--run", run, "--user", "u1", "--user", "who", "--k", "2", "--format", "jsonl"])
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert [x["query"] for x in lines] == ["u1"] and len(lines[0]["items"]) == 2
    assert "unknown user id" in res.stderr

    res = invoke(["recommend", "--run", run, "--similar-to", "i3", "--k", "2"])
    assert "i3" in res.stdout and "rank" in res.stdout  # the table


def test_recommend_errors(trained, tmp_path):
    run = trained()
    res = invoke(["recommend", "--run", run, "--history", "zz", "--k", "2"], code=1)
    assert "nothing to recommend" in res.output
    res = invoke(["recommend", "--run", run, "--k", "2"], code=1)
    assert "exactly one of" in res.output
    res = invoke(["recommend", "--run", run, "--user", "u1", "--history", "i1"], code=1)
    assert "exactly one of" in res.output
    res = invoke(["recommend", "--run", run, "--users", tmp_path / "none.txt"], code=1)
    assert "no such file" in res.output


def test_export_then_recommend_from_it(trained, tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("# test users\nu1\n\nu2\n")
    res = invoke(["export", "--run", trained(), "--out", tmp_path / "exp", "--index", "hnsw", "--k", "5"])
    assert "recall@5 vs exact" in res.stdout and "100.00% of 60 test users" in res.stdout
    from_run = invoke(["recommend", "--run", trained(), "--users", users, "--k", "4", "--format", "csv"]).stdout
    from_export = invoke(["recommend", "--export", tmp_path / "exp", "--users", users, "--k", "4", "--format", "csv"]).stdout
    assert [r["query"] for r in csv.DictReader(io.StringIO(from_export))] == ["u1"] * 4 + ["u2"] * 4
    ids = lambda s: [r["item_id"] for r in csv.DictReader(io.StringIO(s))]
    assert ids(from_export) == ids(from_run)  # 40 items: the HNSW index finds the exact lists
    res = invoke(["export", "--run", trained(), "--out", tmp_path / "exp"], code=1)
    assert "already exists" in res.output
