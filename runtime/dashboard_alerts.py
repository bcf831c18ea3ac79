"""Dashboard threshold alerts: a widget with ``threshold.notify`` (a connector install's api
name) sends a message while its value crosses the threshold, at most once an hour.

The value is the one the card shows (``GET /dashboards/<d>/data``): the widget's view and
filter apply; an ungrouped widget's single number, a grouped one's largest; no number (an
empty sum) never alerts.

What is sent depends on the install's connector (:data:`ALERT_MESSAGES`):

* ``dingtalk``, ``wecom`` — ``send_message``, a text message to the robot's group;
* ``http_request`` — ``request``, a POST of the alert as JSON to the install's ``base_url``.

``email`` and ``sms`` need recipients (an address list, a phone and an SMS template) that a
threshold does not name: an alert on such an install is not queued (a warning is logged
once an hour per widget). Use a scheduled rule (``count_records`` + ``notify``) for those.
"""
from __future__ import annotations

import logging
from decimal import Decimal
from typing import Callable
from weakref import WeakKeyDictionary

from sqlalchemy import Text, cast, select

log = logging.getLogger("zhongshu.dashboard_alerts")

OPS: dict[str, Callable] = {">": lambda v, t: v > t, ">=": lambda v, t: v >= t,
                            "<": lambda v, t: v < t, "<=": lambda v, t: v <= t}


def _robot_text(config: dict, alert: dict):
    return "send_message", {"msgtype": "text", "content": alert["text"]}


def _http_post(config: dict, alert: dict):
    url = (config or {}).get("base_url") or ""
    if not url.lower().startswith(("http://", "https://")):
        return None  # nowhere to send it
    return "request", {"method": "POST", "url": url, "body": alert}


#: connector -> (install config, alert) -> (action, input), or None when it cannot be sent
ALERT_MESSAGES: dict[str, Callable[[dict, dict], tuple[str, dict] | None]] = {
    "dingtalk": _robot_text,
    "wecom": _robot_text,
    "http_request": _http_post,
}


def alert_message(connector: str, config: dict, alert: dict) -> tuple[str, dict] | None:
    """The connector action and input that carry ``alert``; None for connectors that cannot."""
    build = ALERT_MESSAGES.get(connector)
    return build(config, alert) if build else None


def widget_value(records, metadata, w: dict):
    """The number the widget's card shows, or None (no rows, an empty sum)."""
    from zhongshu.platform.storage.aggregate import aggregate

    schema = records.schema(w["table"])
    flt = w.get("filter")
    if w.get("view"):
        vf = metadata.view_row(schema, w["view"]).definition.get("filter")
        flt = {"and": [x for x in (vf, flt) if x]} if (vf or flt) else None
    spec = {k: w[k] for k in ("group_by", "metrics", "limit", "order") if k in w}
    if flt:
        spec["filter"] = flt
    data = aggregate(records, schema, spec)
    if not data["rows"]:
        return None
    metric = data["metrics"][0]
    if not data["group_by"]:
        return data["rows"][0].get(metric)
    return max((r.get(metric) or 0) for r in data["rows"])


def _number(v):
    """JSON-friendly and the same on every database: a whole number as int (150, not 150.0
    or Decimal('150.00')), another as float."""
    if isinstance(v, (Decimal, float)) and not isinstance(v, bool):
        return int(v) if v == int(v) else float(v)
    return v


def _title(w: dict) -> str:
    t = w.get("title")
    if isinstance(t, dict):
        t = t.get("zh-CN") or t.get("en") or next(iter(t.values()), None)
    return t or w["id"]


#: per platform: (board, widget, hour) already warned about, so one log line an hour
_warned: WeakKeyDictionary = WeakKeyDictionary()


def queue_alerts(platform) -> int:
    """Queues a ``connector.action`` job per crossed widget (key: board, widget, hour).
    Returns how many were queued."""
    from zhongshu.platform.models import Dashboard, Tenant
    from zhongshu.platform.storage.access import Actor

    from .models import ConnectorInstall
    from .outbox import PRIORITY_LOW, enqueue

    sent = 0
    warned = _warned.setdefault(platform, set())
    # One read for all tenants: only boards whose JSON mentions "notify" (a text match, the
    # widgets are checked below) in tenants with an enabled connector install. A write
    # transaction per board of every tenant each minute cost ~13 ms of CPU per tenant, so
    # 13 s a minute at 1,000 tenants with no alert configured anywhere.
    with platform.tenant_session(None) as s:
        enabled = select(ConnectorInstall.tenant_id).where(ConnectorInstall.enabled.is_(True))
        boards = s.execute(select(Dashboard.id, Dashboard.tenant_id)
                           .where(cast(Dashboard.definition, Text).like("%notify%"), Dashboard.tenant_id.in_(enabled))).all()
    for board_id, tenant_id in boards:
        with platform.tenant_session(tenant_id, write=True) as s:
            board = s.get(Dashboard, board_id)
            widgets = [w for w in (board.definition.get("widgets") or []) if (w.get("threshold") or {}).get("notify")]
            if not widgets:
                continue
            # Like rules, an alert waits for its install to be configured (no dead letters meanwhile).
            installs = {i.api_name: i for i in s.scalars(select(ConnectorInstall).where(ConnectorInstall.enabled.is_(True)))}
            widgets = [w for w in widgets if w["threshold"]["notify"] in installs]
            if not widgets:
                continue
            tenant = s.get(Tenant, tenant_id)
            actor = Actor(None, "owner", is_system=True)
            records, metadata = platform.records(s, tenant, actor), platform.metadata(s, tenant, actor)
            hour = (records.ctx.now or platform.clock()).strftime("%Y%m%d%H")
            for w in widgets:
                th = w["threshold"]
                try:
                    value = widget_value(records, metadata, w)
                except Exception as e:  # a widget broken by a schema change is skipped, not fatal
                    log.warning("dashboard %s widget %s: %s", board.api_name, w.get("id"), e)
                    continue
                if value is None or not OPS[th["op"]](value, th["value"]):
                    continue
                title = _title(w)
                alert = {"dashboard": board.api_name, "widget": w["id"], "title": title, "value": _number(value),
                         "op": th["op"], "threshold": th["value"],
                         "text": f"【{board.api_name}】{title}: {_number(value)} {th['op']} {th['value']}"}
                inst = installs[th["notify"]]
                message = alert_message(inst.connector, inst.config or {}, alert)
                if message is None:
                    if len(warned) > 10_000:
                        warned.clear()
                    if (board_id, w["id"], hour) not in warned:
                        warned.add((board_id, w["id"], hour))
                        log.warning("dashboard %s widget %s: connector %s (install %s) cannot send alerts; "
                                    "use dingtalk, wecom or http_request with a base_url",
                                    board.api_name, w["id"], inst.connector, inst.api_name)
                    continue
                action, input_ = message
                if enqueue(records.conn, tenant_id=tenant_id, kind="connector.action", priority=PRIORITY_LOW,
                           key=f"dash:{board_id}:{w['id']}:{hour}",
                           payload={"install": inst.api_name, "action": action, "input": input_}):
                    sent += 1
    return sent
