"""`densescale demo`: the miniature scaling study (or its cost at the paper's scale)."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def _print_summary(s: dict) -> None:
    typer.echo(f"\ndemo finished in {s['wall_time_s']:.0f} s; report: {s['html']}")
    for law, doc in s["laws"].items():
        fits = {law: doc["fit"]} if "fit" in doc else doc.get("laws", {})
        for name, fit in fits.items():
            keys = [k for k in ("A", "B", "alpha", "beta", "delta") if k in fit]
            ci = fit.get("ci") or {}
            consts = ", ".join(
                f"{k}={fit[k]:.3g}" + (f" [{ci[k][0]:.3g}, {ci[k][1]:.3g}]" if k in ci else "")
                for k in keys)
            typer.echo(f"  {law:11s} {name if name != law else '':6s} R²={fit['r2']:.3f}  {consts}")
        hd = doc.get("holdout")
        if hd:
            typer.echo(f"  {'':11s} held-out: {hd['n_heldout']} points, mean relative error "
                       f"{hd['mean_rel_error']:.1%} (max {hd['max_rel_error']:.1%})")
    for law, err in s["errors"].items():
        typer.echo(f"  {law} law not fitted: {err}")
    targets = s.get("targets") or []
    if targets:
        typer.echo(f"targets ({sum(t['met'] for t in targets)} of {len(targets)} met):")
        promised = set(s.get("promised") or [])
        for t in targets:
            mark = "x" if t["met"] else " "
            other = "the miniature" if s.get("full") else "--full"
            note = ("" if t["name"] in promised or t["met"]
                    else f"  (missed, as measured; met by {other})")
            typer.echo(f"  [{mark}] {t['name']}: {t['value']} (goal: {t['goal']}){note}")
    for row in s.get("budget", []):
        typer.echo(f"  budget ${row['budget $']:,.0f}: N*={row['N*']:.3g}, D*={row['D*']:.3g}, "
                   f"L*={row['L*']:.3f}")


def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", help="Output folder (reused on rerun)."),
    scale: str = typer.Option("mini", "--scale", help="'mini' runs the CPU miniature; 'paper' "
                              "prints what the same study costs at the paper's scale."),
    full: bool = typer.Option(False, "--full", help="Train every point 4x longer (44 min on "
                              "2 cores): meets the nDCG and L(D) targets the miniature misses."),
    workers: int = typer.Option(2, "--workers", min=1,
                                help="Training processes side by side (one thread each)."),
    bootstrap: int = typer.Option(200, help="Bootstrap resamples for the fits."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """A complete miniature of the paper on SQuAD v1.1: train, evaluate, fit, budget, report."""
    if scale == "paper":
        from densescale.demo.paper_scale import paper_scale_plan

        plan = paper_scale_plan()
        if as_json:
            typer.echo(json.dumps(plan, indent=2))
            return
        typer.echo("The demo's design at the paper's scale (MS MARCO, BERT miniatures, 10,000 "
                   "steps, batch 128, 256 negatives, passages of 180 tokens):")
        for r in plan["runs"]:
            typer.echo(f"  {r['rung']:12s} N={r['n']:>11,d}  D={r['d']:>7,d}  "
                       f"{r['annotation']:5s} {r['gpu_hours']:7.1f} A100-hours")
        typer.echo(f"total: {plan['gpu_hours']:.0f} A100-hours at 25% utilisation, about "
                   f"${plan['dollars']:,.0f} at ${plan['assumptions']['gpu_price_per_hour']}/h")
        typer.echo("On a GPU cluster:")
        for c in plan["commands"]:
            typer.echo(f"  {c}")
        return
    if scale != "mini":
        raise typer.BadParameter("--scale must be 'mini' or 'paper'")
    from densescale.demo import run_demo

    if full and out == Path("demo_out"):
        out = Path("demo_out_full")
    summary = run_demo(out, workers=workers, bootstrap=bootstrap, progress=not as_json,
                       full=full)
    if as_json:
        from densescale.utils import dump_json

        dump_json(summary)
    else:
        _print_summary(summary)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
