"""``densescale annotate ict|doc2query|llm``: generated annotation sets.

The generators of Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024, Section 5.

    densescale annotate ict --data scifact --out runs/ann/scifact-ict --seed 0
    densescale annotate doc2query --data scifact --out runs/ann/scifact-d2q --model PATH \
        [--train-from train --train-steps 500] [--passages 2000 --seed 0] [--num-queries 1]
    OPENAI_API_KEY=… densescale annotate llm --data scifact --out runs/ann/scifact-llm \
        --endpoint http://localhost:8000/v1 --model NAME [--concurrency 8] [--prompt FILE]
    densescale annotate llm --backend hf --model PATH --data scifact --out runs/ann/x

Each writes queries.jsonl, qrels/train.tsv, provenance.json (+ failures.jsonl, positives.jsonl
for ICT, journal.jsonl for the resumable generators) to --out.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from densescale.utils import DATA_SOURCES, dump_json

annotate_app = typer.Typer(help="Generate annotation sets: ICT, doc2query, LLM queries.",
                           no_args_is_help=True)

_DATA = typer.Option(..., "--data", help=f"Dataset: {DATA_SOURCES}.")
_OUT = typer.Option(..., "--out", help="Output folder of the annotation set.")
_SPLIT = typer.Option("train", "--split", help="Qrels split whose positive pairs are annotated.")
_LIMIT = typer.Option(None, "--limit", help="Annotate only the first N selected items.")
_PASSAGES = typer.Option(None, "--passages",
                         help="Instead of the split's pairs: a seeded sample of N corpus passages.")
_SEED = typer.Option(0, "--seed", help="Seed (selection sample and generation).")
_UNIQUE = typer.Option(False, "--unique-passages",
                       help="One item per distinct passage instead of one per human pair.")
_JSON = typer.Option(False, "--json", help="Print one JSON summary on stdout.")
_PROGRESS = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr.")
_QUIET = typer.Option(False, "--quiet", help="No progress on stderr (same as --no-progress).")
_MAX_FAIL = typer.Option(0.1, "--max-failure-rate", min=0.0, max=1.0,
                         help="Largest share of failed items that still publishes the set; "
                              "above it the command exits 1 and publishes nothing.")


def _select(data: str, split: str, passages: int | None, seed: int, unique: bool,
            limit: int | None):
    from densescale.annotate.base import select_items
    from densescale.data import open_dataset

    ds = open_dataset(data)
    items = select_items(ds, split, passages, seed, unique, limit)
    selection = ({"mode": "random", "passages": passages, "seed": seed} if passages is not None
                 else {"mode": "pairs", "split": split, "unique_passages": unique})
    selection["limit"] = limit
    args = {"data": str(Path(ds.path).resolve()), "split": split, "selection": selection,
            "seed": seed}
    return ds, items, args


def _report(prov: dict, out: Path, as_json: bool) -> None:
    summary = {"out": str(out), "method": prov["method"], "model": prov.get("model"),
               **prov["counts"]}
    if "usage" in prov:
        summary["usage"] = prov["usage"]
    if as_json:
        dump_json(summary, indent=None)
    else:
        c = prov["counts"]
        typer.echo(f"{prov['method']}: {c['queries_written']} queries for "
                   f"{c['passages_selected']} items ({c['failures']} failures) -> {out}")


def ict(
    data: str = _DATA, out: Path = _OUT, split: str = _SPLIT, limit: int | None = _LIMIT,
    passages: int | None = _PASSAGES, seed: int = _SEED, unique_passages: bool = _UNIQUE,
    use_title: bool = typer.Option(False, "--use-title", help="Split 'title. text'."),
    as_json: bool = _JSON, progress: bool = _PROGRESS, quiet: bool = _QUIET,
) -> None:
    """Inverse Cloze Task pseudo-queries (the authors' rule; positives.jsonl holds the context)."""
    from densescale.annotate.base import run_annotation
    from densescale.annotate.ict import ICTAnnotator

    ds, items, args = _select(data, split, passages, seed, unique_passages, limit)
    args.update(method="ict", use_title=use_title)
    prov = run_annotation(ICTAnnotator(seed, use_title), ds, items, out, args, journaled=False,
                          progress=progress and not quiet)
    _report(prov, out, as_json)


def doc2query(
    data: str = _DATA, out: Path = _OUT,
    model: str = typer.Option(..., "--model", help="Seq2seq model path or (offline) hub id."),
    split: str = _SPLIT, limit: int | None = _LIMIT, passages: int | None = _PASSAGES,
    seed: int = _SEED, unique_passages: bool = _UNIQUE,
    num_queries: int = typer.Option(1, "--num-queries", help="Queries per passage."),
    top_k: int = typer.Option(10, "--top-k", help="Top-k sampling (10 as docTTTTTquery)."),
    max_input_len: int = typer.Option(512, "--max-input-len", help="Passage tokens."),
    max_query_len: int = typer.Option(64, "--max-query-len", help="Generated tokens."),
    batch_size: int = typer.Option(32, "--batch-size", help="Passages per generation batch."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ..."),
    train_from: str | None = typer.Option(
        None, "--train-from", help="Fine-tune first on this qrels split name or qrels TSV file."),
    train_steps: int = typer.Option(1000, "--train-steps",
                                    help="Fine-tuning steps (with --train-from)."),
    train_batch_size: int = typer.Option(16, "--train-batch-size",
                                         help="Fine-tuning batch size in (passage, query) pairs."),
    train_lr: float = typer.Option(3e-4, "--train-lr", help="Fine-tuning learning rate (AdamW)."),
    retry_failed: bool = typer.Option(False, "--retry-failed",
                                      help="On resume, retry items recorded as failures."),
    max_failure_rate: float = _MAX_FAIL, as_json: bool = _JSON, progress: bool = _PROGRESS,
    quiet: bool = _QUIET,
) -> None:
    """docT5query-style queries from a seq2seq model (top-k sampling), optionally fine-tuned."""
    from densescale.annotate.base import run_annotation
    from densescale.annotate.doc2query import (
        Doc2QueryAnnotator,
        FinetuneConfig,
        finetune,
        human_pairs,
    )
    from densescale.annotate.journal import args_hash

    progress = progress and not quiet
    ds, items, args = _select(data, split, passages, seed, unique_passages, limit)
    cfg = FinetuneConfig(steps=train_steps, batch_size=train_batch_size, lr=train_lr,
                         max_input_len=max_input_len, max_query_len=max_query_len, seed=seed)
    args.update(method="doc2query", model=model, num_queries=num_queries, top_k=top_k,
                max_input_len=max_input_len, max_query_len=max_query_len, batch_size=batch_size,
                train_from=train_from, finetune=vars(cfg) if train_from else None)
    gen_model = model
    if train_from:
        from densescale.utils import atomic_write_text, prepare_output_dir

        prepare_output_dir(out)  # before a long fine-tuning run, not after it
        gen_dir = Path(out) / "generator"
        stamp = gen_dir / "densescale_args.json"
        want = args_hash(args)
        if not (stamp.exists() and json.loads(stamp.read_text()).get("args_hash") == want):
            finetune(model, human_pairs(ds, train_from), gen_dir, cfg, device, progress)
            atomic_write_text(stamp, json.dumps({"args_hash": want}))
        gen_model = str(gen_dir)
    ann = Doc2QueryAnnotator(gen_model, num_queries, top_k, max_input_len, max_query_len,
                             batch_size, seed, device)
    ann.base_model = model if train_from else None
    prov = run_annotation(ann, ds, items, out, args, retry_failed=retry_failed,
                          fsync_every=batch_size, progress=progress,
                          max_failure_rate=max_failure_rate)
    _report(prov, out, as_json)


def llm(
    data: str = _DATA, out: Path = _OUT,
    model: str = typer.Option(..., "--model", help="Model name (openai) or path (hf)."),
    backend: str = typer.Option("openai", "--backend", help="openai (HTTP endpoint) or hf."),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1"),
    api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env",
                                    help="Environment variable holding the API key."),
    prompt: Path | None = typer.Option(None, "--prompt", help="Prompt template file."),
    split: str = _SPLIT, limit: int | None = _LIMIT, passages: int | None = _PASSAGES,
    seed: int = _SEED, unique_passages: bool = _UNIQUE,
    output_format: str = typer.Option("json", "--output-format", help="json or text."),
    concurrency: int = typer.Option(8, "--concurrency", help="Requests in flight."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds per request."),
    max_attempts: int = typer.Option(
        3, "--max-attempts", help="Invalid responses per item before it counts as a failure."),
    max_retries: int = typer.Option(
        8, "--max-retries", help="Retries per item after 429 / 5xx / timeout / connection errors."),
    backoff: float = typer.Option(1.0, "--backoff", help="First retry delay, seconds."),
    temperature: float = typer.Option(0.7, "--temperature",
                                      help="Sampling temperature (0 = greedy)."),
    max_tokens: int = typer.Option(128, "--max-tokens", help="Completion token limit."),
    max_query_words: int = typer.Option(
        64, "--max-query-words", help="Longest accepted query in words; a longer response is "
        "invalid and retried (see --max-attempts)."),
    price_in: float = typer.Option(0.0, "--price-in", help="Price per 1M prompt tokens."),
    price_out: float = typer.Option(0.0, "--price-out", help="Price per 1M completion tokens."),
    batch_size: int = typer.Option(8, "--batch-size", help="Prompts per batch (hf backend)."),
    device: str | None = typer.Option(None, "--device", help="hf backend device."),
    retry_failed: bool = typer.Option(False, "--retry-failed",
                                      help="On resume, retry items recorded as failures."),
    max_failure_rate: float = _MAX_FAIL, as_json: bool = _JSON, progress: bool = _PROGRESS,
    quiet: bool = _QUIET,
) -> None:
    """LLM-written queries (OpenAI-compatible endpoint or local HF causal LM), resumable."""
    from densescale.annotate.base import run_annotation, sha256_text
    from densescale.annotate.llm import (
        HFCausalBackend,
        LLMAnnotator,
        OpenAIChatBackend,
        load_prompt,
    )
    from densescale.errors import ConfigError

    template = load_prompt(prompt)
    if backend == "openai":
        be = OpenAIChatBackend(endpoint or "", model, api_key_env, concurrency, timeout,
                               temperature, max_tokens, seed, backoff)
    elif backend == "hf":
        be = HFCausalBackend(model, batch_size, max_tokens, temperature, seed=seed, device=device)
    else:
        raise ConfigError("--backend must be openai or hf")
    ds, items, args = _select(data, split, passages, seed, unique_passages, limit)
    args.update(method="llm", backend=backend, model=model, prompt_sha256=sha256_text(template),
                output_format=output_format, temperature=temperature, max_tokens=max_tokens,
                max_query_words=max_query_words)
    ann = LLMAnnotator(be, template, model, output_format, max_query_words, max_attempts,
                       price_in, price_out, max_retries)
    prov = run_annotation(ann, ds, items, out, args, retry_failed=retry_failed, fsync_every=8,
                          progress=progress and not quiet, max_failure_rate=max_failure_rate)
    _report(prov, out, as_json)


annotate_app.command("ict")(ict)
annotate_app.command("doc2query")(doc2query)
annotate_app.command("llm")(llm)


def register(app: typer.Typer) -> None:
    app.add_typer(annotate_app, name="annotate")
