"""Dataset layer: readers, on-disk index, validation, nested training subsets."""

from densescale.data.annotations import AnnotationSet, read_annotation_set, write_annotation_set
from densescale.data.corpus import Corpus
from densescale.data.dataset import Dataset, open_dataset
from densescale.data.formats import Doc, Pair, Qrel, Query
from densescale.data.runs import read_hard_negatives, read_trec_run
from densescale.data.selection import SELECTION, Selection, make_selection
from densescale.data.subsets import nested_subsets
from densescale.data.validate import validate_dataset

__all__ = [
    "AnnotationSet", "Corpus", "Dataset", "Doc", "Pair", "Qrel", "Query", "SELECTION", "Selection",
    "make_selection", "nested_subsets",
    "open_dataset", "read_annotation_set", "read_hard_negatives", "read_trec_run",
    "validate_dataset", "write_annotation_set",
]
