"""`densescale demo`: a complete miniature of the paper on real data, on a laptop CPU.

    densescale demo                   # about 14 min on 2 CPU cores; rerun reuses finished runs
    densescale demo --scale paper     # what the same study costs at the paper's scale

The design (``densescale.demo.design``), the run (``densescale.demo.run``) and the targets that
make its laws trustworthy (``densescale.demo.targets``) live in their own modules.
"""

from __future__ import annotations

from densescale.demo.design import DEMO_LADDER, METRIC, TRAIN_SIZES, demo_spec
from densescale.demo.run import run_demo
from densescale.demo.targets import Target, check_targets

__all__ = ["DEMO_LADDER", "METRIC", "TRAIN_SIZES", "Target", "check_targets", "demo_spec",
           "run_demo"]
