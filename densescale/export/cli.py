"""``densescale export``: write a trained model for transformers/sentence-transformers or
Tevatron."""

from __future__ import annotations

from enum import StrEnum

import typer

from densescale.utils import dump_json


class Format(StrEnum):
    """Export formats (densescale.export.formats.FORMATS)."""

    hf = "hf"
    tevatron = "tevatron"


def export(
    model: str = typer.Option(..., "--model",
                              help="Training output folder (uses best/, else last/) or a model "
                                   "folder holding densescale.json."),
    fmt: Format = typer.Option(..., "--format", case_sensitive=False,
                            help="hf: AutoModel + tokenizer at the root, projection.safetensors, "
                                 "sentence-transformers modules. tevatron: the folder Tevatron's "
                                 "DenseModel loads (models without a projection)."),
    out: str = typer.Option(..., "--out", help="Output folder (must be empty or absent)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out."),
    st_compat: bool = typer.Option(
        False, "--st-compat", help="Loadable by sentence-transformers 3-5 too (they refuse the "
        "per-task lengths; their encode_query then cuts queries at the passage length)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Export a model so that other tools load it with the same embeddings.

    Writes OUT/ with config.json, model.safetensors and the tokenizer (AutoModel and AutoTokenizer
    load it), 1_Pooling/, 2_Dense/ and projection.safetensors when the model has a projection,
    modules.json (SentenceTransformer(OUT): encode_query / encode_document keep the query and
    passage lengths), densescale.json, and README.md, a model card with N, D, data, settings,
    selection and the loading recipes.
    """
    from densescale.export.formats import export_model

    res = export_model(model, fmt.value, out, overwrite=overwrite, st_compat=st_compat)
    if as_json:
        dump_json(res)
        return
    typer.echo(f"exported {res['source']} ({res['format']}) -> {res['out']}")
    typer.echo(f"  N={res['n_params']:,}  dim={res['dim']}  similarity={res['similarity']}  "
               f"pooling={res['pooling']}  lengths {res['query_max_len']}/"
               f"{res['passage_max_len']}")
    if "tevatron_args" in res:
        typer.echo(f"  tevatron flags: {' '.join(res['tevatron_args'])}")
    typer.echo(f"  model card: {res['card']}")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
