"""The prepared GPU check's driver (run it through bench/gpu_check.sh; see there).

Steps, each timed and recorded in one JSON (a failing step records its error and the next one
still runs):

1. ``tests``: pytest on tests/train/test_speed_device.py with DENSESCALE_TEST_DEVICE=<device>.
2. ``train``: bert-base shape from scratch, 200 steps, batch 128, 256 shared negatives, query /
   passage length 32 / 180 (the paper's), bf16 autocast: pairs/s, model FLOP/s, MFU against the
   device's bf16 peak (densescale.models.flops); then 50 steps of the same run with the packed
   (unpadded) forward, to compare pairs/s (``packed_speedup``).
3. ``torchrun``: ``python -m torch.distributed.run --nproc_per_node 1 -m densescale train`` (NCCL
   on CUDA, gloo on CPU), a short run; checks it finishes and reports pairs/s.
4. ``entropy``: contrastive entropy of the step-2 model on 10,000 SQuAD test pairs (W = 256, one
   repeat), passages/s.
5. ``cpu_vs_device``: the same 50-step fp32 run (dropout off, so both draw no random masks)
   on CPU and on the device from the same seed; the loss curves must agree within
   |a - b| <= 1e-3 * (1 + |a|) at every step (fp32 summation order differs; TF32 stays off).

``--dry-run``: everything on CPU with tiny shapes (minutes -> seconds), the "device" being CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = {"name": "tiny-check", "layers": 2, "hidden": 64, "heads": 2, "intermediate": 128}


def log(msg: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def step_tests(a: argparse.Namespace, dev: str) -> dict:
    env = {**os.environ, "DENSESCALE_TEST_DEVICE": dev, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           "tests/train/test_speed_device.py"]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=a.step_timeout)
    sys.stderr.write(r.stdout[-4000:] + r.stderr[-2000:])
    last = (r.stdout.strip().splitlines() or [""])[-1]
    return {"ok": r.returncode == 0, "returncode": r.returncode, "summary": last,
            "command": " ".join(cmd), "device": dev}


def _train_cfg(a: argparse.Namespace, dev: str, out: str, **kw) -> dict:
    if a.dry_run:
        base = dict(model=TINY, vocab_size=500, steps=5, batch_size=8, negatives=16,
                    query_max_len=16, passage_max_len=32)
    else:
        base = dict(model="bert-base", vocab_size=30522, steps=200, batch_size=128,
                    negatives=256, query_max_len=32, passage_max_len=180)
    base.update(data=a.data, init="scratch", lr=1e-4, eval_split=None, seed=521, out=out,
                device=dev, progress_every=10, tokenizer=a.tokenizer)
    base.update(kw)
    return base


def step_train(a: argparse.Namespace, dev: str, work: Path) -> dict:
    from densescale.train import TrainConfig, train

    cfg = TrainConfig(**_train_cfg(a, dev, str(work / "base"), bf16=not a.dry_run))
    t = time.perf_counter()
    s = train(cfg, progress=False)
    wall = time.perf_counter() - t
    # the same run with the packed (unpadded) forward, fewer steps: is it faster on this device?
    pk = train(TrainConfig(**{**cfg.model_dump(), "out": str(work / "packed"), "packed": True,
                              "steps": 3 if a.dry_run else 50}), progress=False)
    return {"ok": s.finished and pk.finished, "wall_s": wall, "rung": s.rung,
            "n_params": s.n_params, "steps": s.steps_done, "batch": cfg.batch_size,
            "negatives": cfg.negatives, "bf16": cfg.bf16, "pairs_per_s": s.pairs_per_s,
            "train_time_s": s.train_time_s, "model_flops_per_step": s.model_flops_per_step,
            "model_tflops_per_s": (s.model_flops_per_s or 0) / 1e12,
            "peak_tflops": (s.peak_flops or 0) / 1e12, "peak_source": s.peak_source,
            "mfu": s.mfu, "first_loss": s.history[0]["loss"] if s.history else None,
            "last_loss": s.history[-1]["loss"] if s.history else None,
            "packed_pairs_per_s": pk.pairs_per_s, "packed_mfu": pk.mfu,
            "packed_speedup": (pk.pairs_per_s or 0) / (s.pairs_per_s or float("inf")),
            "model_dir": str(work / "base" / "last")}


def step_torchrun(a: argparse.Namespace, dev: str, work: Path) -> dict:
    cfg = _train_cfg(a, dev, str(work / "ddp"), model=TINY if a.dry_run else "bert-mini",
                     steps=5 if a.dry_run else 50, batch_size=8 if a.dry_run else 128)
    cfg_path = work / "ddp.json"
    cfg_path.write_text(json.dumps(cfg))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1",
           "--master_port", str(29500 + os.getpid() % 1000), "-m", "densescale", "train",
           "--config", str(cfg_path), "--json", "--quiet"]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=a.step_timeout)
    wall = time.perf_counter() - t
    sys.stderr.write(r.stderr[-3000:])
    out: dict = {"ok": False, "returncode": r.returncode, "wall_s": wall,
                 "backend": "nccl" if dev.startswith("cuda") else "gloo", "command": " ".join(cmd)}
    try:
        s = json.loads(r.stdout)
        out.update(ok=r.returncode == 0 and bool(s.get("finished")),
                   pairs_per_s=s.get("pairs_per_s"), mfu=s.get("mfu"), steps=s.get("steps_done"))
    except json.JSONDecodeError:
        out["stdout_tail"] = r.stdout[-1000:]
    return out


def step_entropy(a: argparse.Namespace, dev: str, model_dir: str) -> dict:
    from densescale.evaluate import contrastive_entropy
    from densescale.models.encoder import BiEncoder

    enc = BiEncoder.load(model_dir, device=dev)
    pairs = 50 if a.dry_run else 10_000
    t = time.perf_counter()
    r = contrastive_entropy(enc, a.data, "test", negatives=16 if a.dry_run else 256, repeats=1,
                            max_pairs=pairs, seed=1, device=dev, calibrate="none")
    wall = time.perf_counter() - t
    return {"ok": math.isfinite(r.mean), "pairs": pairs, "ce": r.mean, "wall_s": wall,
            "passages_encoded": r.n_encoded_passages,
            "passages_per_s": r.n_encoded_passages / wall}


def step_cpu_vs_device(a: argparse.Namespace, dev: str, work: Path) -> dict:
    from densescale.train import TrainConfig, train

    curves = {}
    for key, where in (("cpu", "cpu"), ("device", dev)):
        cfg = TrainConfig(**_train_cfg(a, where, str(work / f"curve_{key}"), model=TINY,
                                       steps=50, batch_size=16, negatives=32, query_max_len=16,
                                       passage_max_len=64, lr=1e-3, bf16=False, dropout=False,
                                       progress_every=1, packed=True))
        s = train(cfg, progress=False)
        curves[key] = [h["loss"] for h in s.history if h["loss"] is not None]
    diffs = [abs(x - y) / (1 + abs(x)) for x, y in zip(curves["cpu"], curves["device"])]
    return {"ok": len(diffs) == 50 and max(diffs) <= 1e-3, "steps": len(diffs),
            "max_rel_diff": max(diffs) if diffs else None, "tolerance": 1e-3,
            "cpu_first_last": [curves["cpu"][0], curves["cpu"][-1]],
            "device_first_last": [curves["device"][0], curves["device"][-1]],
            "device": dev}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for gpu_check.json")
    ap.add_argument("--data", required=True, help="SQuAD (BEIR layout) folder")
    ap.add_argument("--tokenizer", default=None, help="tokenizer folder (default: WordPiece "
                    "trained on the corpus)")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes")
    ap.add_argument("--step-timeout", type=int, default=300)
    ap.add_argument("--only", default="tests,train,torchrun,entropy,cpu_vs_device")
    a = ap.parse_args()
    import torch

    dev = "cpu" if a.dry_run else "cuda"
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu_check_"))
    from densescale.utils import hardware_info

    res: dict = {"dry_run": a.dry_run, "device": dev, "hardware": hardware_info(),
                 "torch": torch.__version__, "cuda_available": torch.cuda.is_available(),
                 "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                 "data": a.data, "steps": {}}
    if dev == "cuda" and not torch.cuda.is_available():
        res["error"] = "no CUDA device (use --dry-run on CPU)"
    t_all = time.perf_counter()
    model_dir = None
    wanted = a.only.split(",")
    for name in wanted if "error" not in res else []:
        log(f"step {name} ...")
        t = time.perf_counter()
        try:
            if name == "tests":
                r = step_tests(a, dev)
            elif name == "train":
                r = step_train(a, dev, work)
                model_dir = r["model_dir"]
            elif name == "torchrun":
                r = step_torchrun(a, dev, work)
            elif name == "entropy":
                if model_dir is None:
                    raise RuntimeError("needs the train step's model")
                r = step_entropy(a, dev, model_dir)
            elif name == "cpu_vs_device":
                r = step_cpu_vs_device(a, dev, work)
            else:
                raise ValueError(f"unknown step {name!r}")
        except Exception as e:  # noqa: BLE001 - every step is recorded, the next one still runs
            r = {"ok": False, "error": f"{type(e).__name__}: {e}",
                 "traceback": traceback.format_exc()[-3000:]}
        r["step_s"] = time.perf_counter() - t
        res["steps"][name] = r
        log(f"step {name}: {'ok' if r.get('ok') else 'FAILED'} in {r['step_s']:.1f}s "
            + json.dumps({k: v for k, v in r.items() if k not in ("traceback",)})[:600])
        (out / "gpu_check.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    res["total_s"] = time.perf_counter() - t_all
    res["ok"] = "error" not in res and all(r.get("ok") for r in res["steps"].values()) and \
        len(res["steps"]) == len(wanted)
    (out / "gpu_check.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    log(f"done in {res['total_s']:.1f}s: {'ALL OK' if res['ok'] else 'SOME STEPS FAILED'}")
    sys.exit(0 if res["ok"] else 1)


if __name__ == "__main__":
    main()
