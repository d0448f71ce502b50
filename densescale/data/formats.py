"""Records that flow between stages (plain named tuples, as ir_datasets / ir_measures do)."""

from __future__ import annotations

from typing import NamedTuple


class Doc(NamedTuple):
    id: str
    title: str
    text: str

    def full_text(self) -> str:
        """Text an encoder sees: "title text" (the BEIR / sentence-transformers convention)."""
        return f"{self.title} {self.text}" if self.title else self.text


class Query(NamedTuple):
    id: str
    text: str


class Qrel(NamedTuple):
    query_id: str
    doc_id: str
    score: int


class Pair(NamedTuple):
    """One annotated (query, positive passage) pair: the unit D counts."""

    query_id: str
    doc_id: str
