"""The benchmark harness (DESIGN.md section 10): one command, fresh databases, measured phases,
a correctness check, one results table.

    python bench/harness.py --n 100000 [--repeat 3] [--sqlite-n 100000] [--no-sqlite]

For each repetition, on the local PostgreSQL (127.0.0.1:5432, user postgres):
  1. fresh source, destination and application databases; N customers and their purchases
     loaded with the shared generator (../shared/bench/gen_customers.py, deterministic by seed);
  2. migrations and the benchmark configuration (bench/bench_config.py);
  3. the full first sync: `manage.py run_schedule --all`, from start until every export is
     complete (records per second, peak RSS of the process);
  4. the floor: a plain program that reads the same data with one SQL query (customers joined
     with their aggregated purchases) and writes N rows into a table with COPY;
  5. the destination is checked against the floor: exactly N rows, equal values, equal groups —
     a wrong result fails loudly (exit status 1);
  6. PostgreSQL: VACUUM (ANALYZE) of the application database, timed on its own (see settle());
  7. the generator's 1% update, then an incremental `run_schedule customers`: its time, and that
     it read only the changed rows; checked against the floor again.
Then the same with the application database on SQLite (N = --sqlite-n). Medians over the
repetitions are printed as one table and appended to bench/RESULTS.md with the date and machine.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = Path(os.environ.get("BENCH_GENERATOR", ROOT.parent / "shared" / "bench" / "gen_customers.py"))
PG = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
PREFIX = os.environ.get("BENCH_PREFIX", "bench")
SEED = 42

DST_DDL = """
CREATE TABLE customers_out (id bigint PRIMARY KEY, email text, first_name text, last_name text,
  ltv double precision, country text, created_at timestamptz, purchase_count integer,
  total_spend double precision, last_purchase_at timestamptz);
CREATE TABLE customer_groups (customer_id bigint, group_name text, PRIMARY KEY (customer_id, group_name));
CREATE TABLE floor_out (id bigint PRIMARY KEY, email text, first_name text, last_name text,
  ltv double precision, country text, created_at timestamptz, purchase_count integer,
  total_spend double precision, last_purchase_at timestamptz, high_value boolean, recent_buyers boolean);
"""
FLOOR_SQL = """
SELECT c.id, c.email, c.first_name, c.last_name, c.ltv::float8, c.country, c.created_at,
       COALESCE(p.n, 0), COALESCE(p.total, 0)::float8, p.last, c.ltv > 500, COALESCE(p.last >= %s, false)
FROM customers c
LEFT JOIN (SELECT customer_id, count(*) AS n, sum(amount) AS total, max(purchased_at) AS last
           FROM purchases GROUP BY customer_id) p ON p.customer_id = c.id
"""
COLUMNS = "email, first_name, last_name, ltv, country, created_at, purchase_count, total_spend, last_purchase_at"


class BenchError(Exception):
    """The benchmark's result is wrong."""


@dataclass
class Measure:
    seconds: float
    rss_mb: float = 0.0
    rows_read: int = 0


@dataclass
class Round:
    full: Measure
    floor: Measure
    incremental: Measure
    changed: int
    vacuum: float = 0.0  # seconds of VACUUM (ANALYZE) between the full and the incremental sync


@dataclass
class Series:
    app_db: str
    n: int
    rounds: list[Round] = field(default_factory=list)


def url(db: str) -> str:
    return f"{PG}/{db}"


def recreate(db: str) -> None:
    with psycopg.connect(url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')


def run(cmd: list[str], *, env: dict | None = None, input: str | None = None) -> None:
    """Run a setup step; its output is shown only when it fails."""
    proc = subprocess.run(cmd, cwd=ROOT, env=env, text=True, input=input, capture_output=True)
    if proc.returncode:
        raise BenchError(f"{' '.join(cmd[:4])} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")


def run_measured(cmd: list[str], *, env: dict) -> Measure:
    """Like run(), but reaps the child itself so its own peak RSS is known."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise BenchError(f"{' '.join(cmd[1:4])} failed (exit {code}):\n{out}")
    return Measure(elapsed, usage.ru_maxrss / 1024)


def app_env(app_url: str) -> dict:
    env = dict(os.environ)
    env["DATABASE_URL"] = app_url
    env["DJANGO_SETTINGS_MODULE"] = "grouparoo_site.settings"
    env.setdefault("LOG_LEVEL", "WARNING")
    # As in production: DEBUG keeps every SQL statement (with its parameters) in memory.
    env["DEBUG"] = "false"
    return env


def floor(src: str, dst: str, cutoff: dt.datetime) -> Measure:
    """The least work that moves this data: one query, streamed, COPY into a table."""
    started = time.perf_counter()
    with psycopg.connect(url(src)) as s, psycopg.connect(url(dst)) as d:
        d.execute("TRUNCATE floor_out")
        with s.cursor(name="floor") as cur:
            cur.itersize = 10000
            cur.execute(FLOOR_SQL, [cutoff])
            with d.cursor().copy(f"COPY floor_out (id, {COLUMNS}, high_value, recent_buyers) FROM STDIN") as copy:
                for row in cur:
                    copy.write_row(row)
        d.commit()
    return Measure(time.perf_counter() - started)


def check(dst: str, n: int) -> None:
    """The destination equals the floor: N rows, every value, every group membership."""
    with psycopg.connect(url(dst)) as d:
        count = d.execute("SELECT count(*) FROM customers_out").fetchone()[0]
        if count != n:
            raise BenchError(f"destination holds {count} rows, expected {n}")
        cols = ", ".join(f"o.{c}" for c in COLUMNS.split(", "))
        fcols = ", ".join(f"f.{c}" for c in COLUMNS.split(", "))
        wrong = d.execute(
            f"SELECT count(*) FROM floor_out f FULL JOIN customers_out o ON o.id = f.id "
            f"WHERE o.id IS NULL OR f.id IS NULL OR ({cols}) IS DISTINCT FROM ({fcols})"
        ).fetchone()[0]
        if wrong:
            sample = d.execute(
                f"SELECT f.id, ({fcols})::text, ({cols})::text FROM floor_out f FULL JOIN customers_out o ON o.id = f.id "
                f"WHERE o.id IS NULL OR f.id IS NULL OR ({cols}) IS DISTINCT FROM ({fcols}) LIMIT 3"
            ).fetchall()
            raise BenchError(f"{wrong} destination rows differ from the floor, e.g. {sample}")
        expected = (
            "SELECT id, 'high_value' FROM floor_out WHERE high_value "
            "UNION ALL SELECT id, 'recent_buyers' FROM floor_out WHERE recent_buyers"
        )
        actual = "SELECT customer_id, group_name FROM customer_groups"
        missing = d.execute(f"SELECT count(*) FROM (({expected}) EXCEPT ({actual})) x").fetchone()[0]
        extra = d.execute(f"SELECT count(*) FROM (({actual}) EXCEPT ({expected})) x").fetchone()[0]
        if missing or extra:
            raise BenchError(f"group memberships differ from the floor: {missing} missing, {extra} extra")


def settle(app: str) -> float:
    """VACUUM (ANALYZE) the application database after the full sync, timed on its own.

    A first sync leaves millions of new rows (and the superseded versions of every export) for
    PostgreSQL's autovacuum, which starts within seconds and runs for tens of seconds at N =
    1,000,000. An incremental run started meanwhile shares the two cores with it (session 3:
    6 to 21 s for the same run). The incremental is measured on a settled database, as a
    schedule's next run would find it; the vacuum's own time is reported on its own line."""
    started = time.perf_counter()
    with psycopg.connect(url(app), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    return time.perf_counter() - started


def load_settle(src: str) -> None:
    """Bring the freshly loaded source to the state of a live database before anything is timed.

    Right after a bulk load, the first reader of each row sets its hint bits (writing the whole
    table again), and autovacuum starts on the new tables within seconds: whichever of the full
    sync and the floor came first paid for both, on the cores it was measured on. A company's
    source database is not seconds old; VACUUM (ANALYZE) and a CHECKPOINT here, untimed, leave
    the sync and the floor the same settled source to read."""
    with psycopg.connect(url(src), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def rows_read(app_url: str, source: str) -> int:
    if app_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(app_url.split("sqlite:///", 1)[1]) as conn:
            row = conn.execute(
                "SELECT r.rows_read FROM core_run r JOIN core_source s ON s.id = r.source_id "
                "WHERE s.name = ? ORDER BY r.id DESC LIMIT 1", (source,)
            ).fetchone()
    else:
        with psycopg.connect(app_url.replace("postgres://", "postgresql://")) as conn:
            row = conn.execute(
                "SELECT r.rows_read FROM core_run r JOIN core_source s ON s.id = r.source_id "
                "WHERE s.name = %s ORDER BY r.id DESC LIMIT 1", (source,)
            ).fetchone()
    return row[0] if row else 0


def one_round(n: int, app_db: str, anchor: str, quiet: bool) -> Round:
    src, dst, app = f"{PREFIX}_src", f"{PREFIX}_dst", f"{PREFIX}_app"
    py = sys.executable
    recreate(src)
    recreate(dst)
    run([py, str(GENERATOR), "--n", str(n), "--seed", str(SEED), "--anchor", anchor, "--load", "--dsn", url(src)])
    with psycopg.connect(url(dst), autocommit=True) as d:
        d.execute(DST_DDL)
    load_settle(src)
    tmp = None
    if app_db == "postgres":
        recreate(app)
        app_url = f"{PG.replace('postgresql://', 'postgres://')}/{app}"
    else:
        tmp = tempfile.mkdtemp(prefix="bench_app_")
        app_url = f"sqlite:///{tmp}/app.sqlite3"
    env = app_env(app_url)
    try:
        run([py, "manage.py", "migrate", "--noinput"], env=env)
        run([py, "bench/bench_config.py", src, dst, anchor], env=env)
        full = run_measured([py, "manage.py", "run_schedule", "--all"], env=env)
        full.rows_read = rows_read(app_url, "customers")
        cutoff = dt.datetime.fromisoformat(anchor) - dt.timedelta(days=30)
        fl = floor(src, dst, cutoff)
        check(dst, n)
        vacuum = settle(app) if app_db == "postgres" else 0.0
        update = subprocess.run(
            [py, str(GENERATOR), "--n", str(n), "--seed", str(SEED), "--update-sql", "--fraction", "0.01"],
            capture_output=True, text=True, check=True,
        ).stdout
        run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url(src)], input=update)
        changed = max(1, round(n * 0.01))
        inc = run_measured([py, "manage.py", "run_schedule", "customers"], env=env)
        inc.rows_read = rows_read(app_url, "customers")
        # The update sets updated_at = now(): every changed row, plus rows at the old edge value.
        if not changed <= inc.rows_read <= changed + 50:
            raise BenchError(f"the incremental run read {inc.rows_read} rows for {changed} changed customers")
        floor(src, dst, cutoff)
        check(dst, n)
        if not quiet:
            print(f"  {app_db} N={n}: full {full.seconds:.1f}s, floor {fl.seconds:.1f}s, "
                  f"incremental {inc.seconds:.2f}s ({inc.rows_read} rows)", flush=True)
        return Round(full, fl, inc, changed, vacuum)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def table(series: list[Series]) -> str:
    lines = [
        "| app db | N | phase | seconds (median) | records/s | ratio to floor | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in series:
        fl = median([r.floor.seconds for r in s.rounds])
        full = median([r.full.seconds for r in s.rounds])
        inc = median([r.incremental.seconds for r in s.rounds])
        rss_full = max(r.full.rss_mb for r in s.rounds)
        rss_inc = max(r.incremental.rss_mb for r in s.rounds)
        changed = s.rounds[0].changed
        vacuum = median([r.vacuum for r in s.rounds])
        lines.append(f"| {s.app_db} | {s.n} | full sync | {full:.2f} | {s.n / full:,.0f} | {full / fl:.1f} | {rss_full:.0f} |")
        lines.append(f"| {s.app_db} | {s.n} | floor | {fl:.2f} | {s.n / fl:,.0f} | 1.0 | - |")
        lines.append(
            f"| {s.app_db} | {s.n} | incremental (1%: {changed}) | {inc:.2f} | {changed / inc:,.0f} | "
            f"{inc / fl:.2f} ({100 * inc / full:.1f}% of full) | {rss_inc:.0f} |"
        )
        if vacuum:
            lines.append(f"| {s.app_db} | {s.n} | VACUUM (ANALYZE) between the two, in neither time | {vacuum:.2f} | - | - | - |")
    return "\n".join(lines)


def machine() -> str:
    with psycopg.connect(url("postgres")) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
    return f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, PostgreSQL {pg}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sqlite-n", type=int, default=100_000)
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--anchor", default="2026-11-28T00:00:00+00:00")
    ap.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"), help="'' to not record")
    ap.add_argument("--note", default="", help="a line recorded with the results")
    args = ap.parse_args()
    if not GENERATOR.exists():
        print(f"generator not found: {GENERATOR} (set BENCH_GENERATOR)", file=sys.stderr)
        return 2
    plans = []
    if not args.no_postgres:
        plans.append(("postgres", args.n))
    if not args.no_sqlite:
        plans.append(("sqlite", args.sqlite_n))
    series = []
    try:
        for app_db, n in plans:
            s = Series(app_db, n)
            for i in range(args.repeat):
                print(f"round {i + 1}/{args.repeat}: application database {app_db}, N = {n}", flush=True)
                s.rounds.append(one_round(n, app_db, args.anchor, quiet=False))
            series.append(s)
    except BenchError as exc:
        print(f"\nBENCHMARK RESULT IS WRONG: {exc}", file=sys.stderr)
        return 1
    out = table(series)
    print()
    print(out)
    if args.results:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        with open(args.results, "a") as f:
            f.write(f"\n## {stamp} — {machine()}, {args.repeat} round(s)\n\n")
            if args.note:
                f.write(args.note + "\n\n")
            f.write(out + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
