"""Generation backends of ``annotate llm``: an OpenAI-compatible HTTP endpoint, a local HF LM.

* :class:`OpenAIChatBackend`: POST ``{endpoint}/chat/completions`` (vLLM, Ollama, llama.cpp
  server, OpenAI) with httpx, ``concurrency`` requests in flight (asyncio workers). Transport
  errors (429, 5xx, timeouts, connection errors) raise :class:`Retryable`; 401/403/404 raise
  DenseScaleError (the run aborts). The API key is read from an environment variable only and is
  redacted from every message.
* :class:`HFCausalBackend`: a local ``AutoModelForCausalLM`` (chat template when the tokenizer
  has one), batched.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import time
from collections.abc import Callable, Iterable

from densescale.annotate.base import Item
from densescale.annotate.responses import InvalidResponse
from densescale.errors import ConfigError, DenseScaleError

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
FATAL_STATUS = frozenset({401, 403, 404})


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


def add_usage(total: dict, usage: dict | None) -> None:
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
        """One request. Returns (content, usage); raises Retryable or DenseScaleError."""
        import httpx

        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                "temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed}
        try:
            r = await client.post(self.url, json=body)
        except httpx.TimeoutException:
            raise Retryable(f"timeout after {self.timeout}s") from None
        except httpx.TransportError as e:
            raise Retryable(self.redact(f"connection error: {type(e).__name__}: {e}")) from None
        if r.status_code in FATAL_STATUS:
            raise DenseScaleError(self.redact(
                f"{self.url} answered HTTP {r.status_code} (check --endpoint, --model and "
                f"${self.api_key_env}): {r.text[:200]}"))
        if r.status_code in RETRY_STATUS or r.status_code >= 500:
            raise Retryable(f"HTTP {r.status_code}", _retry_after(r.headers.get("retry-after")))
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


class Retryable(Exception):
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
