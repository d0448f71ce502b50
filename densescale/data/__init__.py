"""Dataset layer: readers, on-disk index, validation, nested training subsets."""

from densescale.data.annotations import AnnotationSet, read_annotation_set, write_annotation_set
from densescale.data.dataset import Corpus, Dataset, open_dataset
from densescale.data.formats import Doc, Pair, Qrel, Query

__all__ = [
    "AnnotationSet", "Corpus", "Dataset", "Doc", "Pair", "Qrel", "Query",
    "open_dataset", "read_annotation_set", "write_annotation_set",
]
