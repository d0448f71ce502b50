"""LLM-written queries: one per item, from an OpenAI-compatible endpoint or a local HF causal LM.

Fang et al. (Scaling Laws for Dense Retrieval, SIGIR 2024, Section 5) prompted ChatGLM3 to
write a relevant query for each human-labelled training passage (their prompt is not published);
the default prompt (``densescale/annotate/prompts/default.txt``, see
:mod:`densescale.annotate.responses`) is overridable with ``--prompt FILE``.

Backends (:mod:`densescale.annotate.backends`):

* ``openai``: POST ``{endpoint}/chat/completions`` (vLLM, Ollama, llama.cpp server, OpenAI) with
  httpx, ``concurrency`` requests in flight (asyncio workers).
* ``hf``: a local ``AutoModelForCausalLM`` (chat template when the tokenizer has one).

Each response is validated (malformed JSON / missing key, empty, longer than ``max_query_words``,
refusal); invalid responses and transport errors (429, 5xx, timeouts, connection errors) are
retried, transport errors with exponential backoff + jitter (honouring ``Retry-After``), up to
``max_attempts`` invalid responses or ``max_retries`` transport retries per item, after which the
item is recorded as a failure (journal, ``failures.jsonl``, provenance counts). 401/403/404
abort the run. Token usage (``usage`` field) and cost (``price_in`` / ``price_out`` per 1M tokens)
go into the provenance. The API key is read from an environment variable only and is redacted
from every message this module produces.

    OPENAI_API_KEY=… densescale annotate llm --data scifact --out runs/ann/scifact-llm \
        --endpoint http://localhost:8000/v1 --model Qwen/Qwen2.5-7B-Instruct --concurrency 16
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence

from densescale.annotate.backends import (
    FATAL_STATUS,
    RETRY_STATUS,
    HFCausalBackend,
    OpenAIChatBackend,
    Redactor,
    Retryable,
    add_usage,
)
from densescale.annotate.base import Annotator, Item, Result
from densescale.annotate.responses import (
    REFUSAL,
    InvalidResponse,
    default_prompt,
    load_prompt,
    parse_query,
    render,
)
from densescale.data import Doc
from densescale.errors import ConfigError

__all__ = ["FATAL_STATUS", "REFUSAL", "RETRY_STATUS", "HFCausalBackend", "InvalidResponse",
           "LLMAnnotator", "OpenAIChatBackend", "Redactor", "default_prompt", "load_prompt",
           "parse_query", "render"]


class LLMAnnotator(Annotator):
    """One validated LLM query per item.

    Args:
        backend: OpenAIChatBackend or HFCausalBackend.
        prompt: Prompt template (see :func:`load_prompt`).
        model: Model name recorded in the provenance.
        output_format: "json" or "text" (see :func:`parse_query`).
        max_query_words: Longest accepted query.
        max_attempts: Invalid responses per item before it is recorded as a failure.
        max_retries: Retries per item after transport errors (429, 5xx, timeouts, connection).
        price_in: Price per 1M prompt tokens.
        price_out: Price per 1M completion tokens.
    """

    method = "llm"

    def __init__(self, backend, prompt: str, model: str, output_format: str = "json",
                 max_query_words: int = 64, max_attempts: int = 3, price_in: float = 0.0,
                 price_out: float = 0.0, max_retries: int = 8):
        if output_format not in ("json", "text"):
            raise ConfigError("--output-format must be json or text")
        self.backend = backend
        self.prompt = prompt
        self.model = model
        self.output_format = output_format
        self.max_query_words = max_query_words
        self.max_attempts = max(1, max_attempts)
        self.max_retries = max(0, max_retries)
        self.price_in = price_in
        self.price_out = price_out

    def params(self) -> dict:
        return {**self.backend.params(), "output_format": self.output_format,
                "max_query_words": self.max_query_words, "max_attempts": self.max_attempts,
                "max_retries": self.max_retries,
                "price_in_per_1m": self.price_in, "price_out_per_1m": self.price_out}

    def run(self, items: Sequence[Item], docs: Sequence[Doc],
            emit: Callable[[Result], None]) -> None:
        jobs = ((it, render(self.prompt, d)) for it, d in zip(items, docs))  # lazy
        if isinstance(self.backend, OpenAIChatBackend):
            self.backend.run(jobs, self._handle_http, emit)
        else:
            self._run_local(jobs, emit)

    async def _handle_http(self, client, item: Item, prompt: str) -> Result:
        b = self.backend
        usage: dict = {}
        errors: list[str] = []
        requests = invalid = transport = 0
        while invalid < self.max_attempts and transport <= self.max_retries:
            requests += 1
            try:
                content, u = await b.complete(client, prompt)
                add_usage(usage, u)
                query = parse_query(content, self.output_format, self.max_query_words)
                return Result(item.key, item.doc_id, queries=[query], attempts=requests,
                              usage=usage)
            except Retryable as e:
                transport += 1
                errors.append(str(e))
                if transport <= self.max_retries:
                    await asyncio.sleep(b.delay(transport, e.retry_after))
            except InvalidResponse as e:
                invalid += 1
                errors.append(str(e))
        return Result(item.key, item.doc_id, error=b.redact("; ".join(errors[-8:])),
                      attempts=requests, usage=usage)

    def _run_local(self, jobs, emit) -> None:
        import torch

        b = self.backend
        torch.manual_seed(b.seed)
        jobs = iter(jobs)
        while batch := list(itertools.islice(jobs, b.batch_size)):
            state = {it.key: {"usage": {}, "errors": [], "attempts": 0} for it, _ in batch}
            pending = list(batch)
            while pending:
                outs = b.generate([p for _, p in pending])
                retry = []
                for (it, p), (text, u) in zip(pending, outs):
                    st = state[it.key]
                    st["attempts"] += 1
                    add_usage(st["usage"], u)
                    try:
                        q = parse_query(text, self.output_format, self.max_query_words)
                        emit(Result(it.key, it.doc_id, queries=[q], attempts=st["attempts"],
                                    usage=st["usage"]))
                    except InvalidResponse as e:
                        st["errors"].append(str(e))
                        if st["attempts"] < self.max_attempts:
                            retry.append((it, p))
                        else:
                            emit(Result(it.key, it.doc_id, error="; ".join(st["errors"]),
                                        attempts=st["attempts"], usage=st["usage"]))
                pending = retry

    def extra_provenance(self, records: Sequence[dict]) -> dict:
        tin = sum(r.get("usage", {}).get("prompt_tokens", 0) for r in records)
        tout = sum(r.get("usage", {}).get("completion_tokens", 0) for r in records)
        cost = tin / 1e6 * self.price_in + tout / 1e6 * self.price_out
        return {"usage": {"prompt_tokens": tin, "completion_tokens": tout,
                          "requests": sum(r.get("attempts", 1) for r in records),
                          "cost": round(cost, 6), "price_in_per_1m": self.price_in,
                          "price_out_per_1m": self.price_out,
                          "note": "requests of a killed run that were never journaled are not "
                                  "counted"}}
