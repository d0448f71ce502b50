"""Expand a study's designs into points (rung, D, annotation, seed).

The paper's three designs (Fang et al., Scaling Laws for Dense Retrieval, SIGIR 2024,
Sections 4.1, 4.2 and 6):

- ``model_sweep``: every rung at the largest D ("infinite data" proxy), per annotation source;
- ``data_sweep``: the largest rung at every D, per annotation source (section 5 runs this once per
  annotation type);
- ``grid``: every rung x every D x every annotation (the joint law's fit).

Plus explicit ``points``. Several designs combine as a union without duplicates, in order.
"Largest rung" means the most non-embedding parameters (densescale.models; ladder order on ties).
Every point is run once per seed of the study, or of its own ``seeds:`` when it lists them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from densescale.errors import ConfigError
from densescale.study.spec import PointsDesign, PointSpec, StudySpec


@dataclass(frozen=True)
class Point:
    """One run of a study."""

    rung: str
    d: int
    annotation: str
    seed: int
    heldout: bool = False
    n: int | None = None  # non-embedding parameters, when the ladder knows them

    @property
    def key(self) -> str:
        """Stable, filesystem-safe identifier, e.g. ``bert-tiny__d1000__human__s521``."""
        safe = lambda s: re.sub(r"[^A-Za-z0-9._-]+", "_", s)  # noqa: E731
        return f"{safe(self.rung)}__d{self.d}__{safe(self.annotation)}__s{self.seed}"

    def as_dict(self) -> dict:
        return {**asdict(self), "point_key": self.key}


def rung_names(spec: StudySpec) -> list[str]:
    """The rungs a study trains: ladder.rungs, or every rung of ladder.file."""
    if spec.ladder.rungs:
        return list(spec.ladder.rungs)
    from densescale.study.rungs import ladder_file_rungs

    return ladder_file_rungs(spec.resolve(spec.ladder.file))


def rung_params(spec: StudySpec, rungs: list[str]) -> dict[str, int | None]:
    """Non-embedding parameter count per rung (densescale.models' count, the paper's N)."""
    from densescale.study.rungs import non_embedding_params

    ladder_file = spec.resolve(spec.ladder.file) if spec.ladder.file else None
    proj = spec.train.proj_dim or 0  # 0 or None: no projection
    return {r: non_embedding_params(r, ladder_file, proj) for r in rungs}


def expand(spec: StudySpec, sizes: dict[str, int | None] | None = None) -> list[Point]:
    """All points of a study, each design expanded, union de-duplicated, times seeds.

    Args:
        spec: a validated study.
        sizes: rung -> non-embedding parameters; looked up in densescale.models when None.

    Returns:
        Points in design order, seeds innermost, with ``heldout`` marked.
    """
    rungs = rung_names(spec)
    if sizes is None:
        sizes = rung_params(spec, rungs)
    if all(sizes.get(r) is not None for r in rungs):  # smallest to largest, stable
        rungs = sorted(rungs, key=lambda r: sizes[r])
    r_max, d_max = rungs[-1], max(spec.train_sizes)
    ds = sorted(spec.train_sizes)
    anns = [a.name for a in spec.annotations]

    triples: list[tuple[str, int, str]] = []
    point_seeds: dict[tuple[str, int, str], list[int]] = {}  # explicit points' own seeds
    for item in spec.design:
        if item == "model_sweep":
            triples += [(r, d_max, a) for a in anns for r in rungs]
        elif item == "data_sweep":
            triples += [(r_max, d, a) for a in anns for d in ds]
        elif item == "grid":
            triples += [(r, d, a) for a in anns for r in rungs for d in ds]
        elif isinstance(item, PointsDesign):
            for j, p in enumerate(item.points):
                if p.rung not in rungs:
                    raise ConfigError(f"design: points[{j}].rung: {p.rung!r} is not a rung of "
                                      f"the ladder ({', '.join(rungs)})")
                t = (p.rung, p.d, p.annotation or anns[0])
                triples.append(t)
                if p.seeds is not None:
                    point_seeds[t] = list(dict.fromkeys(point_seeds.get(t, []) + p.seeds))
    unique = list(dict.fromkeys(triples))

    held = _heldout(spec, unique, r_max, d_max, anns[0])
    return [Point(r, d, a, s, (r, d, a) in held, sizes.get(r))
            for (r, d, a) in unique for s in point_seeds.get((r, d, a), spec.seeds)]


def _heldout(spec: StudySpec, triples: list[tuple[str, int, str]], r_max: str, d_max: int,
             default_ann: str) -> set[tuple[str, int, str]]:
    held: set[tuple[str, int, str]] = set()
    for i, rule in enumerate(spec.heldout):
        if rule == "largest_n":
            held |= {t for t in triples if t[0] == r_max}
        elif rule == "largest_d":
            held |= {t for t in triples if t[1] == d_max}
        elif isinstance(rule, PointSpec):
            match = {t for t in triples if t[0] == rule.rung and t[1] == rule.d
                     and (rule.annotation is None or t[2] == rule.annotation)}
            if not match:
                raise ConfigError(f"heldout[{i}]: ({rule.rung}, {rule.d}, "
                                  f"{rule.annotation or 'any annotation'}) is not a point of the "
                                  "design")
            held |= match
    return held
