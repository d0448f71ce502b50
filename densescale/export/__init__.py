"""Export a trained densescale model for other tools (``densescale export``).

* ``hf``: the standard sentence-transformers layout with the encoder at the root, so
  ``AutoModel``/``AutoTokenizer.from_pretrained(OUT)`` load it, ``SentenceTransformer(OUT)``
  encodes queries and passages at their own lengths, and the projection is also in
  ``projection.safetensors`` (an ``nn.Linear`` state dict; the card has the 10-line recipe).
* ``tevatron``: a folder Tevatron's ``DenseModel.load`` reads (an ``AutoModel`` encoder with its
  tokenizer, pooled by ``--pooling mean|cls`` and ``--normalize``), for models without a
  projection: Tevatron applies no layer after pooling.

    from densescale.export import export_model
    export_model("runs/squad-bert-mini", "hf", "exports/squad-bert-mini")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from densescale.export.formats import FORMATS, export_model, resolve_model_dir

__all__ = ["FORMATS", "export_model", "resolve_model_dir"]


def __getattr__(name: str):
    if name in __all__:
        from densescale.export import formats

        return getattr(formats, name)
    raise AttributeError(f"module 'densescale.export' has no attribute {name!r}")
