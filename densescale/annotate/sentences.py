"""Rule-based sentence splitter and word tokenizer for English and Chinese (no downloads).

The released ICT generator of Fang et al. (SIGIR 2024) splits passages with NLTK's Punkt model;
densescale must work offline, so this module approximates Punkt with regular expressions:

* English: a boundary is ``.``, ``!`` or ``?`` (optionally followed by closing quotes or
  brackets), then whitespace, then a character that can start a sentence (not a lower-case
  letter). No split after known abbreviations ("e.g.", "Dr.", "U.S.", "Fig.", "et al."), single
  initials ("J. Smith") or inside numbers ("3.14" has no whitespace after the point).
* Chinese: a boundary follows each run of ``。！？；`` (full-width, also ``!?;`` right after a
  CJK character), plus closing quotes; no whitespace is needed.
* A blank line (paragraph break) always ends a sentence.

    >>> split_sentences("Dr. Smith lives in the U.S. now. He paid $3.50! Why?")
    ['Dr. Smith lives in the U.S. now.', 'He paid $3.50!', 'Why?']
    >>> split_sentences("今天天气很好。我们去公园吧！你呢？")
    ['今天天气很好。', '我们去公园吧！', '你呢？']
"""

from __future__ import annotations

import re

CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CLOSERS = "\"'”’」』）)\\]》"

# Lower-cased abbreviations (without their final period) after which a period does not end a
# sentence. Dotted acronyms ("u.s", "e.g", "ph.d") are handled by the pattern in _is_abbrev.
ABBREVIATIONS = frozenset("""
mr mrs ms dr prof sr jr st mt ft rev gen col lt sgt capt cmdr gov sen rep hon pres
vs etc al fig figs eq eqs ref refs vol vols no nos pp p ch sec sect approx ca cf
inc ltd co corp dept univ assn bros est
jan feb mar apr jun jul aug sep sept oct nov dec
mon tue tues wed thu thurs fri sat sun
""".split())

_EN_BOUNDARY = re.compile(rf"[.!?]+[{_CLOSERS}]*(?=\s+[^\sa-z])")
_ZH_BOUNDARY = re.compile(rf"(?:[。！？；]+|(?<=[{CJK}])[!?;]+)[{_CLOSERS}]*\s*")
_DOTTED = re.compile(r"^(?:[A-Za-z]{1,2}\.){2,}$")
_PARAGRAPH = re.compile(r"\n\s*\n")  # a blank line always ends a sentence
_WORD = re.compile(rf"[{CJK}]|[^\s{CJK}]+")
_HAS_CJK = re.compile(rf"[{CJK}]")


def _is_abbrev(text: str, dot: int) -> bool:
    """Whether the period at ``text[dot]`` closes an abbreviation rather than a sentence."""
    start = dot
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    token = text[start:dot].lstrip("(\"'“‘[")
    if not token:
        return False
    if token.lower().rstrip(".") in ABBREVIATIONS:
        return True
    if len(token) == 1 and token.isalpha():  # an initial: "J. Smith"
        return True
    return bool(_DOTTED.match(token + "."))  # "e.g." "U.S." "Ph.D."


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences (stripped, non-empty), English and Chinese.

    Args:
        text: A passage.

    Returns:
        The sentences in order; their concatenation equals ``text`` up to whitespace.
    """
    cuts: list[int] = []
    for m in _EN_BOUNDARY.finditer(text):
        first = m.start()
        if text[first] == "." and m.end() - first == 1 and _is_abbrev(text, first):
            continue
        cuts.append(m.end())
    if _HAS_CJK.search(text):
        cuts.extend(m.end() for m in _ZH_BOUNDARY.finditer(text))
    if "\n" in text:
        cuts.extend(m.end() for m in _PARAGRAPH.finditer(text))
    cuts = sorted(set(cuts))
    out, start = [], 0
    for c in cuts + [len(text)]:
        s = text[start:c].strip()
        if s:
            out.append(s)
        start = c
    return out


def words(text: str) -> list[str]:
    """Words: whitespace-separated tokens; each CJK character counts as one word."""
    return _WORD.findall(text)


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of :func:`words` in ``text``."""
    return [m.span() for m in _WORD.finditer(text)]


def has_cjk(text: str) -> bool:
    return _HAS_CJK.search(text) is not None
