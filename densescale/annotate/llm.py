"""LLM-written queries: one per item, from an OpenAI-compatible endpoint or a local HF causal LM.

Fang et al. (SIGIR 2024, §5) prompted ChatGLM3 to write a relevant query for each human-labelled
training passage (their prompt is not published); the default prompt shipped here is
``densescale/annotate/prompts/default.txt`` (placeholders ``{passage}`` and ``{title}``; the model
answers ``{"query": "..."}``), overridable with ``--prompt FILE``.

Backends:

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
import email.utils
import itertools
import json
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path

from densescale.annotate.base import Annotator, Item, Result
from densescale.annotate.sentences import words
from densescale.data import Doc
from densescale.errors import ConfigError, DenseScaleError

REFUSAL = re.compile(
    r"\b(i'?m sorry|i am sorry|i apologi[sz]e|i can(?:'|no)?t\b|i cannot|i am unable|i'm unable|"
    r"i won'?t be able|as an ai\b|as a language model|unable to (?:help|assist|comply)|"
    r"cannot (?:help|assist|comply))", re.IGNORECASE)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
FATAL_STATUS = frozenset({401, 403, 404})


def default_prompt() -> str:
    return (resources.files("densescale.annotate") / "prompts" / "default.txt").read_text("utf-8")


def load_prompt(path: str | os.PathLike | None) -> str:
    """The prompt template (``{passage}`` required, ``{title}`` optional)."""
    text = default_prompt() if path is None else Path(path).read_text(encoding="utf-8")
    if "{passage}" not in text:
        raise ConfigError(f"prompt {path or 'default'} has no {{passage}} placeholder")
    return text


def render(template: str, doc: Doc) -> str:
    return template.replace("{title}", doc.title).replace("{passage}", doc.text)


class InvalidResponse(Exception):
    """A response that does not contain an acceptable query (the reason is the message)."""


def parse_query(content: str | None, output_format: str = "json", max_words: int = 64) -> str:
    """Extract and validate the query from a model response.

    Args:
        content: The response text.
        output_format: "json" ({"query": "..."}, code fences tolerated) or "text" (first line).
        max_words: Longest accepted query, in words (CJK characters count as words).

    Returns:
        The query.

    Raises:
        InvalidResponse: empty, malformed, missing key, too long or a refusal.
    """
    text = (content or "").strip()
    if not text:
        raise InvalidResponse("empty response")
    if output_format == "json":
        body = _FENCE.sub("", text).strip()
        try:
            obj = json.loads(body)
        except ValueError:
            a, b = body.find("{"), body.rfind("}")
            try:
                obj = json.loads(body[a:b + 1]) if 0 <= a < b else None
            except ValueError:
                obj = None
            if obj is None:
                raise InvalidResponse("malformed JSON" + (" (refusal)" if REFUSAL.search(text)
                                                          else "")) from None
        if not isinstance(obj, dict) or not isinstance(obj.get("query"), str):
            raise InvalidResponse('JSON without a "query" string')
        query = obj["query"].strip()
    else:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        query = re.sub(r"^(?:search\s+)?query\s*:\s*", "", lines[0], flags=re.I).strip("\"'“” ")
    if not query:
        raise InvalidResponse("empty query")
    if REFUSAL.search(query):
        raise InvalidResponse("refusal")
    if len(words(query)) > max_words:
        raise InvalidResponse(f"query longer than {max_words} words")
    return query


class Redactor:
    """Replaces a secret in any string (messages, reprs) with ``***``."""

    def __init__(self, secret: str | None):
        self.secret = secret or None

    def __call__(self, text: object) -> str:
        s = str(text)
        return s.replace(self.secret, "***") if self.secret else s


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return None
        return max(0.0, when - time.time())


def _add_usage(total: dict, usage: dict | None) -> None:
    for k in ("prompt_tokens", "completion_tokens"):
        v = (usage or {}).get(k)
        if isinstance(v, int):
            total[k] = total.get(k, 0) + v


class OpenAIChatBackend:
    """Async client for ``POST {endpoint}/chat/completions``.

    Args:
        endpoint: Base URL (``http://host:8000/v1``) or the full ``…/chat/completions`` URL.
        model: Model name sent in the request.
        api_key_env: Environment variable holding the key (sent as a Bearer token when set).
        concurrency: Requests in flight.
        timeout: Seconds per request.
        temperature: Sampling temperature.
        max_tokens: Completion token limit.
        seed: Sent as ``seed`` (honoured by OpenAI and vLLM).
        backoff: First retry delay in seconds (doubles per attempt, x U(0.5, 1.5) jitter).
        max_backoff: Cap of one delay (also caps ``Retry-After``).
    """

    name = "openai"

    def __init__(self, endpoint: str, model: str, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 8, timeout: float = 60.0, temperature: float = 0.7,
                 max_tokens: int = 128, seed: int = 0, backoff: float = 1.0,
                 max_backoff: float = 60.0):
        if not endpoint:
            raise ConfigError("--endpoint is required for the openai backend")
        url = endpoint.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self._key = os.environ.get(api_key_env) or None
        self.redact = Redactor(self._key)
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._rng = random.Random(seed)

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIChatBackend(url={self.url!r}, model={self.model!r}, key=***)"

    def params(self) -> dict:
        return {"backend": "openai", "endpoint": self.redact(self.url),
                "api_key_env": self.api_key_env,
                "concurrency": self.concurrency, "timeout": self.timeout,
                "temperature": self.temperature, "max_tokens": self.max_tokens,
                "backoff": self.backoff}

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        d = min(self.max_backoff, self.backoff * 2 ** (attempt - 1)) * self._rng.uniform(0.5, 1.5)
        if retry_after is not None:
            d = max(d, min(retry_after, self.max_backoff))
        return d

    async def complete(self, client, prompt: str) -> tuple[str | None, dict | None]:
        """One request. Returns (content, usage); raises _Retryable or DenseScaleError."""
        import httpx

        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                "temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed}
        try:
            r = await client.post(self.url, json=body)
        except httpx.TimeoutException:
            raise _Retryable(f"timeout after {self.timeout}s") from None
        except httpx.TransportError as e:
            raise _Retryable(self.redact(f"connection error: {type(e).__name__}: {e}")) from None
        if r.status_code in FATAL_STATUS:
            raise DenseScaleError(self.redact(
                f"{self.url} answered HTTP {r.status_code} (check --endpoint, --model and "
                f"${self.api_key_env}): {r.text[:200]}"))
        if r.status_code in RETRY_STATUS or r.status_code >= 500:
            raise _Retryable(f"HTTP {r.status_code}", _retry_after(r.headers.get("retry-after")))
        if r.status_code >= 400:
            raise InvalidResponse(self.redact(f"HTTP {r.status_code}: {r.text[:200]}"))
        try:
            data = r.json()
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return None, None  # an unparseable envelope: counted as an invalid response
        return content, data.get("usage") if isinstance(data, dict) else None

    def run(self, jobs: Iterable[tuple[Item, str]], handle: Callable, emit: Callable) -> None:
        asyncio.run(self._run(jobs, handle, emit))

    async def _run(self, jobs, handle, emit) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        limits = httpx.Limits(max_connections=self.concurrency,
                              max_keepalive_connections=self.concurrency)
        it = iter(jobs)
        async with httpx.AsyncClient(timeout=httpx.Timeout(self.timeout), headers=headers,
                                     limits=limits) as client:
            async def worker() -> None:
                for item, prompt in it:
                    emit(await handle(client, item, prompt))

            try:
                async with asyncio.TaskGroup() as tg:
                    for _ in range(self.concurrency):
                        tg.create_task(worker())
            except* DenseScaleError as eg:
                raise eg.exceptions[0] from None


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class HFCausalBackend:
    """A local Hugging Face causal LM, batched, sampling with temperature / top-k.

    Args:
        model_path: Model folder (or hub id available offline).
        batch_size: Prompts per ``generate`` call.
        max_tokens: New tokens per response.
        temperature: Sampling temperature (0 = greedy).
        top_k: Top-k cut-off when sampling.
        seed: torch seed.
        device: torch device name (default: cuda when available).
        max_prompt_len: Longer prompts are truncated (tokens, from the right).
    """

    name = "hf"

    def __init__(self, model_path: str, batch_size: int = 8, max_tokens: int = 64,
                 temperature: float = 0.7, top_k: int = 50, seed: int = 0,
                 device: str | None = None, max_prompt_len: int = 2048):
        self.model_path = str(model_path)
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.top_k = top_k
        self.seed = seed
        self.device = device
        self.max_prompt_len = max_prompt_len
        self._tok = self._model = None

    def params(self) -> dict:
        return {"backend": "hf", "batch_size": self.batch_size, "max_tokens": self.max_tokens,
                "temperature": self.temperature, "top_k": self.top_k}

    def _load(self):
        if self._model is None:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from densescale.utils import device as pick_device

            self._dev = pick_device(self.device)
            try:
                tok = AutoTokenizer.from_pretrained(self.model_path)
                model = AutoModelForCausalLM.from_pretrained(self.model_path)
            except (OSError, ValueError) as e:
                raise ConfigError(f"cannot load causal LM {self.model_path!r}: {e}") from None
            tok.padding_side = "left"
            if tok.pad_token_id is None:
                tok.pad_token = tok.eos_token or tok.unk_token
            self._tok, self._model = tok, model.to(self._dev).eval()
        return self._tok, self._model

    def generate(self, prompts: list[str]) -> list[tuple[str, dict]]:
        import torch

        tok, model = self._load()
        if getattr(tok, "chat_template", None):
            prompts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                               add_generation_prompt=True) for p in prompts]
        enc = tok(prompts, return_tensors="pt", padding=True, truncation=True,
                  max_length=self.max_prompt_len).to(self._dev)  # [B, L]
        sample = self.temperature > 0
        kw = {"do_sample": True, "temperature": self.temperature, "top_k": self.top_k} \
            if sample else {"do_sample": False}
        with torch.no_grad():
            gen = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                 max_new_tokens=self.max_tokens,
                                 pad_token_id=tok.pad_token_id, **kw)  # [B, L + T]
        new = gen[:, enc["input_ids"].shape[1]:]  # [B, T]
        n_prompt = enc["attention_mask"].sum(1).tolist()
        eos = tok.eos_token_id
        out = []
        for row, np_ in zip(new.tolist(), n_prompt):
            n_out = row.index(eos) + 1 if eos is not None and eos in row else len(row)
            text = tok.decode(row[:n_out], skip_special_tokens=True)
            out.append((text, {"prompt_tokens": int(np_), "completion_tokens": n_out}))
        return out


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
                _add_usage(usage, u)
                query = parse_query(content, self.output_format, self.max_query_words)
                return Result(item.key, item.doc_id, queries=[query], attempts=requests,
                              usage=usage)
            except _Retryable as e:
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
                    _add_usage(st["usage"], u)
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
