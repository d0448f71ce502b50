"""Annotation generators: ICT throughput, sentence splitting, LLM client concurrency.

    .venv/bin/python bench/annotate_speed.py [--squad PATH] [--out bench/results/annotate.md]

No peer library runs offline here (NLTK's Punkt needs a downloaded model), so the splitter is
compared with the naive regex ``re.split(r"(?<=[.!?])\\s+")``; the LLM client is measured against
the fault-free local fake OpenAI server of the tests (fixed latency per request).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "annotate"))


def bench_ict(squad: Path) -> list[str]:
    from densescale.annotate.base import run_annotation, select_items
    from densescale.annotate.ict import ICTAnnotator
    from densescale.annotate.sentences import split_sentences
    from densescale.data import open_dataset

    ds = open_dataset(squad)
    items = select_items(ds, "train")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        prov = run_annotation(ICTAnnotator(0), ds, items, Path(tmp) / "ict", {"seed": 0},
                              journaled=False, progress=False)
        dt = time.perf_counter() - t
    rows.append(f"| ICT, SQuAD train pairs | {len(items):,} items "
                f"({prov['counts']['unique_passages']:,} passages) | {dt:.2f} s | "
                f"{len(items) / dt:,.0f} items/s (incl. writing the set) |")
    texts = [ds.corpus[i].text for i in range(len(ds.corpus))]
    naive = re.compile(r"(?<=[.!?])\s+")
    for name, fn in [("densescale.annotate.sentences", split_sentences),
                     ("naive regex split", naive.split)]:
        t = time.perf_counter()
        n = sum(len(fn(x)) for x in texts)
        dt = time.perf_counter() - t
        rows.append(f"| split sentences: {name} | {len(texts):,} passages, {n:,} sentences | "
                    f"{dt:.2f} s | {len(texts) / dt:,.0f} passages/s |")
    return rows


def bench_llm(n: int, latency: float) -> list[str]:
    from fake_openai_server import FakeOpenAI

    from densescale.cli import app

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "ds" / "qrels").mkdir(parents=True)
        with open(root / "ds" / "corpus.jsonl", "w") as f:
            for i in range(n):
                f.write(f'{{"_id": "d{i}", "title": "ok", "text": "Passage {i} text."}}\n')
        with open(root / "ds" / "queries.jsonl", "w") as f:
            for i in range(n):
                f.write(f'{{"_id": "q{i}", "text": "q"}}\n')
        (root / "ds" / "qrels" / "train.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(n)))
        (root / "p.txt").write_text("FAULT: {title}\nPASSAGE: {passage}\n")
        os.environ["BENCH_KEY"] = "sk-bench"
        for conc in (1, 8, 32):
            with FakeOpenAI("sk-bench", delay=latency) as srv:
                t = time.perf_counter()
                app(["annotate", "llm", "--data", str(root / "ds"), "--out",
                     str(root / f"o{conc}"), "--endpoint", srv.url, "--model", "m",
                     "--api-key-env", "BENCH_KEY", "--prompt", str(root / "p.txt"),
                     "--concurrency", str(conc), "--no-progress"], standalone_mode=False)
                dt = time.perf_counter() - t
            ideal = n * latency / conc
            rows.append(f"| LLM client, concurrency {conc}, {latency * 1e3:.0f} ms/request | "
                        f"{n} items | {dt:.2f} s | {n / dt:,.0f} items/s "
                        f"(latency-bound ideal {n / ideal:,.0f}/s) |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--squad", default=str(REPO.parent / "shared" / "datasets" / "squad_v11"))
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "annotate.md"))
    ap.add_argument("--llm-items", type=int, default=400)
    ap.add_argument("--latency", type=float, default=0.02)
    a = ap.parse_args()
    rows = bench_ict(Path(a.squad)) + bench_llm(a.llm_items, a.latency)
    load = os.getloadavg()[0]
    text = ("# Annotation generators (bench/annotate_speed.py)\n\n"
            f"Numbers taken on a shared, busy 2-core machine (load average {load:.0f} at the end "
            "of the run); CPU only. The LLM rows plateau because the fake server runs in the same "
            "Python process (GIL) on the same busy cores; they show that the client's concurrency "
            "works, not its ceiling.\n\n| what | size | wall | throughput |\n|---|---|---|---|\n"
            + "\n".join(rows) + "\n")
    Path(a.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
