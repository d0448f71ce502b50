"""Selecting rows of a results frame, the fit CLI and the figures."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from _laws_synth import (
    FIG1_CE,
    JOINT_V2,
    NAMED_N,
    joint_grid,
    joint_law,
    noisy,
)
from typer.testing import CliRunner

from densescale.errors import DataError
from densescale.laws import JointLaw, ModelSizeLaw, plots
from densescale.laws.compare import compare_annotations
from densescale.laws.frame import read_holdout_file, select_rows
from densescale.study.results import read_results


def _joint_frame(with_extra=True):
    X = joint_grid()
    y, sigma = noisy(joint_law(X[:, 0], X[:, 1], **JOINT_V2), 0.002, seed=0)
    df = pd.DataFrame({"n": X[:, 0].astype(int), "d": X[:, 1].astype(int), "annotation": "human",
                       "contrastive_entropy": y, "contrastive_entropy_stderr": sigma})
    if with_extra:   # a second annotation type, only at BERT-Base
        ict = df[df.n == df.n.max()].copy()
        ict["annotation"] = "ict"
        ict["contrastive_entropy"] *= 1.5
        df = pd.concat([df, ict], ignore_index=True)
    return df


def _assert_png_svg(paths):
    assert {p.suffix for p in paths} == {".png", ".svg"}
    for p in paths:
        data = p.read_bytes()
        assert len(data) > 1000
        if p.suffix == ".png":
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert b"<svg" in data[:2000]


def test_fig1_authors_values_fit_and_plot(tmp_path):
    """The authors' recorded Fig. 1 values (plot.py) at the five named BERT sizes."""
    law = ModelSizeLaw(bootstrap=200, seed=0).fit(NAMED_N, FIG1_CE)
    assert law.r2_ > 0.999 and law.converged_
    assert law.A_ == pytest.approx(4.07e4, rel=0.02)
    assert law.alpha_ == pytest.approx(0.504, abs=0.005)
    assert law.delta_ == pytest.approx(0.0361, abs=0.001)
    for k in ("A", "alpha", "delta"):
        lo, hi = law.ci_[k]
        assert lo <= getattr(law, f"{k}_") <= hi
    names = ["BERT-Tiny", "BERT-Mini", "BERT-Small", "BERT-Medium", "BERT-Base"]
    paths = plots.plot_model_law(law, NAMED_N, FIG1_CE, tmp_path, names=names)
    paths += plots.plot_model_law_loglog(law, NAMED_N, FIG1_CE, tmp_path, names=names)
    assert [p.name for p in paths] == ["fig1_model_size.png", "fig1_model_size.svg",
                                       "fig3_model_size_loglog.png", "fig3_model_size_loglog.svg"]
    _assert_png_svg(paths)


@pytest.mark.filterwarnings("ignore::densescale.laws.base.BoundaryWarning")
def test_other_plots(tmp_path):
    df = _joint_frame()
    X = df[df.annotation == "human"][["n", "d"]].to_numpy(float)
    y = df[df.annotation == "human"]["contrastive_entropy"].to_numpy()
    held = X[:, 0] == X[:, 0].max()
    law = JointLaw().fit(X[~held], y[~held])
    _assert_png_svg(plots.plot_joint(law, X, y, tmp_path, heldout=held))
    rows, _ = select_rows(read_results(_write(tmp_path, df)), "annotations")
    cmp = compare_annotations(rows)
    _assert_png_svg(plots.plot_annotations(cmp, rows, tmp_path))
    dl = cmp.laws["human"]
    sub = rows[rows.annotation == "human"]
    _assert_png_svg(plots.plot_data_law(dl, sub["d"], sub["y"], tmp_path))


def _write(tmp_path, df, name="results.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return str(path)


def test_read_csv_and_select(tmp_path):
    df = _joint_frame()
    frame = read_results(_write(tmp_path, df))
    rows, note = select_rows(frame, "model")          # human, at the largest D
    assert len(rows) == 5 and (rows.d == 5e5).all() and "sweep at D" in note
    rows, _ = select_rows(frame, "data", "ict")       # at the largest N
    assert len(rows) == 6 and (rows.annotation == "ict").all()
    rows, _ = select_rows(frame, "joint")
    assert len(rows) == 30
    with pytest.raises(DataError, match="no rows with annotation 'llm'"):
        select_rows(frame, "joint", "llm")

    bad = df.copy()
    bad.loc[4, "n"] = 0
    with pytest.raises(DataError, match=r":6: column 'n' must hold positive"):
        select_rows(read_results(_write(tmp_path, bad)), "joint")


def test_single_axis_laws_use_their_sweep_not_an_outlying_point():
    import pandas as pd

    from densescale.laws.frame import sweep_value

    # a data sweep on a mid-size rung, a model sweep at D=1000, one held-out point beyond both
    rows = [{"n": 1e5, "d": d} for d in (100, 200, 400, 800)]
    rows += [{"n": n, "d": 1000} for n in (1e4, 3e4, 1e5, 3e5)]
    rows += [{"n": 1e6, "d": 2000}]
    frame = pd.DataFrame(rows)
    assert sweep_value(frame, "data") == 1e5
    assert sweep_value(frame, "model") == 1000


def test_holdout_file(tmp_path):
    frame, _ = select_rows(read_results(_write(tmp_path, _joint_frame())), "joint")
    hold = tmp_path / "hold.csv"
    hold.write_text("n,d\n86235648,500000\n25875712,100000\n")
    assert read_holdout_file(hold, frame).sum() == 2
    hold.write_text("d\n500000\n")
    assert read_holdout_file(hold, frame).sum() == 5
    hold.write_text("n,d\n1,2\n")
    with pytest.raises(DataError, match="hold.csv:2: held-out point matches no"):
        read_holdout_file(hold, frame)


def _cli(args):
    from densescale.cli import app

    res = CliRunner().invoke(app, args)
    return res


def test_cli_joint_json_holdout_out_plot(tmp_path):
    csv = _write(tmp_path, _joint_frame())
    out = tmp_path / "fits" / "joint.json"
    res = _cli(["fit", "--results", csv, "--law", "joint", "--holdout", "largest",
                "--bootstrap", "100", "--json", "--out", str(out.parent), "--plot",
                str(tmp_path / "f")])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["out"] == str(out)
    assert doc["law"] == "joint" and doc["holdout"]["n_heldout"] == 10
    assert doc["holdout"]["mean_rel_error"] < 0.1
    assert set(doc["fit"]["ci"]) == {"A", "B", "alpha", "beta", "delta"}
    saved = json.loads(out.read_text())
    for k in ("A", "B", "alpha", "beta", "delta", "n_min", "n_max", "d_min", "d_max"):
        assert isinstance(saved[k], float)
    assert saved["n_max"] < 86235648                     # fitted range excludes held-out N
    back = JointLaw.from_dict(saved)
    assert back.predict([[1e7, 1e4]])[0] > saved["delta"]
    assert {p.split("/")[-1] for p in doc["plots"]} == {
        "fig6_joint.png", "fig6_joint.svg", "residuals_joint.png", "residuals_joint.svg"}


def test_cli_model_human_and_annotations(tmp_path):
    csv = _write(tmp_path, _joint_frame())
    res = _cli(["fit", "--results", csv, "--law", "model", "--bootstrap", "50"])
    assert res.exit_code == 0, res.output
    assert "alpha" in res.stdout and "95% CI" in res.stdout and "R²" in res.stdout
    res = _cli(["fit", "--results", csv, "--law", "annotations", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert set(doc["laws"]) == {"human", "ict"}
    res = _cli(["fit", "--results", csv, "--law", "data", "--annotation", "ict",
                "--method", "huber", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["fit"]["law"] == "data"


def test_cli_errors_exit_1(tmp_path, capsys):
    from densescale.cli import main

    csv = _write(tmp_path, _joint_frame().head(3))
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--results", csv, "--law", "joint"])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "at least 6" in err


def test_cli_heldout_column_and_file(tmp_path):
    df = _joint_frame(with_extra=False)
    df["heldout"] = df["d"] == df["d"].max()
    csv = _write(tmp_path, df)
    res = _cli(["fit", "--results", csv, "--law", "joint", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["holdout"]["n_heldout"] == 5
    hold = tmp_path / "hold.csv"
    hold.write_text("n,d\n86235648,500000\n86235648,100000\n")
    res = _cli(["fit", "--results", csv, "--law", "joint", "--holdout", str(hold), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["holdout"]["n_heldout"] == 2 and doc["fit"]["n_points"] == 28


def test_cli_plot_folder_under_a_file_exits_1(tmp_path, capsys):
    from densescale.cli import main

    csv = _write(tmp_path, _joint_frame())
    (tmp_path / "f").write_text("")
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--results", csv, "--plot", str(tmp_path / "f" / "figs")])
    assert exc.value.code == 1 and "is a file" in capsys.readouterr().err


def test_cli_out_under_a_file_exits_1_naming_it(tmp_path, capsys):
    from densescale.cli import main

    csv = _write(tmp_path, _joint_frame())
    (tmp_path / "f").write_text("keep")
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--results", csv, "--out", str(tmp_path / "f" / "fits")])
    err = capsys.readouterr().err
    assert exc.value.code == 1 and err.startswith("error:") and str(tmp_path / "f") in err
    assert (tmp_path / "f").read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) \
        == ["f", "results.csv"]


def test_cli_out_is_a_folder_not_a_file_name(tmp_path, capsys):
    from densescale.cli import main

    csv = _write(tmp_path, _joint_frame())
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--results", csv, "--out", str(tmp_path / "fit.json")])
    assert exc.value.code == 1 and "--out takes a folder" in capsys.readouterr().err
    assert not (tmp_path / "fit.json").exists()
    res = _cli(["fit", "--results", csv, "--law", "data", "--annotation", "human", "--json",
                "--out", str(tmp_path / "fits")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "fits" / "data-human.json").read_text())["law"] == "data"


def test_cli_messages_show_values_not_numpy_reprs(tmp_path, capsys):
    """A NaN metric reads 'got nan', a numeric annotation '10', never np.float64 / np.str_."""
    from densescale.cli import main

    df = _joint_frame(with_extra=False)
    df.loc[3, "contrastive_entropy"] = float("nan")
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--results", _write(tmp_path, df)])
    err = capsys.readouterr().err
    assert exc.value.code == 1 and "must be a positive finite number, got nan at" in err, err
    assert "np." not in err
    df = _joint_frame(with_extra=False).assign(annotation=10)
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--results", _write(tmp_path, df, "num.csv"), "--law", "data",
              "--annotation", "7"])
    err = capsys.readouterr().err
    assert exc.value.code == 1 and "no rows with annotation '7' (types: ['10'])" in err, err
    assert "np." not in err
    res = _cli(["fit", "--results", str(tmp_path / "num.csv"), "--law", "data", "--annotation",
                "10", "--json"])
    assert res.exit_code == 0, res.output   # a numeric type is named like a string one
