"""SQuAD v1.1 as paragraph retrieval, in BEIR layout (Rajpurkar et al., EMNLP 2016).

Conversion of the official ``train-v1.1.json`` / ``dev-v1.1.json`` (same rules as the shared copy,
see ``shared/datasets/squad_v11/PROVENANCE.md``):

- corpus: one doc per distinct paragraph, ``_id`` = ``train-AAA-PPP`` / ``dev-AAA-PPP`` (article
  and paragraph index in file order), ``title`` = article title with ``_`` -> space, ``text`` =
  context verbatim. A paragraph that repeats verbatim within its article is dropped and its
  questions point to the first copy.
- queries: dev keeps the official ids; train ids are ``<paragraph id>-q<k>`` (k = question index
  in the paragraph, paragraph id as in the file, even when that paragraph was a dropped copy).
  Question text is stripped.
- qrels: ``qrels/train.tsv`` (SQuAD train) and ``qrels/test.tsv`` (SQuAD dev): question -> its
  paragraph, score 1.
- ``answers.jsonl``: {"_id", "answers": [gold answer strings]} for answer-recall evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path

from densescale.data.download import download, publish, staging
from densescale.errors import DataError

SPLITS = (("train", "train-v1.1.json", "train"), ("dev", "dev-v1.1.json", "test"))


def convert_squad(train_json: Path, dev_json: Path, out: Path) -> dict[str, int]:
    """Write the BEIR-layout paragraph-retrieval version of SQuAD v1.1 into ``out``.

    Returns:
        counts: docs, queries, and qrels per split ("train", "test"), dropped duplicates.
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    counts = {"docs": 0, "queries": 0, "duplicates_dropped": 0}
    with (open(out / "corpus.jsonl", "w", encoding="utf-8") as fc,
          open(out / "queries.jsonl", "w", encoding="utf-8") as fq,
          open(out / "answers.jsonl", "w", encoding="utf-8") as fa):
        for prefix, fname, split in SPLITS:
            src = train_json if prefix == "train" else dev_json
            try:
                data = json.loads(Path(src).read_text(encoding="utf-8"))["data"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise DataError(f"not a SQuAD v1.1 JSON file ({fname}): {e}", src) from None
            n_qrels = 0
            with open(out / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as fr:
                fr.write("query-id\tcorpus-id\tscore\n")
                for a, article in enumerate(data):
                    title = str(article["title"]).replace("_", " ")
                    first: dict[str, str] = {}
                    for p, para in enumerate(article["paragraphs"]):
                        pid = f"{prefix}-{a:03d}-{p:03d}"
                        ctx = para["context"]
                        target = first.get(ctx)
                        if target is None:
                            first[ctx] = target = pid
                            fc.write(_line({"_id": pid, "title": title, "text": ctx}))
                            counts["docs"] += 1
                        else:
                            counts["duplicates_dropped"] += 1
                        for k, qa in enumerate(para["qas"]):
                            qid = str(qa["id"]) if prefix == "dev" else f"{pid}-q{k}"
                            fq.write(_line({"_id": qid, "text": str(qa["question"]).strip()}))
                            fa.write(_line({"_id": qid,
                                            "answers": [x["text"] for x in qa.get("answers", [])]}))
                            fr.write(f"{qid}\t{target}\t1\n")
                            counts["queries"] += 1
                            n_qrels += 1
            counts[f"{split}_qrels"] = n_qrels
    return counts


def _line(rec: dict) -> str:
    return json.dumps(rec, ensure_ascii=False) + "\n"


def fetch_squad(target: Path, base_url: str) -> Path:
    """Download the official train/dev JSON from ``base_url`` and convert them into ``target``.

    Raises:
        DataError: download or format problems (nothing is left at ``target``).
    """
    with staging(target.parent, target.name) as tmp:
        files = {}
        for prefix, fname, _ in SPLITS:
            files[prefix] = tmp / fname
            download(f"{base_url}/{fname}", files[prefix], where_to_put=target)
        out = tmp / target.name
        convert_squad(files["train"], files["dev"], out)
        (out / "PROVENANCE.md").write_text(
            f"# SQuAD v1.1 as paragraph retrieval\n\nConverted by densescale.data.squad from "
            f"{base_url}/train-v1.1.json and dev-v1.1.json (licence CC BY-SA 4.0).\n")
        return publish(out, target)
