"""Benchmark: on-disk corpus index vs. the naive dict-of-JSON approach, on a synthetic 1M corpus.

    .venv/bin/python bench/index_1m.py                      # 1M passages, ~60 words each
    .venv/bin/python bench/index_1m.py --docs 100000 --out bench/results/data.md

Writes a BEIR-layout corpus to a temporary folder, then runs each approach in its own subprocess
(so peak RSS is per approach): build the index, open it and look up by row and by id in random
batches of 256 and 10,000; and json-load the corpus into a dict id -> (title, text), then the
same lookups. Prints a markdown table (and writes it with --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPEATS = {256: 200, 10_000: 20, 100_000: 3}


def make_corpus(folder: Path, n: int, seed: int = 0) -> Path:
    """BEIR corpus of n passages, lengths ~ N(60, 15) words from a 20k-word Zipf vocabulary."""
    rng = np.random.default_rng(seed)
    vocab = np.array(["".join(chr(97 + c) for c in rng.integers(0, 26, rng.integers(2, 10)))
                      for _ in range(20_000)])
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w") as f:
        for s in range(0, n, 10_000):
            m = min(10_000, n - s)
            lens = np.clip(rng.normal(60, 15, m).astype(int), 5, 200)
            words = vocab[np.minimum(rng.zipf(1.3, lens.sum()) - 1, len(vocab) - 1)]
            cuts = np.cumsum(lens)[:-1]
            lines = []
            for i, ws in enumerate(np.split(words, cuts)):
                lines.append(json.dumps({"_id": f"doc{s + i}", "title": f"Title {s + i}",
                                         "text": " ".join(ws)}) + "\n")
            f.write("".join(lines))
    (folder / "queries.jsonl").write_text('{"_id": "q0", "text": "a query"}\n')
    (folder / "qrels").mkdir(exist_ok=True)
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\tdoc0\t1\n")
    return folder


def _timeit(fn, repeats: int) -> float:
    fn()  # warm
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def _lookups(n: int, by_row, by_id, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for k, rep in REPEATS.items():
        rows = rng.integers(0, n, k)
        ids = [f"doc{r}" for r in rows]
        if k <= 10_000:
            out[f"row_{k}"] = _timeit(lambda rows=rows: by_row(rows), rep)
        out[f"id_{k}"] = _timeit(lambda ids=ids: by_id(ids), rep)
    return out


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _anon_mb() -> float:
    """Current anonymous (heap) RSS: excludes file pages of memory maps (reclaimable cache)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(mode: str, folder: Path) -> dict:
    """One measurement, run in a fresh interpreter; prints a JSON dict."""
    base = _rss_mb()
    res: dict = {"mode": mode, "rss_start_mb": round(base, 1)}
    if mode == "build":
        from densescale.data.index import ensure_index
        from densescale.data.layouts import detect_layout

        t0 = time.perf_counter()
        idx = ensure_index(detect_layout(folder), progress=False, rebuild=True)
        res["build_s"] = time.perf_counter() - t0
        res["index_mb"] = sum(p.stat().st_size for p in idx.iterdir()) / 2**20
    elif mode == "index":
        from densescale.data import open_dataset

        t0 = time.perf_counter()
        c = open_dataset(folder).corpus
        res["open_s"] = time.perf_counter() - t0
        res.update(_lookups(len(c), c.texts, lambda ids: c.texts(c.rows_of(ids))))
        res["rows_of_100000"] = _timeit(
            lambda: c.rows_of([f"doc{i}" for i in range(0, len(c), max(1, len(c) // 100_000))]), 3)
    elif mode == "naive":
        t0 = time.perf_counter()
        docs: dict[str, tuple[str, str]] = {}
        with open(folder / "corpus.jsonl") as f:
            for line in f:
                rec = json.loads(line)
                docs[rec["_id"]] = (rec.get("title") or "", rec["text"])
        ids = list(docs)
        res["open_s"] = time.perf_counter() - t0

        def by_id(qs):
            return [f"{t} {x}" if t else x for t, x in (docs[q] for q in qs)]

        res.update(_lookups(len(ids), lambda rows: by_id([ids[r] for r in rows]), by_id))
    res["peak_rss_mb"] = round(_rss_mb(), 1)
    res["anon_rss_mb"] = round(_anon_mb(), 1)
    return res


def run_child(mode: str, folder: Path, env: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(folder)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _ms(x: float | None) -> str:
    return "-" if x is None else (f"{x * 1e3:.2f} ms" if x < 1 else f"{x:.2f} s")


def report(n: int, corpus_mb: float, gen_s: float, build: dict, idx: dict, naive: dict) -> str:
    rows = [
        ("build (one-off)", _ms(build["build_s"]), "-"),
        ("peak RSS of the build process", f"{build['peak_rss_mb']:.0f} MB", "-"),
        ("build + open: time to first lookup", _ms(build["build_s"] + idx["open_s"]),
         _ms(naive["open_s"])),
        ("index size on disk", f"{build['index_mb']:.0f} MB", "-"),
        ("open (index built)", _ms(idx["open_s"]), _ms(naive["open_s"])),
        ("peak RSS after all lookups (incl. mapped file pages)", f"{idx['peak_rss_mb']:.0f} MB",
         f"{naive['peak_rss_mb']:.0f} MB"),
        ("anonymous (heap) RSS at the end", f"{idx['anon_rss_mb']:.0f} MB",
         f"{naive['anon_rss_mb']:.0f} MB"),
    ]
    for k in (256, 10_000):
        rows.append((f"texts of {k:,} random rows", _ms(idx[f"row_{k}"]), _ms(naive[f"row_{k}"])))
    for k in (256, 10_000, 100_000):
        rows.append((f"texts of {k:,} random ids (rows_of + texts)", _ms(idx[f"id_{k}"]),
                     _ms(naive[f"id_{k}"])))
    rows.append(("rows_of 100,000 ids only", _ms(idx["rows_of_100000"]), "-"))
    lines = [
        f"## Corpus index: {n:,} synthetic passages (bench/index_1m.py)", "",
        f"Synthetic BEIR corpus: {n:,} passages, ~60 words each (N(60,15) words from a Zipf "
        f"vocabulary), corpus.jsonl {corpus_mb:.0f} MB, generated in {gen_s:.0f} s. Each column "
        f"was measured in its own fresh Python process (peak RSS = ru_maxrss of that process; a "
        f"bare interpreter with numpy starts at ~{idx['rss_start_mb']:.0f} MB). Lookup times are "
        f"means over repeated random batches after one warm-up batch (page cache warm).", "",
        "| measurement | densescale index (mmap) | naive: json -> dict |", "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows], "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}. Numbers taken on a shared, busy 2-core machine (other "
        f"contributors' jobs running): expect noise of tens of percent.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "FOLDER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]))))
        return
    with tempfile.TemporaryDirectory(prefix="densescale-bench-") as tmp:
        env = dict(os.environ, DENSESCALE_CACHE_DIR=str(Path(tmp) / "cache"))
        t0 = time.perf_counter()
        folder = make_corpus(Path(tmp) / "synthetic", args.docs)
        gen_s = time.perf_counter() - t0
        corpus_mb = (folder / "corpus.jsonl").stat().st_size / 2**20
        print(f"corpus: {args.docs:,} docs, {corpus_mb:.0f} MB ({gen_s:.0f} s)", file=sys.stderr)
        build = run_child("build", folder, env)
        print(f"build: {build}", file=sys.stderr)
        idx = run_child("index", folder, env)
        print(f"index: {idx}", file=sys.stderr)
        naive = run_child("naive", folder, env)
        print(f"naive: {naive}", file=sys.stderr)
    md = report(args.docs, corpus_mb, gen_s, build, idx, naive)
    print(md)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(md)


if __name__ == "__main__":
    main()
