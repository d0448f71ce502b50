"""Spec validation, design expansion and the shipped configs (no training)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from densescale.errors import ConfigError
from densescale.study import expand, load_spec, parse_spec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
BASE = dict(name="t", dataset="squad_v11", ladder={"rungs": ["bert-tiny", "bert-mini",
                                                             "bert-small"]},
            train_sizes=[100, 1000, 10000], output_dir="out")


def _err(tmp_path: Path, **changes) -> str:
    data = {**BASE, **changes}
    data = {k: v for k, v in data.items() if v is not ...}
    p = tmp_path / "spec.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as e:
        load_spec(p)
    return str(e.value)


@pytest.mark.parametrize("changes, expected", [
    (dict(train_sizes=[10, 20, -3]), "spec.yaml: train_sizes[2]: must be a positive integer"),
    (dict(train_sizes=[10, "x"]), "spec.yaml: train_sizes[1]: must be a positive integer"),
    (dict(train_sizes=[]), "spec.yaml: train_sizes: must list at least one training size"),
    (dict(dataset=...), "spec.yaml: dataset: required key is missing"),
    (dict(colour="red"), "spec.yaml: colour: unknown key"),
    (dict(ladder={"rungs": ["bert-tiny"], "init": "warm"}),
     "spec.yaml: ladder.init: input should be 'scratch' or 'pretrained'"),
    (dict(eval={"negatives": 0}), "spec.yaml: eval.negatives: must be a positive integer"),
    (dict(eval={"negativs": 3}), "spec.yaml: eval.negativs: unknown key"),
    (dict(train={"seed": 3}), "spec.yaml: train.seed: set by the study per point"),
    (dict(train={"stepz": 3}), "spec.yaml: train.stepz: not a training setting"),
    (dict(train={"steps": 0}), "spec.yaml: train.steps: must be > 0"),
    (dict(train={"negative_mode": "x"}), "spec.yaml: train.negative_mode: input should be "
                                         "'random', 'inbatch' or 'hard'"),
    (dict(design="diagonal"), "spec.yaml: design[0]: input should be 'model_sweep', "
                              "'data_sweep' or 'grid'"),
    (dict(design=[{"points": [{"rung": "bert-tiny", "d": 0}]}]),
     "spec.yaml: design[0].points[0].d: must be a positive integer"),
    (dict(design=[{"points": [{"rung": "bert-huge", "d": 5}]}]),
     "spec.yaml: design[0].points[0].rung: 'bert-huge' is not in ladder.rungs"),
    (dict(annotations=[{"name": "ict"}]), "spec.yaml: annotations[0]: annotation 'ict' needs a "
                                          "path"),
    (dict(heldout=["largest"]), "spec.yaml: heldout[0]: input should be 'largest_n' or "
                                "'largest_d'"),
    (dict(train={"eval_split": "test"}), "spec.yaml: train.eval_split: set by the study"),
    (dict(seeds=[1, -2]), "spec.yaml: seeds[1]: must be >= 0"),
    (dict(selection="test"), "spec.yaml: selection: input should be 'selection' or 'reported'"),
    (dict(eval={"bm25": "maybe"}), "spec.yaml: eval.bm25: must be true or false"),
])
def test_validation_errors_name_key_and_problem(tmp_path, changes, expected):
    assert _err(tmp_path, **changes).startswith(expected)


def test_yaml_syntax_error_names_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: t\ntrain_sizes: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: invalid YAML"):
        load_spec(p)


def test_designs_expand_union_dedup_and_heldout():
    sizes = {"bert-tiny": 1, "bert-mini": 2, "bert-small": 3}
    spec = parse_spec({**BASE, "design": ["model_sweep", "data_sweep"], "seeds": [1, 2],
                       "heldout": ["largest_d"]})
    pts = expand(spec, sizes)
    triples = [(p.rung, p.d) for p in pts if p.seed == 1]
    assert triples == [("bert-tiny", 10000), ("bert-mini", 10000), ("bert-small", 10000),
                       ("bert-small", 100), ("bert-small", 1000)]  # union, no duplicate
    assert len(pts) == 10 and len({p.key for p in pts}) == 10
    assert {(p.rung, p.d) for p in pts if p.heldout} == {(r, 10000) for r in sizes}

    grid = expand(parse_spec({**BASE, "heldout": ["largest_n", {"rung": "bert-tiny", "d": 100}]}),
                  sizes)
    assert len(grid) == 9
    assert {(p.rung, p.d) for p in grid if p.heldout} == {
        ("bert-small", 100), ("bert-small", 1000), ("bert-small", 10000), ("bert-tiny", 100)}


def test_largest_rung_is_by_parameter_count_not_list_order():
    spec = parse_spec({**BASE, "ladder": {"rungs": ["bert-base", "bert-tiny"]},
                       "design": "data_sweep"})
    pts = expand(spec)  # counts from densescale.models
    assert {p.rung for p in pts} == {"bert-base"} and pts[0].n == 86_235_648


def test_explicit_points_default_annotation_and_bad_heldout(tmp_path):
    spec = parse_spec({**BASE, "annotations": ["human", {"name": "ict", "path": "x"}],
                       "design": {"points": [{"rung": "bert-mini", "d": 7},
                                             {"rung": "bert-mini", "d": 7, "annotation": "ict"}]}})
    assert [(p.d, p.annotation) for p in expand(spec)] == [(7, "human"), (7, "ict")]
    spec = parse_spec({**BASE, "heldout": [{"rung": "bert-tiny", "d": 5}]})
    with pytest.raises(ConfigError, match=r"heldout\[0\]: .* is not a point of the design"):
        expand(spec)


def test_spec_hash_ignores_where_results_go_and_point_lists():
    h = parse_spec(BASE).spec_hash
    assert parse_spec({**BASE, "output_dir": "elsewhere", "database": "sqlite:///x.db",
                       "name": "renamed", "train_sizes": [5], "seeds": [3, 4],
                       "design": "model_sweep"}).spec_hash == h
    assert parse_spec({**BASE, "train": {"steps": 5}}).spec_hash != h
    assert parse_spec({**BASE, "eval": {"negatives": 8}}).spec_hash != h
    assert parse_spec({**BASE, "eval_split": "dev"}).spec_hash != h
    assert parse_spec({**BASE, "selection": "reported"}).spec_hash != h
    # settings enter by value: a default spelled out, or a legacy key, hashes alike
    assert parse_spec({**BASE, "train": {"steps": 10_000}, "eval": {"negatives": 256}}
                      ).spec_hash == h
    legacy = parse_spec({**BASE, "train": {"eval_pairs": 32}}).spec_hash
    assert legacy == parse_spec({**BASE, "train": {"selection": {
        "repeats": 1, "max_pairs": 32, "ranking": False}}}).spec_hash != h


@pytest.mark.parametrize("name, n_points, n_rungs", [
    ("tiny.yaml", 4, 2),
    ("msmarco_model_sweep.yaml", 24, 24),
    ("msmarco_data_sweep.yaml", 9, 1),
    ("msmarco_annotation_sweep.yaml", 24, 1),
    ("msmarco_joint_grid.yaml", 25, 5),
    ("t2ranking_ernie_sweep.yaml", 10, 5),
])
def test_shipped_configs_parse_and_expand(name, n_points, n_rungs):
    spec = load_spec(CONFIGS / name)
    pts = expand(spec)
    assert len(pts) == n_points and len({p.rung for p in pts}) == n_rungs
    assert all(p.n and p.n > 0 for p in pts)
    if name == "msmarco_model_sweep.yaml":
        assert spec.ladder.init == "pretrained" and {p.d for p in pts} == {532761}
        assert [p for p in pts if p.heldout][0].rung == "bert-base"
    if name == "msmarco_annotation_sweep.yaml":
        assert {p.annotation for p in pts} == {"human", "ict", "doc2query", "llm"}


def test_train_and_eval_blocks_are_typed_configs_and_tasks_round_trip():
    """`train:` is a TrainConfig and `eval:` an EvalConfig from load time on; a task carries the
    point's complete TrainConfig and serialises to JSON (for Ray) and back."""
    import json

    from densescale.evaluate.config import EvalConfig
    from densescale.study.runner import Task, make_task
    from densescale.train.config import TrainConfig

    spec = parse_spec({**BASE, "train": {"steps": 7, "lr": 1e-3}, "eval": {"negatives": 8,
                                                                          "bm25": True}})
    assert isinstance(spec.train, TrainConfig) and spec.train.steps == 7
    assert isinstance(spec.eval, EvalConfig) and spec.eval.negatives == 8 and spec.eval.bm25
    assert spec.eval.batch_size == EvalConfig().batch_size  # defaults come from EvalConfig
    point = expand(spec, {"bert-tiny": 1, "bert-mini": 2, "bert-small": 3})[0]
    task = make_task(spec, point)
    assert task.train.steps == 7 and task.train.train_size == point.d
    assert task.train.seed == point.seed and task.train.out.endswith(point.key)
    assert task.train.eval_split == "selection" and task.split == "test"  # never the reported
    assert task.bm25 and "bm25" not in task.eval.to_dict()
    assert Task.from_dict(json.loads(json.dumps(task.to_dict()))) == task
    reported = make_task(parse_spec({**BASE, "selection": "reported"}), point)
    assert reported.train.eval_split == "test" and reported.selection == "reported"


def test_n_counts_the_projection_the_spec_trains():
    """N includes the H -> proj_dim projection of train.proj_dim (none with 0)."""
    with_proj = expand(parse_spec({**BASE, "design": "model_sweep"}))
    without = expand(parse_spec({**BASE, "design": "model_sweep", "train": {"proj_dim": 0}}))
    assert [p.n - q.n for p, q in zip(with_proj, without, strict=True)] == [
        128 * 768 + 768, 256 * 768 + 768, 512 * 768 + 768]
