"""A BiEncoder's folder: sentence-transformers modules plus densescale.json and a model card.

    0_Transformer/  the Hugging Face encoder and its tokenizer
    1_Pooling/      mean or CLS pooling
    2_Dense/        Linear(H -> proj_dim) (absent when the model has no projection)
    N_Normalize/    L2 normalisation (cosine models only)
    config.json, model.safetensors.index.json, tokenizer files: ``AutoModel``/``AutoTokenizer``
                    load the encoder from the root too (the index points into 0_Transformer/)
    densescale.json rung, N, pooling, lengths, similarity and scale, free-form meta
    README.md       model card (densescale.models.card)

``root=True`` writes the standard sentence-transformers layout instead: the encoder and tokenizer
at the root, and the projection also as ``projection.safetensors`` (an ``nn.Linear`` state dict).

``SentenceTransformer(folder)`` gives the same embeddings as ``BiEncoder.encode``, and
``encode_query`` / ``encode_document`` truncate at the query / passage length (the Transformer
module's ``query_length`` / ``document_length``). The folder is written to a temporary sibling and
renamed into place, so a reader never sees half of it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import torch

DENSESCALE_FILE = "densescale.json"
CARD_FILE = "README.md"
PROJECTION_FILE = "projection.safetensors"
FORMAT = "densescale-biencoder-v1"


def write_folder(model: Any, path: str | os.PathLike, extra: dict | None = None, *,
                 root: bool = False, run_dir: str | os.PathLike | None = None,
                 card_extra: str = "", task_lengths: bool | None = None) -> Path:
    """Write ``model`` (a BiEncoder) as a sentence-transformers folder + densescale.json.

    Args:
        model: the BiEncoder.
        path: the folder (replaced as a whole).
        extra: more keys for densescale.json (step, selection CE, ...).
        root: the encoder at the root (standard layout) instead of ``0_Transformer/``.
        run_dir: training output whose config.json/summary.json the card reports (default: the
            folder's parent).
        card_extra: Markdown appended to the model card (e.g. a target tool's section).
        task_lengths: write the Transformer module's ``query_length``/``document_length``
            (sentence-transformers >= 6.0 reads them; older versions refuse the folder). False:
            loadable by sentence-transformers 3-5, whose ``encode_query`` then cuts queries at
            the passage length. None: True when the installed sentence-transformers is >= 6.0.
    """
    from safetensors.torch import save_file

    from densescale.models.card import model_card, run_files

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tdir = tmp if root else tmp / "0_Transformer"
    tdir.mkdir(parents=True)
    _save_quietly(model.encoder, tdir)
    if model.tokenizer is not None:
        model.tokenizer.save_pretrained(str(tdir))
    hidden = model.encoder.config.hidden_size
    st_version = _installed_st_version()
    if task_lengths is None:
        task_lengths = _major(st_version) >= 6
    st_config: dict[str, Any] = {"max_seq_length": model.passage_max_len, "do_lower_case": False}
    if task_lengths:
        st_config.update(query_length=model.query_max_len, document_length=model.passage_max_len)
    _json(tdir / "sentence_bert_config.json", st_config)
    _json(tmp / "1_Pooling" / "config.json", {
        "word_embedding_dimension": hidden,
        "pooling_mode_cls_token": model.pooling == "cls",
        "pooling_mode_mean_tokens": model.pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    })
    modules = [("" if root else "0_Transformer", "Transformer"), ("1_Pooling", "Pooling")]
    if model.proj is not None:
        _json(tmp / "2_Dense" / "config.json", {
            "in_features": hidden, "out_features": model.dim, "bias": True,
            "activation_function": "torch.nn.modules.linear.Identity"})
        weight = model.proj.weight.detach().cpu().contiguous()  # [proj_dim, H]
        bias = model.proj.bias.detach().cpu().contiguous()  # [proj_dim]
        save_file({"linear.weight": weight, "linear.bias": bias},
                  str(tmp / "2_Dense" / "model.safetensors"))
        if root:
            save_file({"weight": weight, "bias": bias}, str(tmp / PROJECTION_FILE))
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
        "__version__": {"sentence_transformers": st_version, "pytorch": torch.__version__,
                        "transformers": transformers.__version__},
        "prompts": {}, "default_prompt_name": None,
        "similarity_fn_name": "cosine" if model.similarity == "cos" else "dot",
        **({"requirements": {"sentence-transformers": {
            "specifier": ">=6.0", "reason": "query_length/document_length of the Transformer "
            "module (queries and passages are truncated at different lengths)"}}}
           if task_lengths else {})})
    from densescale import __version__

    if not root:
        _root_pointer(tmp, tdir, model.tokenizer)
    info = {
        "format": FORMAT, "densescale_version": __version__,
        "rung": model.rung.to_dict() if model.rung else None,
        "n_params": model.num_non_embedding_params(), "n_params_total": model.num_params(),
        "proj_dim": model.proj_dim, "pooling": model.pooling,
        "query_max_len": model.query_max_len, "passage_max_len": model.passage_max_len,
        "similarity": model.similarity, "scale": model.score_scale,
        "meta": model.meta, **(extra or {})}
    _json(tmp / DENSESCALE_FILE, info)
    run = run_files(Path(run_dir) if run_dir is not None else path.parent)
    card = model_card(info, run, "root" if root else "densescale", task_lengths)
    (tmp / CARD_FILE).write_text(card + card_extra)
    _swap_into_place(tmp, path)
    return path


def _installed_st_version() -> str:
    """The installed sentence-transformers version ("0" when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sentence-transformers")
    except PackageNotFoundError:
        return "0"


def _major(v: str) -> int:
    head = v.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def _root_pointer(folder: Path, tdir: Path, tokenizer: Any) -> None:
    """Make ``AutoModel.from_pretrained(folder)`` load the encoder in ``tdir`` without a second
    copy of its weights: the root gets its config.json, a safetensors index whose shards are the
    files inside ``tdir``, and the tokenizer (small)."""
    from safetensors import safe_open

    shutil.copyfile(tdir / "config.json", folder / "config.json")
    sub = tdir.relative_to(folder).as_posix()
    index = tdir / "model.safetensors.index.json"
    if index.exists():  # a sharded save: re-point its shards
        idx = json.loads(index.read_text())
        idx["weight_map"] = {k: f"{sub}/{v}" for k, v in idx["weight_map"].items()}
    else:
        weight_map, total = {}, 0
        with safe_open(str(tdir / "model.safetensors"), "pt") as f:
            for k in f.keys():
                sl = f.get_slice(k)
                n = math.prod(sl.get_shape())
                total += n * _DTYPE_BYTES.get(sl.get_dtype(), 4)
                weight_map[k] = f"{sub}/model.safetensors"
        idx = {"metadata": {"total_size": total}, "weight_map": weight_map}
    _json(folder / "model.safetensors.index.json", idx)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(folder))


_DTYPE_BYTES = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2,
                "I8": 1, "U8": 1, "BOOL": 1}


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
    """Weight [proj_dim, H] and bias [proj_dim] of the Dense module, or None when the folder has
    none."""
    from safetensors.torch import load_file

    f = path / "2_Dense" / "model.safetensors"
    if not f.exists():
        return None
    dense = load_file(str(f))
    return {"weight": dense["linear.weight"], "bias": dense["linear.bias"]}


def load_projection(path: str | os.PathLike) -> torch.nn.Linear | None:
    """The projection of a saved or exported folder as an ``nn.Linear`` (None: no projection).

    For users of ``AutoModel``: ``proj(mean_pooled)`` gives densescale's embedding (then
    L2-normalise for cosine models)."""
    dense = read_projection(Path(path))
    if dense is None:
        return None
    out_dim, in_dim = dense["weight"].shape
    proj = torch.nn.Linear(in_dim, out_dim)
    proj.load_state_dict(dense)
    return proj


def encoder_dir(path: Path) -> Path:
    """Where the HF encoder of a model folder lives: ``0_Transformer/`` or the root."""
    sub = path / "0_Transformer"
    return sub if sub.is_dir() else path


def _json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


def _swap_into_place(tmp: Path, path: Path) -> None:
    old = path.with_name(f".{path.name}.{os.getpid()}.old")
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
