"""Prompt templates and validation of LLM responses (one query per response).

Fang et al. (Scaling Laws for Dense Retrieval, SIGIR 2024, Section 5) prompted ChatGLM3 to write
a relevant query for each human-labelled training passage (their prompt is not published); the
default prompt shipped here is ``densescale/annotate/prompts/default.txt`` (placeholders
``{passage}`` and ``{title}``; the model answers ``{"query": "..."}``).
"""

from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path

from densescale.annotate.sentences import words
from densescale.data import Doc
from densescale.errors import ConfigError

REFUSAL = re.compile(
    r"\b(i'?m sorry|i am sorry|i apologi[sz]e|i can(?:'|no)?t\b|i cannot|i am unable|i'm unable|"
    r"i won'?t be able|as an ai\b|as a language model|unable to (?:help|assist|comply)|"
    r"cannot (?:help|assist|comply))", re.IGNORECASE)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


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
