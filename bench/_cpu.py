"""Who used the CPU during a benchmark window (Linux /proc): the client, the server's process
group, PostgreSQL, and everything else on the machine (other work sharing the cores).

    before = CpuSample.take(server_session=srv_pid, pg_database="zs_bench_intake")
    ...burst...
    shares = before.until(CpuSample.take(...))   # core-seconds per part and cores busy

Figures are core-seconds (1.0 = one core busy for one second). PostgreSQL counts the
backends connected to ``pg_database`` plus its shared helpers (WAL writer, checkpointer,
background writer); a backend that exits during the window loses its share.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")
PG_HELPERS = ("walwriter", "checkpointer", "background writer", "wal writer")


def _proc_stat(pid: str) -> tuple[int, float, float] | None:
    """(session id, user CPU seconds, system CPU seconds) of a process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("latin-1")
    except OSError:
        return None
    rest = raw[raw.rfind(")") + 2:].split()
    return int(rest[3]), int(rest[11]) / TICK, int(rest[12]) / TICK  # session, utime, stime


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("latin-1")
    except OSError:
        return ""


def _machine_busy() -> float:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]  # idle + iowait
    return (sum(parts[:8]) - idle) / TICK


@dataclass
class CpuSample:
    at: float
    client: float
    server: float
    server_sys: float
    postgres: float
    machine: float

    @classmethod
    def take(cls, server_session: int | None, pg_database: str | None) -> "CpuSample":
        server = server_sys = postgres = 0.0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            st = _proc_stat(pid)
            if st is None:
                continue
            session, user, sys_ = st
            cpu = user + sys_
            if server_session is not None and session == server_session:
                server += cpu
                server_sys += sys_
                continue
            cmd = _cmdline(pid)
            if cmd.startswith("postgres:") and ((pg_database and f" {pg_database} " in cmd)
                                                 or any(h in cmd for h in PG_HELPERS)):
                postgres += cpu
        t = os.times()
        return cls(time.perf_counter(), t.user + t.system, server, server_sys, postgres, _machine_busy())

    def until(self, end: "CpuSample") -> dict:
        secs = end.at - self.at
        client, server, pg = end.client - self.client, end.server - self.server, end.postgres - self.postgres
        machine = end.machine - self.machine
        return {"seconds": round(secs, 2), "cores": os.cpu_count(),
                "client_cpu_s": round(client, 2), "server_cpu_s": round(server, 2),
                "server_kernel_cpu_s": round(end.server_sys - self.server_sys, 2), "postgres_cpu_s": round(pg, 2),
                "other_cpu_s": round(max(0.0, machine - client - server - pg), 2), "machine_cpu_s": round(machine, 2),
                "client_share": round(client / machine, 3) if machine else None}
