#!/usr/bin/env python
"""Run every benchmark under bench/ a few times and write one comparable report.

    .venv/bin/python bench/run_all.py                  # every bench_*.py, 3 runs each, quick sizes
    .venv/bin/python bench/run_all.py --runs 5 --full  # the scripts' own (large) default sizes
    .venv/bin/python bench/run_all.py --only rules peak --runs 2

Each script runs as its own process (so one cannot disturb another's memory figures) with
``--json <file>`` (or ``--json`` printing one JSON line, for the scripts that work that
way); every numeric value of its JSON output is collected, and the report gives, per
figure, the **median** over the runs with min and max. Figures whose name says they are a
ratio (``ratio``, ``_vs_``, ``speedup``) are ratios taken inside one run of a script, so
they compare like with like on the same machine at the same moment.

Writes ``bench/results/<UTC timestamp>.json`` and ``.md`` with the machine description
(CPU, cores, RAM, OS, Python, SQLite, PostgreSQL, Redis, RabbitMQ versions). A script that
fails is reported with its exit code and the tail of its output; the others still run.
New ``bench_*.py`` scripts are picked up automatically (run with ``--json FILE``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PG_URL = os.environ.get("ZHONGSHU_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")

#: per script: (arguments for a quick run, arguments for a full run, how it reports JSON)
#: "file": takes --json FILE; "stdout": takes --json and prints one JSON line.
PROFILES = {
    "bench_expressions.py": (["--seconds", "0.3"], [], "stdout"),
    "bench_data.py": (["--rows", "20000", "--db", "postgresql", "--reps", "100", "--single", "200"], [], "file"),
    "bench_rules.py": (["--orders", "500", "--runs", "2", "--threads", "1", "2", "--db", "postgresql"], [], "file"),
    "bench_peak.py": (["--burst", "2000", "--day", "1000"], [], "file"),
    "bench_intake.py": (["--count", "3000", "--db", "postgresql", "sqlite"], [], "file"),
    # cost growth: rows, rules per table, tenants, concurrent clients (bench_growth.py --help)
    "bench_growth.py": (["--quick"], [], "file"),
    "bench_ui.py": (["--rows", "20000", "--reps", "3", "--keep", os.path.join(tempfile.gettempdir(), "zs_ui_bench")], [],
                    "file"),
}
RATIO = re.compile(r"ratio|_vs_|speedup", re.I)


# -- machine ---------------------------------------------------------------------------------

def _first(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def machine() -> dict:
    m = {"cpu": _first("/proc/cpuinfo", "model name") or platform.processor(), "cores": os.cpu_count(),
         "ram_gb": None, "os": f"{platform.system()} {platform.release()}", "python": sys.version.split()[0],
         "sqlite": sqlite3.sqlite_version}
    mem = _first("/proc/meminfo", "MemTotal")
    if mem:
        m["ram_gb"] = round(int(mem.split()[0]) / 1024 / 1024, 1)
    try:
        from sqlalchemy import create_engine, text

        e = create_engine(PG_URL + "/postgres")
        with e.connect() as c:
            m["postgresql"] = c.execute(text("show server_version")).scalar()
        e.dispose()
    except Exception as exc:  # noqa: BLE001
        m["postgresql"] = f"unavailable ({type(exc).__name__})"
    try:
        import redis

        m["redis"] = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2).info()["redis_version"]
    except Exception as exc:  # noqa: BLE001
        m["redis"] = f"unavailable ({type(exc).__name__})"
    try:
        from kombu import Connection

        with Connection("amqp://guest:guest@127.0.0.1:5672//", connect_timeout=2) as conn:
            conn.connect()
            props = conn.connection.server_properties
            m["rabbitmq"] = props.get("version", "?")
    except Exception as exc:  # noqa: BLE001
        m["rabbitmq"] = f"unavailable ({type(exc).__name__})"
    return m


# -- running ---------------------------------------------------------------------------------

def flatten(value, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a JSON value as ``a.b[0].c`` → number (lists of dicts with a
    ``name``/``db``/``threads`` key are indexed by it, so runs line up)."""
    out: dict[str, float] = {}
    if isinstance(value, bool):
        return out
    if isinstance(value, (int, float)):
        out[prefix or "value"] = float(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k in ("meta", "machine"):
                continue
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            label = str(i)
            if isinstance(v, dict):
                parts = [str(v[k]) for k in ("name", "db", "rows", "threads", "case") if k in v and not isinstance(v[k], (dict, list))]
                label = "/".join(parts) or label
            out.update(flatten(v, f"{prefix}[{label}]"))
    return out


def run_script(script: Path, args: list[str], mode: str, timeout: float) -> tuple[dict | None, str, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        out_file = Path(tmp) / "out.json"
        cmd = [sys.executable, str(script), *args] + (["--json", str(out_file)] if mode == "file" else ["--json"])
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True, timeout=timeout)
            code, log = p.returncode, (p.stdout + p.stderr)
        except subprocess.TimeoutExpired as e:
            code, log = -9, f"timed out after {timeout:.0f} s\n{(e.stdout or b'')[-2000:]!r}"
        elapsed = time.monotonic() - t0
        data = None
        if mode == "file" and out_file.exists():
            data = json.loads(out_file.read_text("utf-8"))
        elif mode == "stdout":
            for line in reversed(log.splitlines()):
                if line.startswith("{"):
                    try:
                        data = json.loads(line)
                        break
                    except ValueError:
                        continue
    return data, log, elapsed, code


def summarise(runs: list[dict[str, float]]) -> dict[str, dict]:
    keys = sorted({k for r in runs for k in r})
    out = {}
    for k in keys:
        vals = [r[k] for r in runs if k in r]
        out[k] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "runs": len(vals),
                  "ratio": bool(RATIO.search(k))}
    return out


def fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# Benchmarks {report['started']}", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, {m['os']}; Python {m['python']}, "
             f"SQLite {m['sqlite']}, PostgreSQL {m.get('postgresql')}, Redis {m.get('redis')}, "
             f"RabbitMQ {m.get('rabbitmq')}.", "",
             f"Each figure is the median of {report['runs']} runs of its script (min–max beside it); "
             "ratios (marked ×) were taken within one run.", ""]
    for name, s in report["scripts"].items():
        lines += [f"## {name}", "", f"`{' '.join(s['command'])}` — {s['ok_runs']}/{s['runs']} runs ok, "
                  f"{s['seconds_median']:.0f} s per run", ""]
        if s.get("error"):
            lines += ["```", s["error"][-1500:], "```", ""]
        if s["figures"]:
            lines += ["| figure | median | min | max |", "|---|---:|---:|---:|"]
            for k, f in s["figures"].items():
                mark = " ×" if f["ratio"] else ""
                lines.append(f"| {k}{mark} | {fmt(f['median'])} | {fmt(f['min'])} | {fmt(f['max'])} |")
            lines.append("")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of each script (default 3)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="only these scripts (e.g. rules peak)")
    ap.add_argument("--full", action="store_true", help="the scripts' own default sizes (slow: up to hours)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per script run (default 1800)")
    ap.add_argument("--out", default=str(BENCH / "results"), help="folder of the reports")
    args = ap.parse_args(argv)

    scripts = sorted(BENCH.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if any(s.stem in (o, f"bench_{o}") for o in args.only)]
    started = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report = {"started": started, "runs": args.runs, "machine": machine(), "scripts": {}}
    print("machine:", json.dumps(report["machine"], ensure_ascii=False), flush=True)
    for script in scripts:
        quick, full, mode = PROFILES.get(script.name, ([], [], "file"))
        cmd_args = full if args.full else quick
        figures, times, errors, ok = [], [], [], 0
        for i in range(args.runs):
            data, log, elapsed, code = run_script(script, cmd_args, mode, args.timeout)
            times.append(elapsed)
            if code == 0 and data is not None:
                ok += 1
                figures.append(flatten(data))
            else:
                errors.append(f"run {i + 1}: exit {code}\n{log[-3000:]}")
            print(f"{script.name} run {i + 1}/{args.runs}: exit {code}, {elapsed:.0f} s", flush=True)
            if code != 0 and i == 0 and ("No module named" in log or "unavailable" in log.lower()):
                break  # missing dependency: running again will not help
        report["scripts"][script.name] = {
            "command": [script.name, *cmd_args], "runs": len(times), "ok_runs": ok,
            "seconds_median": statistics.median(times) if times else 0, "figures": summarise(figures),
            "error": "\n".join(errors) if errors else None}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{started}.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), "utf-8")
    (out / f"{started}.md").write_text(markdown(report), "utf-8")
    print(f"wrote {out / started}.json and .md")
    return 0 if all(s["ok_runs"] for s in report["scripts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
