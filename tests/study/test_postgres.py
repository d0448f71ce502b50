"""The study lock lives in the database: a real PostgreSQL server shared by several drivers.

The fixture starts a throw-away server (``initdb`` + ``pg_ctl``, Unix socket only, in a temporary
folder) and stops it afterwards. PostgreSQL refuses to run as root, so under root the server runs
as the ``postgres`` system user that the Debian package creates. Missing binaries are a test
failure naming the package to install (``.ci/run`` installs it), never a skip.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from densescale.study import Store, results_frame
from densescale.study.store import SCHEMA_VERSION, V4_RENAMES, meta_table, runs_table

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
INSTALL = ("install the Debian package `postgresql` (apt-get install -y postgresql; .ci/run does "
           "this) and the driver (pip install 'densescale[postgres]')")


def _bin_dir() -> Path:
    """The folder holding initdb, pg_ctl and postgres (PATH first, then Debian's layout)."""
    found = shutil.which("initdb")
    dirs = [Path(found).resolve().parent] if found else []
    version = lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)] or [0]  # noqa: E731
    dirs += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for d in dirs:
        if all((d / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return d
    pytest.fail(f"PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or "
                f"under /usr/lib/postgresql/*/bin: {INSTALL}")


def _server_user() -> dict:
    """subprocess arguments that run the server unprivileged (it refuses root)."""
    if os.geteuid() != 0:
        return {}
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail(f"running as root and there is no `postgres` user to run the server as: "
                    f"{INSTALL}")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


@pytest.fixture(scope="module")
def postgres():
    """URL of a fresh database ``study`` on a temporary PostgreSQL server (stopped at the end)."""
    try:
        import psycopg
    except ImportError:
        pytest.fail(f"the psycopg driver is not installed: {INSTALL}")
    bindir, as_user = _bin_dir(), _server_user()
    base = Path(tempfile.mkdtemp(prefix="densescale-pg-"))  # /tmp: reachable by `postgres`
    if as_user:
        os.chown(base, as_user["user"], as_user["group"])
    data, log = base / "data", base / "server.log"

    def pg(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(bindir / args[0]), *args[1:]], capture_output=True,
                              text=True, cwd=base, timeout=120, **as_user)

    def stop() -> None:
        pg("pg_ctl", "-D", str(data), "stop", "-m", "fast", "-w", "-t", "30")
        pid_file = data / "postmaster.pid"
        if pid_file.exists():  # pg_ctl could not stop it: end the postmaster we started
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
            except (ValueError, ProcessLookupError):
                pass
        shutil.rmtree(base, ignore_errors=True)

    try:
        r = pg("initdb", "-D", str(data), "-A", "trust", "-U", "densescale", "-E", "UTF8",
               "--locale=C", "--no-sync")
        assert r.returncode == 0, f"initdb failed:\n{r.stdout}\n{r.stderr}"
        r = pg("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
               f"-k {base} -c listen_addresses='' -F", "start")
        assert r.returncode == 0, (f"pg_ctl start failed:\n{r.stdout}\n{r.stderr}\n"
                                   f"{log.read_text() if log.exists() else ''}")
        with psycopg.connect(host=str(base), user="densescale", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE study")
        yield f"postgresql+psycopg://densescale@/study?host={base}"
    finally:
        stop()


def write_tiny(folder: Path, **changes) -> Path:
    """configs/tiny.yaml (as tests/study/test_run builds it), shortened: 8 steps, no ranking."""
    data = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
    data["ladder"]["file"] = str(CONFIGS / data["ladder"]["file"])
    data["train"].update(steps=8, eval_every=4, checkpoint_every=4)  # 4 quick points
    data["eval"] = {"negatives": 16, "repeats": 1, "seed": 1, "max_pairs": 32, "ranking": False}
    data.update(output_dir=str(folder / "out"), **changes)
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "tiny.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


POINTS = [{"point_key": f"p{i}", "rung": "r", "n": 10, "d": 100, "annotation": "human",
           "seed": 1, "heldout": False} for i in range(12)]


def test_concurrent_schema_creation_and_claims_have_one_winner(postgres):
    """Eight drivers open the empty database at once (one creates the schema, the rest wait
    for it), sync the same points, then race for every point: exactly one claim wins each."""
    n, barrier = 8, threading.Barrier(8, timeout=60)
    stores: list[Store | None] = [None] * n
    wins: dict[str, list[int]] = {p["point_key"]: [] for p in POINTS}
    errors: list[BaseException] = []

    def driver(i: int) -> None:
        try:
            barrier.wait()
            stores[i] = s = Store(postgres)
            s.sync_points("race", "race", POINTS)
            barrier.wait()
            for p in POINTS:
                if s.claim("race", p["point_key"], f"host{i}|/out{i}|pid {i}", 600.0,
                           f"host{i}|/out{i}|"):
                    wins[p["point_key"]].append(i)
        except BaseException as e:  # reported below; the others stop waiting
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=driver, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(len(w) == 1 for w in wins.values()), wins
    rows = Store(postgres, create=False).rows(spec_hash="race")
    assert len(rows) == len(POINTS)  # no duplicate row from the concurrent syncs
    assert {r["status"] for r in rows} == {"running"} and {r["attempts"] for r in rows} == {1}
    assert {r["point_key"]: r["owner"] for r in rows} == {
        k: f"host{w[0]}|/out{w[0]}|pid {w[0]}" for k, w in wins.items()}
    for s in stores:
        s.close()


def test_stale_claims_are_taken_over_and_live_ones_kept(postgres):
    """A claim whose heartbeat is older than the lease (its machine died) is taken over; a
    claim with a fresh heartbeat is not; a heartbeat keeps a claim alive. (A plain
    ``postgresql://`` URL: psycopg is used when psycopg2, SQLAlchemy's default, is absent.)"""
    s = Store(postgres.replace("postgresql+psycopg://", "postgresql://"))
    assert s.engine.dialect.driver == "psycopg"
    s.sync_points("lease", "lease", POINTS[:2])
    assert s.claim("lease", "p0", "dead|/a|pid 1", 600.0, "dead|/a|")
    assert s.claim("lease", "p1", "alive|/b|pid 2", 600.0, "alive|/b|")
    with s.engine.begin() as c:  # p0's machine stopped beating an hour ago
        c.execute(runs_table.update().where(runs_table.c.spec_hash == "lease")
                  .values(heartbeat=time.time() - 3600))
    s.heartbeat("alive|/b|pid 2")  # p1's owner is alive
    assert s.claim("lease", "p0", "new|/c|pid 3", 600.0, "new|/c|")
    assert not s.claim("lease", "p1", "new|/c|pid 3", 600.0, "new|/c|")
    rows = {r["point_key"]: r for r in s.rows(spec_hash="lease")}
    assert rows["p0"]["owner"] == "new|/c|pid 3" and rows["p0"]["attempts"] == 2
    assert rows["p1"]["owner"] == "alive|/b|pid 2" and rows["p1"]["attempts"] == 1
    s.close()


def test_schema_3_database_is_migrated_once_by_concurrent_drivers(postgres):
    """A PostgreSQL database of schema 3 (metric columns named ``"ndcg@10"``, which need
    quoting) opened by four drivers at once: renamed in place to schema 4, values kept."""
    back = {new: old for old, new in V4_RENAMES.items()}
    url = postgres.replace("/study?", "/old3?")
    admin = sa.create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text("CREATE DATABASE old3"))
    admin.dispose()
    old = sa.MetaData()
    meta_table.to_metadata(old)
    cols = []
    for col in runs_table.columns:
        cc = col._copy()
        cc.name = cc.key = back.get(col.name, col.name)
        cols.append(cc)
    sa.Table("runs", old, *cols, sa.UniqueConstraint("spec_hash", "point_key"))
    eng = sa.create_engine(url)
    with eng.begin() as c:
        old.create_all(c)
        c.execute(sa.text("INSERT INTO meta VALUES ('schema_version', '3')"))
        c.execute(sa.text('INSERT INTO runs (spec_hash, point_key, rung, d, annotation, seed, '
                          'heldout, status, attempts, "ndcg@10", "bm25_recall@1000", map) '
                          "VALUES ('h','p','r',10,'human',1,false,'done',1,0.31,0.9,0.2)"))
    eng.dispose()
    barrier, errors, stores = threading.Barrier(4, timeout=60), [], []

    def open_it() -> None:
        try:
            barrier.wait()
            stores.append(Store(url))
        except BaseException as e:  # reported below; the others stop waiting
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    s = Store(url, create=False)
    assert s.schema_version() == SCHEMA_VERSION
    names = {c["name"] for c in sa.inspect(s.engine).get_columns("runs")}
    assert not any("@" in n for n in names) and {"owner", "heartbeat"} <= names
    row = s.row("h", "p")
    assert (row["ndcg_at_10"], row["bm25_recall_at_1000"], row["map"]) == (0.31, 0.9, 0.2)
    s.upsert("h", "p", **{"mrr@10": 0.4})  # the old names still write the new columns
    assert s.row("h", "p")["mrr_at_10"] == 0.4
    for st in (*stores, s):
        st.close()


def test_two_drivers_on_one_postgres_database_train_each_point_once(postgres, env, tmp_path):
    """Two `study run` processes, different output folders (two machines' worth of drivers),
    one PostgreSQL database: every point is trained exactly once, in exactly one folder."""
    specs = [write_tiny(tmp_path / name, database=postgres) for name in ("a", "b")]
    procs = [subprocess.Popen([sys.executable, "-m", "densescale", "study", "run", str(p),
                               "--json", "--quiet"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for p in specs]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()[-3000:]
    rows = Store(postgres, create=False).rows()
    rows = [r for r in rows if r["spec_hash"] not in ("race", "lease")]
    assert len(rows) == 4 and {r["status"] for r in rows} == {"done"}
    assert [r["attempts"] for r in rows] == [1, 1, 1, 1]
    trained = [d.name for name in ("a", "b")
               for d in (tmp_path / name / "out" / "runs").glob("*/*")
               if (d / "result.json").exists()]
    assert sorted(trained) == sorted(r["point_key"] for r in rows)  # each once, in one folder
    assert {r["owner"] for r in rows} == {None} and {r["heartbeat"] for r in rows} == {None}
    logs = "".join(err.decode() for _, err in outs)
    assert logs.count(": started (attempt 1)") == 4, logs[-3000:]
    df = results_frame(specs[0])  # the study reads back through the same URL
    assert len(df) == 4 and df.contrastive_entropy.notna().all()
