"""``densescale budget`` through typer's CliRunner: JSON round trip, plots, errors."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from densescale.budget import CostModel, PlanningLaw, optimise_budget
from densescale.budget.cli import parse_budgets, register
from densescale.errors import ConfigError, DenseScaleError

app = typer.Typer()


@app.callback()
def _root() -> None:
    """Keep `budget` a sub-command."""


register(app)
runner = CliRunner()


def _json(args):
    res = runner.invoke(app, ["budget", *args, "--json"])
    assert res.exit_code == 0, (res.output, res.exception)
    return json.loads(res.stdout)


def test_show_constants_json():
    doc = _json(["--show-constants"])
    cm = doc["cost_model"]
    assert f"{cm['z_train']:.3g}" == "3.22e-08" and f"{cm['z_infer']:.3g}" == "0.43"
    assert cm["assumptions"]["gpu_price"] == 3.93 and "z_train" in cm["formulas"]
    doc = _json(["--show-constants", "--gpu-price", "7.86", "--queries-per-year", "1e12"])
    assert doc["cost_model"]["z_train"] == pytest.approx(2 * cm["z_train"])
    assert doc["cost_model"]["z_query"] > 0


def test_show_constants_human():
    res = runner.invoke(app, ["budget", "--show-constants"])
    assert res.exit_code == 0
    assert "3.225e-08" in res.stdout and "0.4299" in res.stdout and "gpu_price" in res.stdout


def test_budget_json_round_trip_matches_library():
    doc = _json(["--preset", "v2", "--budget", "10k,20k", "--budget", "5e4", "--no-inference",
                 "--target", "0.1"])
    assert [b["budget"] for b in doc["budgets"]] == [1e4, 2e4, 5e4]
    expected = optimise_budget(PlanningLaw.preset("v2"), CostModel.from_assumptions(), 2e4,
                               inference=False)
    got = doc["budgets"][1]
    assert got["n"] == pytest.approx(expected.n) and got["loss"] == pytest.approx(expected.loss)
    assert doc["inference"] is False and doc["law"]["A"] == 3.6e4
    assert doc["targets"][0]["loss"] == pytest.approx(0.1)
    assert any("EXTRAPOLATION" in w for w in doc["warnings"])


def test_law_file_flags_and_plot(tmp_path):
    fit = tmp_path / "fit.json"
    fit.write_text(json.dumps({"params": {"A": 8.2e5, "B": 5.2e3, "alpha": 0.57, "beta": 1.39,
                                          "delta": 0.03}, "n_min": 1e6, "n_max": 1e8}))
    from_file = _json(["--law", str(fit), "--budget", "1M", "--plot", str(tmp_path / "p")])
    from_flags = _json(["--A", "8.2e5", "--B", "5.2e3", "--alpha", "0.57", "--beta", "1.39",
                        "--delta", "0.03", "--budget", "1000000"])
    assert from_file["budgets"][0]["n"] == pytest.approx(from_flags["budgets"][0]["n"])
    assert from_file["law"]["n_max"] == 1e8 and from_flags["law"]["n_max"] is None
    assert sorted(p.rsplit("/", 1)[1] for p in from_file["plots"]) == [
        "budget_curves_inference.png", "budget_curves_inference.svg"]
    assert (tmp_path / "p" / "budget_curves_inference.png").stat().st_size > 1000
    # a flag overrides one constant of the preset
    over = _json(["--preset", "v2", "--delta", "0.0", "--budget", "1M"])
    assert over["law"]["delta"] == 0.0 and over["law"]["A"] == 3.6e4


def test_human_table():
    res = runner.invoke(app, ["budget", "--preset", "v1", "--budget", "150k", "--no-inference"])
    assert res.exit_code == 0
    assert "$150,000" in res.stdout and "N*" in res.stdout


def test_errors():
    res = runner.invoke(app, ["budget", "--preset", "v2", "--budget", "20000"])
    assert isinstance(res.exception, DenseScaleError)
    assert "smallest model" in str(res.exception) and "--no-inference" in str(res.exception)
    res = runner.invoke(app, ["budget", "--budget", "20000"])
    assert isinstance(res.exception, ConfigError) and "--preset" in str(res.exception)
    res = runner.invoke(app, ["budget", "--preset", "v2", "--target", "0.02"])
    assert isinstance(res.exception, DenseScaleError) and "unreachable" in str(res.exception)
    res = runner.invoke(app, ["budget", "--preset", "v3", "--budget", "1M"])
    assert isinstance(res.exception, ConfigError)
    with pytest.raises(ConfigError):
        parse_budgets(["12 dollars"])
    assert parse_budgets(["$1M, 20k", "3e3"]) == [1e6, 2e4, 3e3]


def test_cost_flags_are_generated_from_cost_assumptions():
    import dataclasses

    from densescale.budget import CostAssumptions

    res = runner.invoke(app, ["budget", "--help"], terminal_width=200)
    assert res.exit_code == 0
    for f in dataclasses.fields(CostAssumptions):
        assert "--" + f.name.replace("_", "-") in res.stdout
        assert f.metadata["help"].split()[0] in res.stdout
    doc = _json(["--show-constants", "--steps", "20000", "--doc-tokens", "256"])
    assert doc["cost_model"]["assumptions"]["steps"] == 20000
    assert doc["cost_model"]["assumptions"]["doc_tokens"] == 256


@pytest.mark.parametrize("flags, message", [
    (["--A", "1e300", "--B", "5e3", "--alpha", "50", "--beta", "1.3", "--delta", "0.03"],
     "overflows"),
    (["--preset", "v2", "--delta", "-0.01"], "delta = -0.01 < 0 is outside"),
])
def test_laws_outside_their_physical_range_exit_1(flags, message, capsys):
    from densescale.cli import main

    for goal in (["--budget", "1M"], ["--target", "0.2"]):
        with pytest.raises(SystemExit) as exc:
            main(["budget", *flags, *goal, "--json"])
        assert exc.value.code == 1
        err = capsys.readouterr()
        assert err.out == "" and err.err.startswith("error:") and message in err.err


def test_plot_folder_under_a_file_is_refused_before_any_work(tmp_path, capsys):
    from densescale.cli import main

    (tmp_path / "f").write_text("")
    with pytest.raises(SystemExit) as exc:
        main(["budget", "--preset", "v2", "--budget", "1M", "--plot", str(tmp_path / "f" / "p")])
    assert exc.value.code == 1 and "is a file" in capsys.readouterr().err


def test_plot_takes_a_folder_not_a_file_name(tmp_path):
    from typer.testing import CliRunner

    from densescale.cli import app
    from densescale.errors import ConfigError

    res = CliRunner().invoke(app, ["budget", "--preset", "v2", "--budget", "1M", "--plot",
                                   str(tmp_path / "curves.png")])
    assert isinstance(res.exception, ConfigError) and "--plot takes a folder" in str(
        res.exception)
    assert not (tmp_path / "curves.png").exists()
