"""Studies: resumable grids of training runs over model size, data size and annotation source,
recorded in a results database (SQLite by default), run locally or on a Ray cluster.

    spec = load_spec("configs/tiny.yaml")
    run_study(spec)                        # or: densescale study run configs/tiny.yaml
    df = read_results("configs/tiny.yaml")  # the one reader (CSV, Parquet, database, spec)
"""

from densescale.study.design import Point, expand
from densescale.study.driver import export, results_frame, run_study, study_status
from densescale.study.results import read_results
from densescale.study.spec import StudySpec, load_spec, parse_spec
from densescale.study.store import SCHEMA_VERSION, Store

__all__ = ["SCHEMA_VERSION", "Point", "Store", "StudySpec", "expand", "export", "load_spec",
           "parse_spec", "read_results", "results_frame", "run_study", "study_status"]
