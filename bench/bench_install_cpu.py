"""CPU seconds of this process per template install, in-process (no HTTP): one Platform,
N tenants, the order hub installed into each in turn (no sample data). CPU time
(``resource.getrusage``: user + system of this process) is barely moved by other load on the
machine, unlike wall time; PostgreSQL's own CPU is not counted (it runs in its server).

    nice -n 10 .venv/bin/python bench/bench_install_cpu.py --db sqlite --tenants 6
    nice -n 10 .venv/bin/python bench/bench_install_cpu.py --db sqlite --tenants 9 --compare

``--compare`` takes turns: every other install runs with the template-check and validation
caches switched off (they never hit), so both see the same load and the same database size.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class NeverHit:
    """Stands in for a success cache that is switched off."""

    def get(self, key, default=None):
        return default

    def put(self, key, value):
        pass

    def clear(self):
        pass


def caches(on: bool, saved={}):
    from zhongshu.platform import validation
    from zhongshu.platform.templates_engine import loader

    saved.setdefault("valid", validation._VALID)
    saved.setdefault("passed", loader._PASSED)
    validation._VALID = saved["valid"] if on else NeverHit()
    loader._PASSED = saved["passed"] if on else NeverHit()


def database(kind: str, work: Path, pg_url: str, pg_db: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{work / 'zs.db'}"
    admin = create_engine(f"{pg_url}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{pg_db}"'))
    admin.dispose()
    return f"{pg_url}/{pg_db}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--tenants", type=int, default=6)
    ap.add_argument("--template", default="order_management")
    ap.add_argument("--compare", action="store_true", help="every other install without the caches")
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    ap.add_argument("--pg-db", default="zs_bench_install_cpu")
    a = ap.parse_args(argv)
    from zhongshu.platform.core import Platform
    from zhongshu.platform.templates_engine import install_template

    work = Path(tempfile.mkdtemp(prefix="zs_install_cpu_"))
    try:
        url = database(a.db, work, a.pg_url, a.pg_db)
        zs = Platform({"DATABASE_URL": url, "DATA_DIR": str(work / "instance"), "SECRET_KEY": "bench",
                       "RUN_WORKER": False, "RUN_SCHEDULER": False})
        zs.create_all()
        rows = []
        for i in range(a.tenants):
            cached = not (a.compare and i % 2 == 0)  # the first install is always a cold one
            caches(cached)
            t = zs.create_tenant(f"t{i}", f"t{i}")
            c0, w0 = cpu(), time.perf_counter()
            install_template(zs, t.id, a.template)
            rows.append((cached, cpu() - c0, time.perf_counter() - w0))
            print(f"install {i + 1} ({'caches on' if cached else 'caches off'}): {rows[-1][1]:.2f} s CPU, "
                  f"{rows[-1][2]:.2f} s wall", flush=True)
        for label, want in (("caches on", True), ("caches off", False)):
            cpus = [c for on, c, _ in rows[1:] if on == want]
            if cpus:
                print(f"{a.db}, {label}: installs 2..{a.tenants}: median {statistics.median(cpus):.2f} s CPU "
                      f"(min {min(cpus):.2f}, max {max(cpus):.2f}, n={len(cpus)})")
        print(f"first install {rows[0][1]:.2f} s CPU; load average {os.getloadavg()[0]:.1f}")
        zs.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if a.db == "postgresql":
            admin = create_engine(f"{a.pg_url}/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{a.pg_db}" WITH (FORCE)'))
            admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
