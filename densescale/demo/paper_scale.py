"""What the demo's study costs at the paper's scale (MS MARCO, BERT miniatures, 10,000 steps).

Compute per run = 6 FLOPs x total parameters x tokens per step x steps (training) plus
2 x parameters x tokens for encoding the evaluation pool, priced with the budget module's
hardware assumptions (A100, 312 TFLOP/s peak, 25% utilisation, $3.93/h).
"""

from __future__ import annotations

from typing import Any

from densescale.budget import CostAssumptions

PAPER_RUNGS = ["bert-tiny", "bert-mini", "bert-small", "bert-medium", "bert-base"]
PAPER_D = [10_000, 30_000, 100_000, 300_000, 532_761]  # MS MARCO train pairs (all = 532,761)


def paper_scale_plan(steps: int = 10_000, batch_size: int = 128, negatives: int = 256,
                     query_len: int = 32, passage_len: int = 180,
                     eval_pool: int = 1_000_000) -> dict[str, Any]:
    """GPU hours and dollars of the demo's design at the paper's settings."""
    from densescale.models.ladder import count_non_embedding_params, count_total_params, get_rung

    hw = CostAssumptions()
    flops_per_s = hw.peak_flops * hw.utilisation
    tokens_step = batch_size * query_len + (batch_size + negatives) * passage_len
    runs = []
    for name in PAPER_RUNGS:
        runs.append((name, PAPER_D[-1], "human"))
    for d in PAPER_D[:-1]:
        runs.append((PAPER_RUNGS[-1], d, "human"))
    for d in PAPER_D:
        runs.append((PAPER_RUNGS[-1], d, "ict"))
    rows, total_h = [], 0.0
    for name, d, ann in runs:
        rung = get_rung(name)
        n_total = count_total_params(rung)
        flops = 6 * n_total * tokens_step * steps + 2 * n_total * eval_pool * passage_len
        hours = flops / flops_per_s / 3600
        total_h += hours
        rows.append({"rung": name, "n": count_non_embedding_params(rung), "d": d,
                     "annotation": ann, "gpu_hours": hours})
    return {
        "runs": rows,
        "gpu_hours": total_h,
        "dollars": total_h * hw.gpu_price,
        "assumptions": {"steps": steps, "batch_size": batch_size, "negatives": negatives,
                        "query_len": query_len, "passage_len": passage_len,
                        "eval_pool": eval_pool, "peak_flops": hw.peak_flops,
                        "utilisation": hw.utilisation, "gpu_price_per_hour":
                        hw.gpu_price},
        "commands": [
            "densescale annotate ict --data msmarco-passage --out runs/ann/msmarco-ict",
            "ray start --head   # on the head node; `ray start --address HEAD:6379` on the others",
            "densescale study run configs/msmarco_model_sweep.yaml --executor ray --address auto",
            "densescale study run configs/msmarco_data_sweep.yaml --executor ray --address auto",
            "densescale study run configs/msmarco_annotation_sweep.yaml --executor ray "
            "--address auto",
            "densescale report --results configs/msmarco_model_sweep.yaml --out report/",
        ],
    }
