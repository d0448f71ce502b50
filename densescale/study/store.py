"""Results database: one row per (study settings hash, point), SQLAlchemy Core.

SQLite by default (``sqlite:///<output_dir>/results.db``, embedded, WAL journal so ``status`` can
read while a study runs); any SQLAlchemy URL (e.g. ``postgresql+psycopg://...``) through the same
code. Only the study driver writes; each write is one transaction (an upsert keyed by the unique
pair ``(spec_hash, point_key)``), so a driver killed at any moment leaves either the old or the new
row, never half of one and never two.

The schema is versioned in the ``meta`` table; opening a database written by a newer densescale
raises a clear error instead of guessing, and an older one is migrated in place (columns added by
``ALTER TABLE ... ADD COLUMN``; existing rows keep their values, new columns start NULL; schema 4
renames the metric columns to their SQL-safe keys, ``"ndcg@10"`` -> ``ndcg_at_10``, by
``ALTER TABLE ... RENAME COLUMN``, values kept).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from densescale.errors import DenseScaleError
from densescale.evaluate.metrics import LEGACY_COLUMNS, RANKING_KEYS, canonical_column
from densescale.utils import prepare_output_dir

SCHEMA_VERSION = 4
STATUSES = ("pending", "running", "done", "failed")
RANKING = RANKING_KEYS  # evaluate.metrics keys: ndcg_at_10, mrr_at_10, ... (SQL-safe)
METRICS = ("contrastive_entropy", "contrastive_entropy_stderr", *RANKING)
BM25 = tuple(f"bm25_{m}" for m in RANKING)  # BM25 on the same queries and pool (reference)
# flat copies of the settings people filter on (the full settings are in the JSON columns)
SETTING_COLUMNS = {"steps": sa.Integer, "batch_size": sa.Integer, "lr": sa.Float,
                   "negatives": sa.Integer, "eval_negatives": sa.Integer,
                   "eval_repeats": sa.Integer, "eval_seed": sa.Integer}

metadata = sa.MetaData()

meta_table = sa.Table(
    "meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# columns added in schema version 2 (validity, calibration, BM25 reference); see _migrate
V2_COLUMNS = [
    sa.Column("dataset", sa.String(255)),
    sa.Column("learned", sa.Boolean),  # NULL: not recorded (rows of older versions)
    sa.Column("invalid_reason", sa.Text),  # why not learned
    sa.Column("step0_contrastive_entropy", sa.Float),  # the initial model, selection split
    sa.Column("chance", sa.Float),  # ln(W+1) of the final evaluation
    sa.Column("selection_split", sa.String(64)),  # where the checkpoint was chosen
    sa.Column("selection_metric", sa.String(16)),  # raw | calibrated
    sa.Column("contrastive_entropy_calibrated", sa.Float),
    sa.Column("calibration_scale", sa.Float),
    sa.Column("calibration_source", sa.String(64)),  # declared | fitted:selection
    *[sa.Column(m, sa.Float) for m in BM25],
]
# schema version 3: the claim of a running point (see Store.claim)
V3_COLUMNS = [
    sa.Column("owner", sa.String(512)),  # "host|output_dir|pid ..." of the driver running it
    sa.Column("heartbeat", sa.Float),  # epoch seconds of the owner's last sign of life
]
MIGRATIONS = {2: V2_COLUMNS, 3: V3_COLUMNS, 4: []}  # version -> columns it added
# schema version 4: the metric columns of versions 1-3 renamed to their SQL-safe keys
V4_RENAMES = {old: canonical_column(old) for old in
              (*LEGACY_COLUMNS, *(f"bm25_{o}" for o in LEGACY_COLUMNS))}

runs_table = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("spec_hash", sa.String(64), nullable=False),
    sa.Column("point_key", sa.String(255), nullable=False),
    sa.Column("study", sa.String(255)),
    sa.Column("rung", sa.String(255), nullable=False),
    sa.Column("n", sa.BigInteger),  # non-embedding parameters
    sa.Column("n_total", sa.BigInteger),
    sa.Column("d", sa.BigInteger, nullable=False),  # training pairs
    sa.Column("annotation", sa.String(255), nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("heldout", sa.Boolean, nullable=False, default=False),
    sa.Column("status", sa.String(16), nullable=False, default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    *[sa.Column(name, typ) for name, typ in SETTING_COLUMNS.items()],
    sa.Column("train_config", sa.Text),  # JSON: every TrainConfig field as run
    sa.Column("eval_config", sa.Text),  # JSON: final evaluation settings
    *[sa.Column(m, sa.Float) for m in METRICS],
    sa.Column("best_step", sa.Integer),
    *V2_COLUMNS,
    *V3_COLUMNS,
    sa.Column("train_best_contrastive_entropy", sa.Float),  # training's own eval (eval_pairs)
    sa.Column("train_final_contrastive_entropy", sa.Float),
    sa.Column("wall_time_s", sa.Float),  # training + final evaluation
    sa.Column("train_wall_time_s", sa.Float),
    sa.Column("eval_wall_time_s", sa.Float),
    sa.Column("pairs_per_s", sa.Float),
    sa.Column("hardware", sa.Text),  # JSON
    sa.Column("densescale_version", sa.String(64)),
    sa.Column("git_commit", sa.String(64)),
    sa.Column("artefact_dir", sa.Text),
    sa.Column("error", sa.Text),  # traceback of the last failure
    sa.Column("created_at", sa.String(32)),
    sa.Column("started_at", sa.String(32)),
    sa.Column("finished_at", sa.String(32)),
    sa.Column("updated_at", sa.String(32)),
    sa.UniqueConstraint("spec_hash", "point_key", name="uq_runs_spec_point"),
)
COLUMNS = [c.name for c in runs_table.columns]


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def url_of(path_or_url: str | Path) -> str:
    """A SQLAlchemy URL from a URL or a path to a SQLite file."""
    s = str(path_or_url)
    return s if "://" in s else f"sqlite:///{Path(s).resolve()}"


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class Store:
    """The results database of one or more studies.

    Example:
        >>> store = Store("sqlite:///runs/tiny/results.db")
        >>> store.upsert("ab12", "bert-tiny__d1000__human__s1", status="done", n=512128, ...)
        >>> store.rows(spec_hash="ab12")
    """

    def __init__(self, url: str | Path, create: bool = True):
        self.url = url_of(url)
        try:
            u = sa.engine.make_url(self.url)
        except sa.exc.ArgumentError:
            raise DenseScaleError(f"{url}: not a database URL (dialect+driver://user@host/"
                                  "database, e.g. postgresql+psycopg://...) nor a path") from None
        if u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:"):
            path = Path(u.database)
            if not create and not path.exists():
                raise DenseScaleError(f"results database {path} does not exist (run the study "
                                      "first)")
            if create:
                prepare_output_dir(path.parent)
        if u.drivername == "postgresql" and _importable("psycopg") and \
                not _importable("psycopg2"):  # SQLAlchemy's default driver is psycopg2
            u = u.set(drivername="postgresql+psycopg")
            self.url = u.render_as_string(hide_password=False)
        self.where = str(u.database) if u.get_backend_name() == "sqlite" else \
            u.render_as_string(hide_password=True)
        try:
            self.engine = sa.create_engine(self.url, future=True)
        except sa.exc.NoSuchModuleError:
            raise DenseScaleError(f"{self.where}: unknown database kind {u.drivername!r}") \
                from None
        except ImportError as e:
            extra = (" (pip install 'densescale[postgres]' installs psycopg, for "
                     "postgresql+psycopg:// URLs)") if u.get_backend_name() == "postgresql" else ""
            raise DenseScaleError(f"{self.where}: database driver not installed: {e}{extra}") \
                from None
        if u.get_backend_name() == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        with self.errors():
            self._check_schema(create)

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Turn a database fault (corrupt file, no permission, server gone) into one error line
        naming the database."""
        try:
            yield
        except sa.exc.IntegrityError:  # a race on the unique key: the caller retries
            raise
        except sa.exc.DBAPIError as e:
            msg = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
            raise DenseScaleError(f"{self.where}: results database unreadable or unwritable: "
                                  f"{msg}") from None

    def _check_schema(self, create: bool) -> None:
        insp = sa.inspect(self.engine)
        if insp.has_table("meta"):
            version = self._read_version()
            if version > SCHEMA_VERSION:
                raise DenseScaleError(
                    f"results database {self.where} has schema version {version}, newer than this "
                    f"densescale understands ({SCHEMA_VERSION}); upgrade densescale to read it")
            if version < SCHEMA_VERSION:
                self._migrate(version)
        elif insp.has_table("runs"):
            if sa.inspect(self.engine).has_table("meta"):  # another process committed both
                return self._check_schema(create=False)  # tables between the two looks
            raise DenseScaleError(f"results database {self.where} has a runs table but no schema "
                                  "version (not written by densescale?)")
        elif create:
            try:
                with self.engine.begin() as c:
                    metadata.create_all(c)
                    c.execute(meta_table.insert(), [
                        {"key": "schema_version", "value": str(SCHEMA_VERSION)},
                        {"key": "created_at", "value": now()},
                    ])
            except sa.exc.DBAPIError:  # another process created it at the same moment
                if not sa.inspect(self.engine).has_table("meta"):
                    raise
                self._check_schema(create=False)
        else:
            raise DenseScaleError(f"results database {self.where} holds no densescale results")

    def _read_version(self, wait_s: float = 60.0) -> int:
        """The stored schema version. A meta table without its version row is a database that
        another process is creating right now (SQLite and MySQL commit CREATE TABLE before the
        row is inserted): wait for the row rather than calling the database foreign."""
        deadline = time.monotonic() + wait_s
        while True:
            with self.engine.connect() as c:
                v = c.execute(sa.select(meta_table.c.value).where(
                    meta_table.c.key == "schema_version")).scalar()
            if v is not None:
                return int(v)
            if time.monotonic() >= deadline:
                return 0
            time.sleep(0.2)

    def _migrate(self, version: int) -> None:
        """Bring an older database to the current schema in one transaction."""
        if version < 1:
            raise DenseScaleError(
                f"results database {self.where} has schema version {version}; this densescale "
                f"writes {SCHEMA_VERSION} and has no migration for it")
        quote = self.engine.dialect.identifier_preparer.quote
        try:
            with self.engine.begin() as c:
                have = {col["name"] for col in sa.inspect(c).get_columns("runs")}
                for old, new in (V4_RENAMES.items() if version < 4 else ()):
                    if old in have and new not in have:  # before the adds (V2 names are new)
                        c.execute(sa.text(f"ALTER TABLE runs RENAME COLUMN {quote(old)} TO "
                                          f"{quote(new)}"))
                        have = (have - {old}) | {new}
                for col in (c for v in range(version + 1, SCHEMA_VERSION + 1)
                            for c in MIGRATIONS[v]):
                    if col.name not in have:
                        typ = col.type.compile(dialect=self.engine.dialect)
                        c.execute(sa.text(f"ALTER TABLE runs ADD COLUMN {quote(col.name)} {typ}"))
                c.execute(meta_table.update().where(meta_table.c.key == "schema_version")
                          .values(value=str(SCHEMA_VERSION)))
        except sa.exc.DBAPIError:  # another process migrated it at the same moment
            if self.schema_version() != SCHEMA_VERSION:
                raise

    def close(self) -> None:
        self.engine.dispose()

    # ----------------------------------------------------------------------- writes
    def upsert(self, spec_hash: str, point_key: str, **values: Any) -> None:
        """Insert or update the row of (spec_hash, point_key) in one transaction.

        Dict/list values are stored as JSON text; unknown keys are an error; the metric names
        of schemas 1-3 (``ndcg@10``, ``bm25_ndcg@10``) are accepted for their new columns.
        """
        values = {canonical_column(k): v for k, v in values.items()}
        unknown = set(values) - set(COLUMNS)
        if unknown:
            raise KeyError(f"unknown result columns: {sorted(unknown)}")
        vals = {k: (json.dumps(v, sort_keys=True, default=str) if isinstance(v, (dict, list))
                    else v) for k, v in values.items()}
        vals["updated_at"] = now()
        key = (runs_table.c.spec_hash == spec_hash) & (runs_table.c.point_key == point_key)
        try:
            self._upsert(key, spec_hash, point_key, vals)
        except sa.exc.IntegrityError:  # another process inserted it meanwhile: now an update
            self._upsert(key, spec_hash, point_key, vals)

    def _upsert(self, key: Any, spec_hash: str, point_key: str, vals: dict[str, Any]) -> None:
        with self.errors(), self.engine.begin() as c:
            exists = c.execute(sa.select(runs_table.c.id).where(key)).scalar()
            if exists is None:
                c.execute(runs_table.insert().values(
                    spec_hash=spec_hash, point_key=point_key, created_at=vals["updated_at"],
                    **{"status": "pending", "attempts": 0, "heldout": False, **vals}))
            else:
                c.execute(runs_table.update().where(runs_table.c.id == exists).values(**vals))

    def sync_points(self, spec_hash: str, study: str, points: list[dict],
                    dataset: str | None = None) -> None:
        """Make sure every point has a row (pending when new); refresh held-out labels.

        Safe against another driver of the same database doing the same at the same moment:
        the unique (spec_hash, point_key) refuses its duplicate, and the sync is read again.
        """
        for attempt in range(3):
            try:
                return self._sync_points(spec_hash, study, points, dataset)
            except sa.exc.IntegrityError:
                if attempt == 2:
                    raise

    def _sync_points(self, spec_hash: str, study: str, points: list[dict],
                     dataset: str | None) -> None:
        existing = {r["point_key"]: r for r in self.rows(spec_hash=spec_hash)}
        with self.errors(), self.engine.begin() as c:
            t = now()
            for p in points:
                row = existing.get(p["point_key"])
                if row is None:
                    c.execute(runs_table.insert().values(
                        spec_hash=spec_hash, point_key=p["point_key"], study=study,
                        dataset=dataset, rung=p["rung"], n=p.get("n"), d=p["d"],
                        annotation=p["annotation"], seed=p["seed"],
                        heldout=bool(p["heldout"]), status="pending",
                        attempts=0, created_at=t, updated_at=t))
                elif bool(row["heldout"]) != bool(p["heldout"]):
                    c.execute(runs_table.update().where(runs_table.c.id == row["id"]).values(
                        heldout=bool(p["heldout"]), updated_at=t))

    def claim(self, spec_hash: str, point_key: str, owner: str, lease_s: float,
              takeover_prefix: str | None = None) -> bool:
        """Atomically mark a point ``running`` for ``owner``; False when another live driver
        holds it (or it is done).

        Claimable: pending and failed rows, "done" rows without a contrastive entropy (a
        diverged run of an older version), and running rows whose owner's heartbeat is older
        than ``lease_s`` seconds, has none, or whose owner starts with ``takeover_prefix`` (a
        dead driver of the caller's own output folder, which the caller's file lock proves
        dead). One conditional UPDATE: the database lets exactly one of several racing
        drivers win, on SQLite and on PostgreSQL alike.
        """
        t, c_ = time.time(), runs_table.c
        live = c_.heartbeat >= t - lease_s
        if takeover_prefix is not None:
            live = live & ~c_.owner.startswith(takeover_prefix, autoescape=True)
        claimable = (c_.status.in_(("pending", "failed"))
                     | ((c_.status == "done") & c_.contrastive_entropy.is_(None))
                     | ((c_.status == "running") & (c_.owner.is_(None) | (c_.owner == owner)
                                                    | c_.heartbeat.is_(None) | ~live)))
        q = runs_table.update().where((c_.spec_hash == spec_hash) & (c_.point_key == point_key)
                                      & claimable).values(
            status="running", owner=owner, heartbeat=t, attempts=c_.attempts + 1,
            started_at=now(), finished_at=None, updated_at=now())
        with self.errors(), self.engine.begin() as c:
            return c.execute(q).rowcount == 1

    def heartbeat(self, owner: str) -> None:
        """Refresh the lease of every point ``owner`` is running."""
        q = runs_table.update().where((runs_table.c.owner == owner)
                                      & (runs_table.c.status == "running")).values(
            heartbeat=time.time())
        with self.errors(), self.engine.begin() as c:
            c.execute(q)

    # ------------------------------------------------------------------------ reads
    def rows(self, spec_hash: str | None = None) -> list[dict]:
        q = sa.select(runs_table).order_by(runs_table.c.id)
        if spec_hash is not None:
            q = q.where(runs_table.c.spec_hash == spec_hash)
        with self.errors(), self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(q)]

    def row(self, spec_hash: str, point_key: str) -> dict | None:
        q = sa.select(runs_table).where((runs_table.c.spec_hash == spec_hash)
                                        & (runs_table.c.point_key == point_key))
        with self.errors(), self.engine.connect() as c:
            r = c.execute(q).first()
        return dict(r._mapping) if r is not None else None

    def schema_version(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(sa.select(meta_table.c.value).where(
                meta_table.c.key == "schema_version")).scalar())
