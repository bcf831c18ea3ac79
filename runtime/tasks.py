"""The runtime's periodic work, registered with the scheduler (runs on the leader only):
due SLA timers, schedule-triggered rules, and dashboard threshold alerts."""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from .scheduler import periodic, register_schedule_provider

log = logging.getLogger("zhongshu.tasks")


@periodic("rules.fire_due_timers", seconds=10)
def fire_due_timers(platform) -> None:
    from .rules.engine import fire_timers

    while fire_timers(platform) >= 500:  # a backlog after downtime: keep going until caught up
        pass


@register_schedule_provider
def scheduled_rules(platform) -> list:
    from zhongshu.platform.fields.time import parse_duration

    from .models import Rule
    from .rules.engine import run_scheduled

    jobs = []
    with platform.tenant_session(None) as s:
        rows = s.execute(select(Rule.id, Rule.tenant_id, Rule.definition).where(Rule.enabled.is_(True))).all()
    for rule_id, tenant_id, d in rows:
        trig = (d or {}).get("trigger") or {}
        if trig.get("type") != "schedule":
            continue
        if trig.get("cron"):
            spec = {"cron": trig["cron"]}
        else:
            try:
                spec = {"every_seconds": max(60, int(parse_duration(trig.get("every", "10 minutes")).total_seconds()))}
            except Exception:
                continue
        jobs.append((f"rule:{rule_id}", spec, lambda zs, t=tenant_id, r=rule_id: run_scheduled(zs, t, r)))
    return jobs


@periodic("dashboards.alerts", seconds=60)
def dashboard_alerts(platform) -> int:
    """Widgets with ``threshold.notify`` (a connector install) send a message when their
    value crosses the threshold — at most once an hour per widget while it stays crossed."""
    from zhongshu.platform.models import Dashboard, Tenant
    from zhongshu.platform.storage.access import Actor
    from zhongshu.platform.storage.aggregate import aggregate

    from .outbox import PRIORITY_LOW, enqueue

    sent = 0
    with platform.tenant_session(None) as s:
        boards = s.execute(select(Dashboard.id, Dashboard.tenant_id)).all()
    for board_id, tenant_id in boards:
        with platform.tenant_session(tenant_id, write=True) as s:
            board = s.get(Dashboard, board_id)
            widgets = [w for w in (board.definition.get("widgets") or []) if (w.get("threshold") or {}).get("notify")]
            if not widgets:
                continue
            tenant = s.get(Tenant, tenant_id)
            records = platform.records(s, tenant, Actor(None, "owner", is_system=True))
            from .models import ConnectorInstall

            live = {i.api_name for i in s.scalars(select(ConnectorInstall).where(ConnectorInstall.enabled.is_(True)))}
            # Like rules, an alert waits for its connector to be configured (no dead letters meanwhile).
            widgets = [w for w in widgets if w["threshold"]["notify"] in live]
            for w in widgets:
                try:
                    spec = {k: w[k] for k in ("group_by", "metrics", "filter", "limit") if k in w}
                    data = aggregate(records, records.schema(w["table"]), spec)
                except Exception as e:  # a widget broken by a schema change is skipped, not fatal
                    log.warning("dashboard %s widget %s: %s", board_id, w.get("id"), e)
                    continue
                if not data["rows"]:
                    continue
                metric = data["metrics"][0]
                value = max((r.get(metric) or 0) for r in data["rows"])
                th = w["threshold"]
                crossed = {">": value > th["value"], ">=": value >= th["value"], "<": value < th["value"], "<=": value <= th["value"]}[th["op"]]
                if not crossed:
                    continue
                title = w.get("title") or w["id"]
                title = title.get("zh-CN") if isinstance(title, dict) else title
                hour = (records.ctx.now or platform.clock()).strftime("%Y%m%d%H")
                text = f"【{board.api_name}】{title}: {value} {th['op']} {th['value']}"
                if enqueue(records.conn, tenant_id=tenant_id, kind="connector.action", priority=PRIORITY_LOW,
                           key=f"dash:{board_id}:{w['id']}:{hour}",
                           payload={"install": th["notify"], "action": "send_text", "input": {"content": text}}):
                    sent += 1
    return sent
