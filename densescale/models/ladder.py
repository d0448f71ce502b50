"""Model ladder: named rungs (shape + source) and the paper's parameter counts.

    from densescale.models import get_rung, count_non_embedding_params
    count_non_embedding_params(get_rung("bert-tiny"))   # 512,128

Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024, Sections 3.2 and 4.1 (model sizes).

N (the model-size law's variable, Kaplan convention) counts every parameter that is not an
embedding, as the authors' code does (``'embedding' not in name``): the transformer layers, BERT's
(unused) pooler, and the Linear(H -> proj_dim) projection every rung gets:

    N = L * (4 (H^2 + H) + 2 H I + I + H + 4 H) + (H^2 + H) + (H * P + P)

with I the FFN width and P = proj_dim (768; 0 = no projection, and the term drops out). Total
parameters add the embeddings (vocab * H + max_positions * H + type_vocab * H + LayerNorm 2H
[+ ERNIE's task-type table]).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from densescale.errors import ConfigError


@dataclass(frozen=True)
class Rung:
    """One model size of a ladder.

    Attributes:
        name: registry key, e.g. "bert-tiny" or "bert-L4-H256".
        layers, hidden, heads, intermediate: transformer shape (L, H, A, FFN width I).
        hub_id: Hugging Face id or local folder of the pretrained checkpoint ("" if none).
        family: "bert" | "ernie" | user label; picks the scratch architecture's defaults.
        vocab_size, max_positions, type_vocab_size, task_type_vocab_size: embedding shapes used
            for the total count and for scratch initialisation with the original vocabulary.
    """

    name: str
    layers: int
    hidden: int
    heads: int
    intermediate: int
    hub_id: str = ""
    family: str = "bert"
    vocab_size: int = 30522
    max_positions: int = 512
    type_vocab_size: int = 2
    task_type_vocab_size: int = 0  # ERNIE-3.0 has a 3-row task-type embedding (use_task_id)
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict:
        return asdict(self)


def count_non_embedding_params(rung: Rung, proj_dim: int = 768) -> int:
    """Non-embedding parameters N as the paper counts them (layers + pooler + H->proj_dim)."""
    h, i = rung.hidden, rung.intermediate
    attention = 4 * (h * h + h) + 2 * h  # Q, K, V, output dense + LayerNorm
    ffn = (h * i + i) + (i * h + h) + 2 * h  # up, down + LayerNorm
    pooler = h * h + h
    projection = h * proj_dim + proj_dim
    return rung.layers * (attention + ffn) + pooler + projection


def count_embedding_params(rung: Rung, vocab_size: int | None = None) -> int:
    """Word + position + token-type (+ task-type) embeddings and the embedding LayerNorm."""
    v = rung.vocab_size if vocab_size is None else vocab_size
    rows = v + rung.max_positions + rung.type_vocab_size + rung.task_type_vocab_size
    return rows * rung.hidden + 2 * rung.hidden


def count_total_params(rung: Rung, proj_dim: int = 768, vocab_size: int | None = None) -> int:
    """All parameters of the bi-encoder (embeddings included)."""
    return count_non_embedding_params(rung, proj_dim) + count_embedding_params(rung, vocab_size)


# ----------------------------------------------------------------------------- registries
_BERT_NAMED = {(2, 128): "bert-tiny", (4, 256): "bert-mini", (4, 512): "bert-small",
               (8, 512): "bert-medium", (12, 768): "bert-base"}


def _bert(layers: int, hidden: int) -> Rung:
    name = _BERT_NAMED.get((layers, hidden), f"bert-L{layers}-H{hidden}")
    return Rung(name, layers, hidden, hidden // 64, 4 * hidden,
                hub_id=f"google/bert_uncased_L-{layers}_H-{hidden}_A-{hidden // 64}", family="bert")


def _ernie(size: str, layers: int, hidden: int, heads: int, ffn: int) -> Rung:
    # ERNIE-3.0 zh configs (nghuyong ports): vocab 40000, 2048 positions, 4 token types,
    # 3 task types.
    return Rung(f"ernie-{size}", layers, hidden, heads, ffn,
                hub_id=f"nghuyong/ernie-3.0-{size}-zh", family="ernie", vocab_size=40000,
                max_positions=2048, type_vocab_size=4, task_type_vocab_size=3)


BERT_LADDER: dict[str, Rung] = {
    r.name: r for r in (_bert(L, H) for L in (2, 4, 6, 8, 10, 12) for H in (128, 256, 512, 768))
}
ERNIE_LADDER: dict[str, Rung] = {r.name: r for r in (
    _ernie("nano", 4, 312, 12, 1248),
    _ernie("micro", 4, 384, 12, 1536),
    _ernie("mini", 6, 384, 12, 1536),
    _ernie("medium", 6, 768, 12, 3072),
    _ernie("base", 12, 768, 12, 3072),
)}
LADDERS: dict[str, dict[str, Rung]] = {"bert": BERT_LADDER, "ernie": ERNIE_LADDER}
NAMED_BERT = list(_BERT_NAMED.values())


def get_rung(name: str) -> Rung:
    """Look a rung up by name in the built-in ladders (``bert-tiny``, ``bert-L6-H256``,
    ``ernie-nano``)."""
    for ladder in LADDERS.values():
        if name in ladder:
            return ladder[name]
    known = ", ".join(NAMED_BERT + list(ERNIE_LADDER))
    raise ConfigError(f"unknown model rung {name!r} (known: {known}, bert-L{{L}}-H{{H}}, "
                      "or a ladder YAML entry)")


_RUNG_KEYS = {"name", "layers", "hidden", "heads", "intermediate", "hub_id", "family",
              "vocab_size", "max_positions", "type_vocab_size", "task_type_vocab_size", "extra"}


def rung_from_dict(d: dict, where: str = "ladder entry") -> Rung:
    """A Rung from a mapping; missing shape fields are read from ``hub_id``'s config.json when
    local."""
    d = dict(d)
    unknown = set(d) - _RUNG_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    if "name" not in d:
        raise ConfigError(f"{where}: 'name' is required")
    if "layers" not in d or "hidden" not in d:
        hub = d.get("hub_id", "")
        cfg = _local_config(hub)
        if cfg is None:
            raise ConfigError(f"{where} {d['name']!r}: give layers and hidden, or a local "
                              "hub_id folder")
        d.setdefault("layers", cfg["num_hidden_layers"])
        d.setdefault("hidden", cfg["hidden_size"])
        d.setdefault("heads", cfg.get("num_attention_heads"))
        d.setdefault("intermediate", cfg.get("intermediate_size"))
        d.setdefault("vocab_size", cfg.get("vocab_size", 30522))
        d.setdefault("max_positions", cfg.get("max_position_embeddings", 512))
        d.setdefault("type_vocab_size", cfg.get("type_vocab_size", 2))
        d.setdefault("family", cfg.get("model_type", "bert"))
    d.setdefault("heads", max(1, int(d["hidden"]) // 64))
    d.setdefault("intermediate", 4 * int(d["hidden"]))
    for k in ("layers", "hidden", "heads", "intermediate"):
        if not isinstance(d[k], int) or d[k] <= 0:
            raise ConfigError(f"{where} {d['name']!r}: {k} must be a positive integer")
    if d["hidden"] % d["heads"]:
        raise ConfigError(f"{where} {d['name']!r}: hidden {d['hidden']} not divisible by heads "
                          f"{d['heads']}")
    return Rung(**d)


def _local_config(hub_id: str) -> dict | None:
    import json

    p = Path(os.path.expanduser(hub_id)) / "config.json" if hub_id else None
    return json.loads(p.read_text()) if p is not None and p.exists() else None


def load_ladder_yaml(path: str | os.PathLike) -> dict[str, Rung]:
    """Read a user ladder: ``rungs: [{name, hub_id, layers, hidden, heads, intermediate}, ...]``.

    A bare list of entries is accepted too. Relative local ``hub_id`` paths resolve against the
    YAML file's folder.
    """
    import yaml

    from densescale.errors import DataError

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("ladder file not found", path) from None
    except yaml.YAMLError as e:
        raise DataError(f"invalid YAML: {e}", path) from None
    entries = doc.get("rungs") if isinstance(doc, dict) else doc
    if not isinstance(entries, list) or not entries:
        raise DataError("expected a non-empty list under 'rungs'", path)
    out: dict[str, Rung] = {}
    for k, e in enumerate(entries):
        if not isinstance(e, dict):
            raise DataError(f"rung #{k} is not a mapping", path)
        e = dict(e)
        hub = e.get("hub_id", "")
        if hub and (hub.startswith(".") or hub.startswith("/")):
            e["hub_id"] = str((path.parent / os.path.expanduser(hub)).resolve())
        try:
            rung = rung_from_dict(e, where=f"{path} rung #{k}")
        except ConfigError as err:
            raise DataError(str(err), path) from None
        out[rung.name] = rung
    return out


def resolve_rung(spec: str | Rung | dict) -> Rung:
    """A Rung from a name, a Rung, a dict entry, or ``FILE.yaml:name``."""
    if isinstance(spec, Rung):
        return spec
    if isinstance(spec, dict):
        return rung_from_dict(spec)
    if ".yaml:" in spec or ".yml:" in spec:
        file, _, name = spec.rpartition(":")
        ladder = load_ladder_yaml(file)
        if name not in ladder:
            raise ConfigError(f"rung {name!r} not in {file} (has: {', '.join(ladder)})")
        return ladder[name]
    return get_rung(spec)
