"""Explicit points may carry their own seeds."""

from __future__ import annotations


def test_point_seeds_override_the_study_seeds(tmp_path):
    from densescale.study import expand, parse_spec

    ladder = tmp_path / "ladder.yaml"
    ladder.write_text("rungs:\n- {name: a, layers: 1, hidden: 8, heads: 1, intermediate: 32}\n"
                      "- {name: b, layers: 1, hidden: 16, heads: 1, intermediate: 64}\n")
    spec = parse_spec({
        "name": "s", "dataset": "x", "ladder": {"file": str(ladder), "init": "scratch"},
        "train_sizes": [10, 20], "seeds": [1], "output_dir": str(tmp_path / "o"),
        "design": ["model_sweep", {"points": [{"rung": "a", "d": 20, "seeds": [1, 2]}]}],
    }, base_dir=tmp_path)
    got = sorted((p.rung, p.d, p.seed) for p in expand(spec))
    assert got == [("a", 20, 1), ("a", 20, 2), ("b", 20, 1)]
