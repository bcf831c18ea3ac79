#!/usr/bin/env python
"""Benchmark: webhook intake of the generic webhook connector (HMAC-SHA256) into the inbox.

For each database (PostgreSQL on 127.0.0.1:5432 in a fresh database ``zs_bench_intake``,
and SQLite with ``--db sqlite``):

1. a tenant with a plain ``orders`` table and a generic ``webhook`` install (mapping to
   ``orders``, global id unique) is prepared in this process;
2. **intake**: a real ``zhongshu serve`` process on 127.0.0.1 with its embedded worker
   switched off (so only intake runs) takes ``--count`` signed order webhooks sent as fast as
   ``--senders`` keep-alive connections can, plus ``--resend`` percent of them sent a second
   time (same delivery id: must be acknowledged and not stored twice). Bodies and HMACs are
   made before the clock starts. Figures: accepted/s, p50/p95/max latency;
3. **processing**: the server is stopped and ``zhongshu worker`` maps the inbox to orders:
   processed orders/s;
4. **proof**: inbox rows and orders counted by external id — every accepted webhook is
   exactly one inbox row and one order (nothing lost, nothing doubled).

For scale, the same client also measures ``GET /api/v1/health`` (Flask, no database) on the
same server right after the burst: the ceiling of the HTTP server and framework alone.

The client shares the machine's cores with the server and PostgreSQL, so the CPU each used
during the burst is reported (``cpu``: core-seconds of the client, the server's processes,
PostgreSQL, and everything else). ``--client http`` (default) is one ``http.client``
connection per sender thread; ``--client raw`` (bench/_rawclient.py) drives the same number
of keep-alive sockets from one thread with requests pre-built as bytes, at a fraction of the
client CPU.

With ``--embedded-worker`` step 2 runs with the server's own worker on (the single-process
default: intake then competes with processing for the cores) and step 3 waits for it.

    .venv/bin/python bench/bench_intake.py                      # PostgreSQL, 10,000 webhooks
    .venv/bin/python bench/bench_intake.py --db postgresql sqlite --count 3000 --json /tmp/intake.json
    .venv/bin/python bench/bench_intake.py --server gunicorn     # 2 processes x 8 threads (deploy/gunicorn.conf.py)
    .venv/bin/python bench/bench_intake.py --server gunicorn --client raw --count 5000

Only loopback is contacted. Not a test: the figures depend on what else the machine runs.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from bench import _rawclient  # noqa: E402
from bench._cpu import CpuSample  # noqa: E402
from bench._server import HOST, Server, free_port  # noqa: E402
from tests.scale import cluster as cl  # noqa: E402

GOAL_PER_S = 2000
DB_NAME = "zs_bench_intake"
WARMUP = 200


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def order_body(i: int, prefix: str) -> dict:
    total = round(59 + (i * 37) % 900 + 0.9, 2)
    return {"id": f"{prefix}{i:07d}", "event": "order.created", "total": str(total), "status": "待付款",
            "receiver": {"name": "张三", "phone": "13800000000", "address": "上海市浦东新区世纪大道 100 号"},
            "items": [{"sku": f"SKU-{i % 50:03d}", "qty": 1 + i % 3, "price": str(total)}]}


def signed_requests(count: int, resend_pct: float, prefix: str = "WH") -> list[tuple[str, bytes, dict]]:
    """(external id, body, headers) for every request, signed now, resends spread through."""
    out = []
    for i in range(count):
        body = order_body(i, prefix)
        raw, headers = cl.signed(body)
        headers["X-Request-Id"] = f"delivery-{body['id']}"  # the same delivery re-sent keeps its id
        out.append((body["id"], raw, headers))
    step = int(100 / resend_pct) if resend_pct > 0 else 0
    if step:
        for j in range(0, count, step):
            out.insert(min(len(out), j * 2 + step), out[j])  # a re-send a little later
    return out


class Sender(threading.Thread):
    """One keep-alive connection sending its share of the requests back to back."""

    def __init__(self, port: int, hook: str, requests: list, start: threading.Event):
        super().__init__(daemon=True)
        self.port, self.hook, self.requests, self.start_evt = port, hook, requests, start
        self.lat: list[float] = []
        self.statuses: dict[int, int] = {}
        self.accepted: list[str] = []
        self.errors: list[str] = []

    def run(self):
        h = cl.Http(HOST, self.port)
        self.start_evt.wait()
        for ext, raw, headers in self.requests:
            t0 = time.perf_counter()
            try:
                status, _, body = h.request("POST", self.hook, raw, headers)
            except OSError as e:  # connection refused / reset: counted, not accepted
                status, body = 0, str(e)
            self.lat.append(time.perf_counter() - t0)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status in (200, 202):
                self.accepted.append(ext)
            elif len(self.errors) < 5:
                self.errors.append(f"{status}: {str(body)[:200]}")
        h.close()


def burst_figures(seconds: float, results: list[tuple[str, int, float, str]], requests: int) -> dict:
    """Figures of one burst from (external id, status, seconds, error text) per request."""
    lat = [r[2] for r in results]
    statuses: dict[int, int] = {}
    for r in results:
        statuses[r[1]] = statuses.get(r[1], 0) + 1
    accepted = sum(v for k, v in statuses.items() if k in (200, 202))
    return {"requests": requests, "seconds": round(seconds, 3), "accepted": accepted,
            "accepted_per_s": round(accepted / seconds, 1), "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "p50_ms": round(pct(lat, .5) * 1000, 2), "p95_ms": round(pct(lat, .95) * 1000, 2),
            "max_ms": round(max(lat) * 1000, 2), "accepted_ids": {r[0] for r in results if r[1] in (200, 202)},
            "errors": [f"{r[1]}: {r[3][:200]}" for r in results if r[1] not in (200, 202)][:5]}


def run_burst_raw(port: int, hook: str, reqs: list, senders: int) -> dict:
    items = [(ext, _rawclient.build_request(HOST, port, "POST", hook, raw, headers)) for ext, raw, headers in reqs]
    t0 = time.perf_counter()
    results = _rawclient.run(HOST, port, items, senders)
    seconds = time.perf_counter() - t0
    return burst_figures(seconds, [(r.tag, r.status, r.seconds, r.body.decode("utf-8", "replace"))
                                   for r in results], len(reqs))


def run_burst(port: int, hook: str, reqs: list, senders: int, client: str = "http") -> dict:
    if client == "raw":
        return run_burst_raw(port, hook, reqs, senders)
    start = threading.Event()
    threads = [Sender(port, hook, reqs[i::senders], start) for i in range(senders)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    start.set()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    lat = [x for t in threads for x in t.lat]
    statuses: dict[int, int] = {}
    for t in threads:
        for k, v in t.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    accepted = sum(v for k, v in statuses.items() if k in (200, 202))
    return {"requests": len(reqs), "seconds": round(seconds, 3), "accepted": accepted,
            "accepted_per_s": round(accepted / seconds, 1), "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "p50_ms": round(pct(lat, .5) * 1000, 2), "p95_ms": round(pct(lat, .95) * 1000, 2),
            "max_ms": round(max(lat) * 1000, 2), "accepted_ids": {e for t in threads for e in t.accepted},
            "errors": [e for t in threads for e in t.errors][:5]}


def http_ceiling(port: int, count: int, senders: int, client: str = "http") -> float:
    """Requests/s of ``GET /api/v1/health`` (Flask, no database) with the same client: what the
    HTTP server and framework alone allow on this machine right now."""
    if client == "raw":
        req = _rawclient.build_request(HOST, port, "GET", "/api/v1/health", b"", {"Accept": "application/json"})
        t0 = time.perf_counter()
        _rawclient.run(HOST, port, [(i, req) for i in range(count)], senders)
        return round(count / (time.perf_counter() - t0), 1)
    start = threading.Event()

    def run(n):
        h = cl.Http(HOST, port)
        start.wait()
        for _ in range(n):
            h.request("GET", "/api/v1/health")
        h.close()
    threads = [threading.Thread(target=run, args=(count // senders,), daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    start.set()
    for t in threads:
        t.join()
    return round(senders * (count // senders) / (time.perf_counter() - t0), 1)


def inbox_counts(engine) -> dict:
    with engine.connect() as c:
        return dict(c.execute(text("select status, count(*) from inbox group by status")).all())


def wait_processed(engine, expected: int, timeout: float) -> float | None:
    """Seconds until no inbox row is ``received`` and ``expected`` rows exist; None on timeout."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        counts = inbox_counts(engine)
        if not counts.get("received") and sum(counts.values()) >= expected:
            return time.perf_counter() - t0
        time.sleep(0.1)
    return None


def proof(engine, accepted_ids: set[str], processed: bool = True) -> dict:
    """Every accepted external id is exactly one inbox row with exactly one ``inbox.process``
    job, and (when processed) one order."""
    with engine.connect() as c:
        inbox = dict(c.execute(text("select external_id, count(*) from inbox where external_id like 'WH%' "
                                    "group by external_id")).all())
        # intake stamps every row of one transaction with the same received_at
        commits = c.execute(text("select count(distinct received_at) from inbox where external_id like 'WH%'")).scalar()
        jobless = c.execute(text(
            "select count(*) from inbox i where i.external_id like 'WH%' and (select count(*) from outbox o "
            "where o.tenant_id = i.tenant_id and o.kind = 'inbox.process' "
            "and o.idempotency_key = 'inbox:' || cast(i.id as varchar)) <> 1")).scalar()
        table_id = c.execute(text("select id from user_tables where api_name = 'orders' and deleted_at is null")).scalar()
        col = c.execute(text("select coalesce(physical, 'f_' || id) from fields where table_id = :t "
                             "and api_name = 'external_id' and deleted_at is null"), {"t": table_id}).scalar()
        orders = dict(c.execute(text(f'select "{col}", count(*) from "t_{table_id}" where "{col}" like \'WH%\' '
                                     f'and deleted_at is null group by "{col}"')).all())
    lost_inbox = sorted(accepted_ids - set(inbox))
    doubled_inbox = sorted(k for k, v in inbox.items() if v > 1)
    lost_orders = sorted(accepted_ids - set(orders)) if processed else []
    doubled_orders = sorted(k for k, v in orders.items() if v > 1)
    return {"accepted_ids": len(accepted_ids), "inbox_rows": sum(inbox.values()), "orders": sum(orders.values()),
            "lost_in_inbox": len(lost_inbox), "doubled_in_inbox": len(doubled_inbox),
            "inbox_rows_without_one_job": jobless, "orders_checked": processed,
            "rows_per_commit": round(sum(inbox.values()) / commits, 2) if commits else None,
            "lost_orders": len(lost_orders), "doubled_orders": len(doubled_orders),
            "examples": (lost_inbox + doubled_inbox + lost_orders + doubled_orders)[:5],
            "ok": not (lost_inbox or doubled_inbox or jobless or lost_orders or doubled_orders)}


class Worker:
    """``zhongshu worker`` (outbox worker threads) as a child process, stopped by its pid."""

    def __init__(self, data_dir: Path, url: str, concurrency: int):
        env = dict(os.environ, ZHONGSHU_DATA_DIR=str(data_dir), ZHONGSHU_DATABASE_URL=url, PYTHONUNBUFFERED="1")
        exe = Path(sys.executable).with_name("zhongshu")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from zhongshu.platform.cli import main; main()"]
        self.log = open(data_dir / "worker.log", "ab")
        self.proc = subprocess.Popen(cmd + ["worker", "--concurrency", str(concurrency), "--poll", "0.05",
                                            "--import", "zhongshu.connectors.service"],
                                     cwd=str(ROOT), env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


class PySpy:
    """``py-spy record`` of the server's processes (GIL holders only: where the CPU goes) for
    the duration of the burst, written as collapsed stacks (``-f raw``) to ``out``."""

    def __init__(self, pid: int, out: str):
        exe = Path(sys.executable).with_name("py-spy")
        if not exe.exists():
            raise SystemExit("--py-spy needs py-spy in the venv: .venv/bin/pip install py-spy")
        self.proc = subprocess.Popen([str(exe), "record", "--subprocesses", "--gil", "-r", "100", "-f", "raw",
                                      "-o", out, "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)  # attached to every process before the clock starts

    def stop(self):
        self.proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class Gunicorn:
    """The production web node (deploy/gunicorn.conf.py) on a free loopback port."""

    def __init__(self, data_dir: Path, url: str, workers: int, threads: int, env: dict, worker_class: str = ""):
        self.port = free_port()
        e = dict(os.environ, ZHONGSHU_DATA_DIR=str(data_dir), ZHONGSHU_DATABASE_URL=url, PYTHONUNBUFFERED="1",
                 ZHONGSHU_BIND=f"{HOST}:{self.port}", ZHONGSHU_WEB_WORKERS=str(workers),
                 ZHONGSHU_WEB_THREADS=str(threads), ZHONGSHU_LOG_LEVEL="warning", **env)
        if worker_class:
            e["ZHONGSHU_WEB_WORKER_CLASS"] = worker_class
        self.log = open(data_dir / "gunicorn.log", "ab")
        self.proc = subprocess.Popen([str(Path(sys.executable).with_name("gunicorn")), "-c", "deploy/gunicorn.conf.py"],
                                     cwd=str(ROOT), env=e, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._wait_listening(data_dir)

    def _wait_listening(self, data_dir: Path):
        import socket
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited; see its log in {data_dir}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)
        time.sleep(2)  # let every worker process import the app

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


class Granian(Gunicorn):
    """Granian (a Rust HTTP server) running the same WSGI app: HTTP parsing and keep-alive
    handling off the Python interpreter; the app runs in ``threads`` blocking threads per
    process. For comparison with gunicorn's gthread worker (see docs/scale.md)."""

    def __init__(self, data_dir: Path, url: str, workers: int, threads: int, env: dict, worker_class: str = ""):
        self.port = free_port()
        e = dict(os.environ, ZHONGSHU_DATA_DIR=str(data_dir), ZHONGSHU_DATABASE_URL=url, PYTHONUNBUFFERED="1", **env)
        exe = Path(sys.executable).with_name("granian")
        if not exe.exists():
            raise SystemExit("--server granian needs granian in the venv: .venv/bin/pip install granian")
        self.log = open(data_dir / "granian.log", "ab")
        self.proc = subprocess.Popen([str(exe), "--interface", "wsgi", "--factory", "--host", HOST, "--port", str(self.port),
                                      "--workers", str(workers), "--blocking-threads", str(threads),
                                      "--log-level", "warning", "--no-ws", "zhongshu.platform.app:create_app"],
                                     cwd=str(ROOT), env=e, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._wait_listening(data_dir)


def bench_db(db: str, args) -> dict:
    work = Path(args.workdir) / db
    if work.exists():
        import shutil
        shutil.rmtree(work)
    work.mkdir(parents=True)
    if db == "postgresql":
        problem = cl.pg_problem()
        if problem:
            return {"db": db, "skipped": f"PostgreSQL unavailable: {problem}"}
        url = cl.create_database(DB_NAME)
    else:
        url = f"sqlite:///{work / 'zhongshu.db'}"
    info = cl.prepare_tenant(url, work)
    info["platform"].close()
    engine = create_engine(url)
    reqs = signed_requests(args.count, args.resend)
    warm = signed_requests(WARMUP, 0, "WARM")  # not counted in the figures (other ids)
    out: dict = {"db": db, "server": args.server, "worker_class": args.worker_class, "senders": args.senders, "count": args.count,
                 "resent": len(reqs) - args.count, "embedded_worker": args.embedded_worker}
    worker_env = {"ZHONGSHU_RUN_WORKER": "1" if args.embedded_worker else "0", "ZHONGSHU_RUN_SCHEDULER": "0",
                  "ZHONGSHU_OVERLOAD_OUTBOX_THRESHOLD": "0", "ZHONGSHU_OVERLOAD_INBOX_THRESHOLD": "0",
                  "ZHONGSHU_SECRET_KEY": "scale-test-secret-key-0123456789"}
    out["client"] = args.client
    if args.server in ("gunicorn", "granian"):
        srv = (Gunicorn if args.server == "gunicorn" else Granian)(work, url, args.web_workers, args.threads, worker_env, args.worker_class)
        port, srv_pid = srv.port, srv.proc.pid
    else:
        srv = Server(work, url, threads=args.threads, env=worker_env).start()
        port, srv_pid = srv.port, srv.pid
    try:
        run_burst(port, info["hook_path"], warm, min(args.senders, 8), args.client)  # warm-up
        spy = PySpy(srv_pid, args.py_spy) if args.py_spy else None
        cpu0 = CpuSample.take(srv_pid, DB_NAME if db == "postgresql" else None)
        burst = run_burst(port, info["hook_path"], reqs, args.senders, args.client)
        out["cpu"] = cpu0.until(CpuSample.take(srv_pid, DB_NAME if db == "postgresql" else None))
        if spy:
            spy.stop()
        accepted_ids = burst.pop("accepted_ids")
        out["intake"] = burst
        print(f"[{db}] intake: {json.dumps(burst, ensure_ascii=False)}", flush=True)
        print(f"[{db}] cpu during the burst (core-seconds): {json.dumps(out['cpu'])}", flush=True)
        out["http_ceiling_per_s"] = http_ceiling(port, min(args.count, 3000), args.senders, args.client)
        print(f"[{db}] GET /api/v1/health (no database): {out['http_ceiling_per_s']}/s", flush=True)
        if args.embedded_worker:
            t_proc = wait_processed(engine, args.count + WARMUP, args.process_timeout)
    finally:
        if not args.embedded_worker:
            srv.stop()
    try:
        if args.skip_processing:
            t_proc = None
        elif not args.embedded_worker:
            w = Worker(work, url, args.worker_threads)
            try:
                t_proc = wait_processed(engine, args.count + WARMUP, args.process_timeout)
            finally:
                w.stop()
        out["processing"] = {"seconds": None if t_proc is None else round(t_proc, 2),
                             "orders_per_s": None if not t_proc else round((args.count + WARMUP) / t_proc, 1),
                             "inbox": inbox_counts(engine), "timed_out": t_proc is None and not args.skip_processing,
                             "skipped": args.skip_processing}
        print(f"[{db}] processing: {json.dumps(out['processing'], ensure_ascii=False)}", flush=True)
        out["proof"] = proof(engine, accepted_ids, processed=not args.skip_processing)
        print(f"[{db}] proof: {json.dumps(out['proof'], ensure_ascii=False)}", flush=True)
    finally:
        if args.embedded_worker:
            srv.stop()
        engine.dispose()
    return out


def table(results: list[dict]) -> str:
    rows = [("database", "accepted/s", "health GET/s", "p50 ms", "p95 ms", "max ms", "accepted", "statuses", "orders/s", "lost", "doubled",
             f"goal ≥ {GOAL_PER_S:,}/s")]
    for r in results:
        if "skipped" in r:
            rows.append((r["db"], r["skipped"], *[""] * 10))
            continue
        i, p, pr = r["intake"], r["processing"], r["proof"]
        rows.append((r["db"], f"{i['accepted_per_s']:,.0f}", f"{r.get('http_ceiling_per_s', 0):,.0f}", f"{i['p50_ms']:.1f}", f"{i['p95_ms']:.1f}", f"{i['max_ms']:.0f}",
                     str(i["accepted"]), " ".join(f"{k}×{v}" for k, v in i["statuses"].items()),
                     "-" if p["orders_per_s"] is None else f"{p['orders_per_s']:,.0f}",
                     str(pr["lost_in_inbox"] + pr.get("inbox_rows_without_one_job", 0) + pr["lost_orders"]), str(pr["doubled_in_inbox"] + pr["doubled_orders"]),
                     "met" if i["accepted_per_s"] >= GOAL_PER_S else "missed"))
    widths = [max(len(str(row[k])) for row in rows) for k in range(len(rows[0]))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", nargs="+", choices=["postgresql", "sqlite"], default=["postgresql"])
    ap.add_argument("--count", type=int, default=10000, help="distinct webhooks (orders) to send")
    ap.add_argument("--resend", type=float, default=2.0, help="percent of them sent a second time")
    ap.add_argument("--senders", type=int, default=16, help="concurrent keep-alive client connections")
    ap.add_argument("--server", choices=["serve", "gunicorn", "granian"], default="serve",
                    help="zhongshu serve (waitress, one process), gunicorn (deploy/gunicorn.conf.py) or granian "
                         "(--web-workers processes x --threads blocking threads)")
    ap.add_argument("--client", choices=["http", "raw"], default="http",
                    help="http: a thread with http.client per sender; raw: one thread driving all senders' "
                         "sockets (bench/_rawclient.py), much less client CPU")
    ap.add_argument("--threads", type=int, default=16, help="server threads (per process)")
    ap.add_argument("--web-workers", type=int, default=2, help="gunicorn processes")
    ap.add_argument("--worker-class", default="", help="gunicorn worker class (default: deploy/gunicorn.conf.py's)")
    ap.add_argument("--worker-threads", type=int, default=2, help="threads of the processing worker")
    ap.add_argument("--embedded-worker", action="store_true",
                    help="run intake with the server's own worker processing at the same time")
    ap.add_argument("--process-timeout", type=float, default=900)
    ap.add_argument("--skip-processing", action="store_true",
                    help="measure intake only: no mapping to orders; the proof checks the inbox rows and their jobs")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "zs_bench_intake"))
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--py-spy", metavar="OUT", help="profile the server during the burst with py-spy "
                    "(collapsed stacks, GIL holders only) into this file")
    args = ap.parse_args(argv)
    os.environ.setdefault("ZHONGSHU_ARGON2_PROFILE", "test")

    results = []
    for db in args.db:
        results.append(bench_db(db, args))
    print()
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"goal_accepted_per_s": GOAL_PER_S, "results": results},
                                              ensure_ascii=False, indent=1), "utf-8")
    failed = [r for r in results if "proof" in r and not r["proof"]["ok"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
