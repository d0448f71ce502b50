"""Model cards: the README.md written into every saved model folder and every export.

The card states what a reader needs to trust and reuse the model: N (non-embedding parameters,
the paper's count: Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024, Section 3) and the
total, D (training pairs), the data, the training settings and the selection result when the
folder sits in a training output (its ``config.json`` and ``summary.json``), the densescale
version, and how to load the model in sentence-transformers, transformers and densescale.

    text = model_card(read_info(folder), run_files(folder.parent), layout="densescale")
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

# training settings shown in the card, in this order (TrainConfig field names)
SETTINGS = ("model", "init", "source", "split", "annotations", "train_size", "steps",
            "batch_size", "lr", "weight_decay", "warmup_steps", "temperature", "negatives",
            "negative_mode", "hard_negatives", "similarity", "scale", "proj_dim", "pooling",
            "query_max_len", "passage_max_len", "seed")
# selection/summary values shown in the card (TrainSummary field names)
RESULTS = ("selection_split", "selection_metric", "eval_negatives", "chance", "step0_ce",
           "best_step", "best_ce", "last_step", "last_ce", "learned", "not_learned_reason",
           "steps_done", "train_time_s")


def run_files(run_dir: Path) -> dict[str, dict]:
    """``config.json`` and ``summary.json`` of a training output folder, those that exist and
    parse as JSON objects (a card never fails because of them)."""
    found: dict[str, dict] = {}
    for name in ("config", "summary"):
        try:
            obj = json.loads((run_dir / f"{name}.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(obj, dict):
            found[name] = obj
    return found


def model_card(info: dict[str, Any], run: dict[str, dict] | None = None,
               layout: str = "densescale", task_lengths: bool = True) -> str:
    """Markdown model card of a model folder.

    Args:
        info: the folder's densescale.json (rung, n_params, proj_dim, similarity, meta, ...).
        run: ``run_files`` of the training output holding the folder (may be empty).
        layout: "densescale" (encoder in ``0_Transformer/``, projection in ``2_Dense/``) or
            "root" (encoder at the root, projection also in ``projection.safetensors``).
        task_lengths: the folder declares per-task lengths (sentence-transformers >= 6.0).
    """
    run = run or {}
    cfg, summary = run.get("config", {}), run.get("summary", {})
    meta = info.get("meta") or {}
    rung = info.get("rung") or {}
    cos = info.get("similarity") == "cos"
    proj = int(info.get("proj_dim") or 0)
    dim = proj or rung.get("hidden", "H")
    data = meta.get("train_data") or cfg.get("data")
    d = meta.get("train_size") or cfg.get("train_size")
    score = (f"{info.get('scale')} x cosine (embeddings L2-normalised)" if cos
             else "inner product (the paper's unscaled dot product)")
    lines = [
        "---", "library_name: sentence-transformers", "pipeline_tag: sentence-similarity",
        "tags:", "- densescale", "- dense-retrieval", "- sentence-transformers", "---", "",
        f"# {rung.get('name', 'densescale bi-encoder')}", "",
        "A shared-weight bi-encoder trained with densescale for the scaling-law study of Fang et "
        "al., Scaling Laws for Dense Retrieval, SIGIR 2024: mean of the last hidden states"
        if info.get("pooling") == "mean" else
        "A shared-weight bi-encoder trained with densescale for the scaling-law study of Fang et "
        "al., Scaling Laws for Dense Retrieval, SIGIR 2024: the [CLS] hidden state",
        f"{'then Linear(H -> ' + str(proj) + ')' if proj else '(no projection)'}"
        f"{', then L2 normalisation' if cos else ''}.", "",
        "| | |", "|---|---|",
        f"| N (non-embedding parameters) | {_num(info.get('n_params'))} |",
        f"| total parameters | {_num(info.get('n_params_total'))} |",
        f"| shape | L={rung.get('layers')}, H={rung.get('hidden')}, heads={rung.get('heads')}, "
        f"FFN={rung.get('intermediate')}, family={rung.get('family')} |",
        f"| embedding dimension | {dim} |",
        f"| score | {score} |",
        f"| pooling | {info.get('pooling')} |",
        f"| query / passage length | {info.get('query_max_len')} / "
        f"{info.get('passage_max_len')} tokens |",
        f"| D (training pairs) | {_num(d)} |",
        f"| training data | {_cell(data)} |",
        f"| initialisation | {_cell(meta.get('init'))}"
        f"{' from ' + _cell(meta.get('source')) if meta.get('source') else ''} |",
        f"| densescale version | {info.get('densescale_version')} |",
    ]
    if "step" in info:
        lines.append(f"| saved at step | {info['step']} |")
    if "contrastive_entropy" in info:
        lines.append(f"| selection CE at that step | {_fmt(info['contrastive_entropy'])} "
                     f"({_cell(info.get('selection_split'))}, "
                     f"{_cell(info.get('selection_metric'))}) |")
    if cfg:
        lines += ["", "## Training settings", "", "| setting | value |", "|---|---|"]
        shown = [k for k in SETTINGS if cfg.get(k) is not None
                 and not (k == "scale" and cfg.get("similarity") != "cos")]  # unused with dot
        lines += [f"| {k} | {_cell(cfg[k])} |" for k in shown]
        sel = cfg.get("selection")
        if isinstance(sel, dict):
            lines.append(f"| selection | W={sel.get('negatives')}, repeats={sel.get('repeats')}, "
                         f"max_pairs={sel.get('max_pairs')}, seed={sel.get('seed')} |")
    if summary:
        lines += ["", "## Selection (from summary.json)", "", "| | |", "|---|---|"]
        lines += [f"| {k} | {_cell(summary[k])} |" for k in RESULTS if summary.get(k) is not None]
    lines += ["", "## Loading", "", *_usage(info, layout, task_lengths)]
    return "\n".join(lines) + "\n"


def _usage(info: dict[str, Any], layout: str, task_lengths: bool) -> list[str]:
    q, p = info.get("query_max_len"), info.get("passage_max_len")
    st_q = q if task_lengths else p
    cos = info.get("similarity") == "cos"
    proj = bool(info.get("proj_dim"))
    weights = "projection.safetensors" if layout == "root" else "2_Dense/model.safetensors"
    key = "" if layout == "root" else "linear."
    st_note = (
        "sentence-transformers >= 6.0 (queries are cut at the query length, passages at the "
        "passage length; older versions refuse the folder: `densescale export --format hf "
        "--st-compat` writes one they load):" if task_lengths else
        f"sentence-transformers (any version from 3.0; this folder declares no per-task length, "
        f"so queries are cut at the passage length, {p} tokens: densescale and the transformers "
        f"recipe below cut them at {q}):")
    out = [
        st_note, "", "```python", "from sentence_transformers import SentenceTransformer",
        "model = SentenceTransformer(FOLDER)",
        f"q = model.encode_query(queries)      # truncated to {st_q} tokens",
        f"p = model.encode_document(passages)  # truncated to {p} tokens (so is model.encode)",
        "scores = q @ p.T" + (f"  # the model's own score is {info.get('scale')} * q @ p.T"
                              if cos else ""),
        "```", "", "transformers (the same embeddings, to float rounding):", "", "```python",
        "import torch",
        "from transformers import AutoModel, AutoTokenizer",
        "tok = AutoTokenizer.from_pretrained(FOLDER)",
        "enc = AutoModel.from_pretrained(FOLDER).eval()",
    ]
    if proj:
        out += ["from safetensors.torch import load_file",
                f"w = load_file(f\"{{FOLDER}}/{weights}\")",
                "proj = torch.nn.Linear(*w[\"" + key + "weight\"].shape[::-1])",
                "proj.load_state_dict({\"weight\": w[\"" + key + "weight\"], \"bias\": w[\""
                + key + "bias\"]})"]
    out += [
        "def embed(texts, max_length):  # max_length: "
        f"{q} for queries, {p} for passages",
        "    b = tok(texts, truncation=True, max_length=max_length, padding=True, "
        "return_tensors=\"pt\")",
        "    with torch.no_grad():",
        "        h = enc(input_ids=b[\"input_ids\"], "
        "attention_mask=b[\"attention_mask\"]).last_hidden_state",
    ]
    if info.get("pooling") == "cls":
        out.append("        v = h[:, 0]")
    else:
        out += ["        m = b[\"attention_mask\"].unsqueeze(-1).float()",
                "        v = (h * m).sum(1) / m.sum(1)"]
    if proj:
        out.append("        v = proj(v)")
    if cos:
        out.append("        v = torch.nn.functional.normalize(v, dim=-1)")
    out += ["    return v", "```", "", "densescale:", "", "```python",
            "from densescale.models import load_encoder",
            "enc = load_encoder(FOLDER)",
            "q = enc.encode(queries, kind=\"query\"); p = enc.encode(passages, kind=\"doc\")",
            "```"]
    if layout != "root":
        out += ["", "`AutoModel.from_pretrained(FOLDER)` loads the encoder from the root: its "
                "`model.safetensors.index.json` points at `0_Transformer/model.safetensors` (one "
                "copy of the weights). It loads the encoder only; apply the pooling and the "
                "projection as above. "
                "`densescale export --format hf` writes a folder with the encoder at the root."]
    return out


def _num(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else _cell(x)


def _fmt(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, float) and math.isfinite(x) else _cell(x)


def _cell(x: Any) -> str:
    if x is None:
        return "unknown"
    if isinstance(x, float):
        return f"{x:.4g}" if math.isfinite(x) else str(x)
    return str(x).replace("|", "\\|").replace("\n", " ")
