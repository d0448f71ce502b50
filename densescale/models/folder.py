"""A BiEncoder's folder: sentence-transformers modules plus densescale.json.

    0_Transformer/  the Hugging Face encoder and its tokenizer
    1_Pooling/      mean or CLS pooling
    2_Dense/        Linear(H -> proj_dim) (absent when the model has no projection)
    N_Normalize/    L2 normalisation (cosine models only)
    densescale.json rung, N, pooling, lengths, similarity and scale, free-form meta

``SentenceTransformer(folder)`` gives the same embeddings as ``BiEncoder.encode``. The folder is
written to a temporary sibling and renamed into place, so a reader never sees half of it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

DENSESCALE_FILE = "densescale.json"
FORMAT = "densescale-biencoder-v1"


def write_folder(model: Any, path: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write ``model`` (a BiEncoder) as a sentence-transformers folder + densescale.json."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tdir = tmp / "0_Transformer"
    tdir.mkdir(parents=True)
    _save_quietly(model.encoder, tdir)
    if model.tokenizer is not None:
        model.tokenizer.save_pretrained(str(tdir))
    hidden = model.encoder.config.hidden_size
    _json(tdir / "sentence_bert_config.json",
          {"max_seq_length": model.passage_max_len, "do_lower_case": False})
    _json(tmp / "1_Pooling" / "config.json", {
        "word_embedding_dimension": hidden,
        "pooling_mode_cls_token": model.pooling == "cls",
        "pooling_mode_mean_tokens": model.pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    })
    modules = [("0_Transformer", "Transformer"), ("1_Pooling", "Pooling")]
    if model.proj is not None:
        _json(tmp / "2_Dense" / "config.json", {
            "in_features": hidden, "out_features": model.dim, "bias": True,
            "activation_function": "torch.nn.modules.linear.Identity"})
        save_file({"linear.weight": model.proj.weight.detach().cpu().contiguous(),
                   "linear.bias": model.proj.bias.detach().cpu().contiguous()},
                  str(tmp / "2_Dense" / "model.safetensors"))
        modules.append(("2_Dense", "Dense"))
    if model.similarity == "cos":
        norm = f"{len(modules)}_Normalize"
        (tmp / norm).mkdir()
        modules.append((norm, "Normalize"))
    _json(tmp / "modules.json", [
        {"idx": i, "name": str(i), "path": folder, "type": f"sentence_transformers.models.{kind}"}
        for i, (folder, kind) in enumerate(modules)])
    import transformers

    _json(tmp / "config_sentence_transformers.json", {
        "__version__": {"pytorch": torch.__version__, "transformers": transformers.__version__},
        "prompts": {}, "default_prompt_name": None,
        "similarity_fn_name": "cosine" if model.similarity == "cos" else "dot"})
    from densescale import __version__

    _json(tmp / DENSESCALE_FILE, {
        "format": FORMAT, "densescale_version": __version__,
        "rung": model.rung.to_dict() if model.rung else None,
        "n_params": model.num_non_embedding_params(), "n_params_total": model.num_params(),
        "proj_dim": model.proj_dim, "pooling": model.pooling,
        "query_max_len": model.query_max_len, "passage_max_len": model.passage_max_len,
        "similarity": model.similarity, "scale": model.score_scale,
        "meta": model.meta, **(extra or {})})
    _swap_into_place(tmp, path)
    return path


def _save_quietly(encoder: Any, folder: Path) -> None:
    """``save_pretrained`` without transformers' "Writing model shards" bar (a save is quick)."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        encoder.save_pretrained(str(folder), safe_serialization=True)
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def read_info(path: Path) -> dict[str, Any]:
    """densescale.json of a model folder (DataError when it is not one)."""
    from densescale.errors import DataError

    info_path = path / DENSESCALE_FILE
    if not info_path.exists():
        raise DataError(f"not a densescale model folder (no {DENSESCALE_FILE})", path)
    try:
        return json.loads(info_path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON: {e.msg}", info_path, e.lineno) from None


def read_projection(path: Path) -> dict[str, torch.Tensor] | None:
    """Weight and bias of the Dense module, or None when the folder has none."""
    from safetensors.torch import load_file

    f = path / "2_Dense" / "model.safetensors"
    if not f.exists():
        return None
    dense = load_file(str(f))
    return {"weight": dense["linear.weight"], "bias": dense["linear.bias"]}


def _json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


def _swap_into_place(tmp: Path, path: Path) -> None:
    old = path.with_name(f".{path.name}.{os.getpid()}.old")
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
