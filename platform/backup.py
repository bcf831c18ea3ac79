"""Backup and restore of one tenant as a portable zip archive.

``zhongshu backup --tenant SLUG OUT.zip`` writes everything a tenant owns that is needed to
bring it back: the definitions (apps, tables, fields — including soft-deleted tables and
fields and the retired columns of retyped fields —, views, dashboards, rules, public pages,
template installs, connector installs with their credentials **still encrypted**), every row
of its physical tables (soft-deleted records too), many-to-many junction rows, record
history, autonumber counters, approvals, field locks, rule timers and states, the audit log,
memberships (by email) and the attachment files.

``zhongshu restore ARCHIVE --tenant NEWSLUG`` recreates it as a **new** tenant, on the same
database or on another one (SQLite ↔ PostgreSQL): every definition row gets a new id, and
the ids inside rows are remapped (``table_id``, ``field_id``, ``rule_id``, ``app_id``, the
``f_<field id>`` column names, the ``t_<table id>`` / ``j_<field id>`` physical tables, user
ids by email, attachment tokens in records and history). Record ids are kept: each restored
table is a new physical table, so links, sub-table ``parent_id`` values, junction rows and
history ``record_id`` values stay valid as they are.

Not in the archive (on purpose): API tokens (credentials of people; issue new ones), password
hashes (members are matched by email; missing users are created without a password and must
reset it), run logs, the outbox and the inbox (operational queues of the old tenant), login
attempts. New webhook URLs are issued for connector installs (the token is part of the URL
and globally unique); re-point the senders after a restore.

**Key requirement**: connector credentials are copied as Fernet tokens. The target
installation must have the source's credential key among its keys (``ZHONGSHU_SECRET_KEYS``
or ``<DATA_DIR>/credential_keys``), otherwise the credentials cannot be decrypted and must be
entered again (``zhongshu connectors rotate-keys`` lists such installs as ``failed``).

Archive layout (format ``zhongshu-tenant-backup`` version 1)::

    manifest.json            tenant, counts, physical table layouts, source dialect
    meta/<table>.jsonl       one JSON object per definition row (tagged values)
    data/<t_N|j_N>.jsonl     one JSON array per physical row, columns as in the manifest
    files/<token>            attachment contents
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import re
import secrets
import zipfile
from decimal import Decimal
from pathlib import Path

import click
from sqlalchemy import (JSON, BigInteger, Boolean, Column, Date, DateTime, Float, Integer, LargeBinary, Numeric,
                        String, Text, func, insert, inspect, select, text)

from .db import writer
from .models import (App, Attachment, AuditLog, AutonumberCounter, Dashboard, Field, Membership, PublicPage,
                     RecordHistory, Tenant, TemplateInstall, User, UserTable, View)

FORMAT = "zhongshu-tenant-backup"
VERSION = 1
_F_COL = re.compile(r"^f_(\d+)((?:_r\d+)?)$")


def _runtime_models():
    from zhongshu.runtime import models as rm

    return rm


# -- value encoding ----------------------------------------------------------------------------

def _enc(v):
    if isinstance(v, _dt.datetime):
        return {"$dt": v.isoformat()}
    if isinstance(v, _dt.date):
        return {"$d": v.isoformat()}
    if isinstance(v, Decimal):
        return {"$dec": str(v)}
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"$b64": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, dict):
        if len(v) == 1 and next(iter(v)).startswith("$"):
            return {"$obj": {k: _enc(x) for k, x in v.items()}}
        return {k: _enc(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_enc(x) for x in v]
    return v


def _dec(v):
    if isinstance(v, dict):
        if len(v) == 1:
            (k, x), = v.items()
            if k == "$dt":
                return _dt.datetime.fromisoformat(x)
            if k == "$d":
                return _dt.date.fromisoformat(x)
            if k == "$dec":
                return Decimal(x)
            if k == "$b64":
                return base64.b64decode(x)
            if k == "$obj":
                return {kk: _dec(xx) for kk, xx in x.items()}
        return {k: _dec(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_dec(x) for x in v]
    return v


def _type_desc(t) -> dict:
    try:
        g = t.as_generic()
    except Exception:  # noqa: BLE001 - unknown dialect type: keep it as text
        g = Text()
    name = type(g).__name__
    d = {"type": name}
    if isinstance(g, Numeric) and not isinstance(g, Float):
        d.update(precision=g.precision, scale=g.scale)
    if isinstance(g, String) and getattr(g, "length", None):
        d["length"] = g.length
    return d


_TYPES = {"Integer": Integer, "SmallInteger": Integer, "BigInteger": BigInteger, "Float": Float, "Double": Float,
          "Boolean": Boolean, "Date": Date, "DateTime": DateTime, "JSON": JSON, "LargeBinary": LargeBinary,
          "Text": Text, "Time": Text, "Interval": Text, "Uuid": Text, "Enum": Text}


def _type_from(d: dict):
    name = d.get("type", "Text")
    if name == "Numeric":
        return Numeric(d.get("precision"), d.get("scale"))
    if name in ("String", "Unicode", "UnicodeText"):
        return String(d["length"]) if d.get("length") else Text()
    return _TYPES.get(name, Text)()


# -- the physical layout of a table ------------------------------------------------------------

def _typed_table(table_row, field_rows, extra_columns: dict[str, dict] | None = None):
    """The SQLAlchemy Table of ``t_<id>`` with *every* column: live fields, soft-deleted
    fields, and ``extra_columns`` (retired columns of retyped fields) with generic types."""
    from . import fields as ft
    from .fields.base import FieldSpec
    from .storage.schema import physical_table

    specs = [FieldSpec(id=f.id, api_name=f.api_name, type=ft.get(f.type), definition=f.definition or {},
                       table_id=table_row.id, position=f.position, physical=f.physical)
             for f in sorted(field_rows, key=lambda f: (f.position, f.id))]
    table = physical_table(table_row, specs)
    for name, desc in (extra_columns or {}).items():
        if name not in table.c:
            table.append_column(Column(name, _type_from(desc), nullable=True))
    return table, specs


def _m2m_specs(specs):
    return [s for s in specs if s.type.name == "link" and s.type.relationship(s) == "many_to_many"]


# -- backup ------------------------------------------------------------------------------------

def _rows(conn, model, tenant_id):
    t = model.__table__
    return [dict(r._mapping) for r in conn.execute(select(t).where(t.c.tenant_id == tenant_id).order_by(t.c.id))]


def backup_tenant(platform, slug: str, out_path: str | Path) -> dict:
    """Writes the archive; returns the manifest (with counts)."""
    rm = _runtime_models()
    engine = platform.engine
    out_path = Path(out_path)
    with engine.connect() as conn:
        tenant = conn.execute(select(Tenant.__table__).where(Tenant.__table__.c.slug == slug)).mappings().first()
        if tenant is None:
            raise click.ClickException(f"no tenant {slug}")
        tid = tenant["id"]
        meta_models = [App, UserTable, Field, View, Dashboard, PublicPage, TemplateInstall, Attachment, Membership,
                       AuditLog, RecordHistory, rm.Rule, rm.RuleTimer, rm.RuleState, rm.Approval, rm.FieldLock,
                       rm.ConnectorInstall]
        meta = {m.__tablename__: _rows(conn, m, tid) for m in meta_models}
        field_ids = [f["id"] for f in meta["fields"]]
        counters = [dict(r._mapping) for r in conn.execute(
            select(AutonumberCounter.__table__).where(AutonumberCounter.__table__.c.field_id.in_(field_ids)))] if field_ids else []
        meta["autonumber_counters"] = counters
        user_ids = set()
        for name, key in (("memberships", "user_id"), ("record_history", "user_id"), ("attachments", "uploaded_by"),
                          ("audit_log", "user_id"), ("rules", "owner_id"), ("approvals", "decided_by")):
            user_ids |= {r[key] for r in meta[name] if r.get(key)}
        insp = inspect(conn)
        physical, data = {}, {}
        for trow in meta["user_tables"]:
            frows = [Field(**{k: v for k, v in f.items()}) for f in meta["fields"] if f["table_id"] == trow["id"]]
            urow = UserTable(**trow)
            name = f"t_{trow['id']}"
            if not insp.has_table(name):
                continue
            reflected = {c["name"]: _type_desc(c["type"]) for c in insp.get_columns(name)}
            table, specs = _typed_table(urow, frows)
            extras = {c: d for c, d in reflected.items() if c not in table.c}
            table, specs = _typed_table(urow, frows, extras)
            cols = [c.name for c in table.c if c.name in reflected]
            rows = [list(r) for r in conn.execute(select(*[table.c[c] for c in cols]).order_by(table.c.id))]
            for r in rows:
                for i, c in enumerate(cols):
                    if c in ("created_by", "updated_by") and r[i]:
                        user_ids.add(r[i])
            physical[name] = {"table_id": trow["id"], "columns": cols, "extra": extras, "rows": len(rows)}
            data[name] = rows
            for s in _m2m_specs(specs):
                jname = f"j_{s.id}"
                if insp.has_table(jname):
                    jrows = [list(r) for r in conn.execute(text(f"SELECT src_id, dst_id FROM {jname} ORDER BY src_id, dst_id"))]
                    physical[jname] = {"field_id": s.id, "columns": ["src_id", "dst_id"], "rows": len(jrows)}
                    data[jname] = jrows
        users = {}
        if user_ids:
            for u in conn.execute(select(User.__table__.c.id, User.__table__.c.email, User.__table__.c.name)
                                  .where(User.__table__.c.id.in_(sorted(user_ids)))):
                users[str(u.id)] = {"email": u.email, "name": u.name}
    files_dir = Path(platform.config["DATA_DIR"]) / "attachments" / str(tid)
    manifest = {
        "format": FORMAT, "version": VERSION, "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "source_dialect": engine.dialect.name,
        "tenant": {k: tenant[k] for k in ("slug", "name", "timezone", "locale", "settings")},
        "counts": {**{k: len(v) for k, v in meta.items()}, **{k: v["rows"] for k, v in physical.items()}},
        "physical": physical, "users": users,
        "credentials": "connector credentials are Fernet tokens: the restoring installation needs the source's key",
        "not_included": ["api_tokens", "password hashes", "rule_runs", "outbox", "inbox", "login_attempts"],
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".partial")
    missing = []
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, rows in meta.items():
            z.writestr(f"meta/{name}.jsonl", "".join(json.dumps(_enc(r), ensure_ascii=False) + "\n" for r in rows))
        for name, rows in data.items():
            z.writestr(f"data/{name}.jsonl", "".join(json.dumps(_enc(r), ensure_ascii=False) + "\n" for r in rows))
        for a in meta["attachments"]:
            p = files_dir / a["token"]
            if p.is_file():
                z.write(p, f"files/{a['token']}")
            else:
                missing.append(a["token"])
        manifest["missing_files"] = missing
        z.writestr("manifest.json", json.dumps(_enc(manifest), ensure_ascii=False, indent=1))
    tmp.replace(out_path)
    return manifest


# -- restore -----------------------------------------------------------------------------------

def _read_jsonl(z, name):
    try:
        raw = z.read(name).decode("utf-8")
    except KeyError:
        return []
    return [_dec(json.loads(line)) for line in raw.splitlines() if line.strip()]


def _new_col(name: str, fmap: dict[int, int]) -> str:
    m = _F_COL.match(name)
    if m and int(m.group(1)) in fmap:
        return f"f_{fmap[int(m.group(1))]}{m.group(2)}"
    return name


def _retoken(value, tokmap):
    if not tokmap or value is None:
        return value
    if isinstance(value, str):
        for old, new in tokmap.items():
            if old in value:
                value = value.replace(old, new)
        return value
    dumped = json.dumps(_enc(value), ensure_ascii=False)
    if not any(old in dumped for old in tokmap):
        return value
    for old, new in tokmap.items():
        dumped = dumped.replace(old, new)
    return _dec(json.loads(dumped))


def restore_tenant(platform, archive: str | Path, slug: str, *, name: str | None = None,
                   owner_email: str | None = None) -> dict:
    """Recreates the archive as the new tenant ``slug``; returns {"tenant_id", "counts", "maps"}."""
    from .auth import validate_slug
    from .storage.schema import create_physical, compile_schema, junction_table

    rm = _runtime_models()
    validate_slug(slug)
    archive = Path(archive)
    with zipfile.ZipFile(archive) as z:
        manifest = _dec(json.loads(z.read("manifest.json")))
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise click.ClickException(f"{archive} is not a zhongshu tenant backup (format {FORMAT} v{VERSION})")
        meta = {n[5:-6]: _read_jsonl(z, n) for n in z.namelist() if n.startswith("meta/") and n.endswith(".jsonl")}
        data = {n[5:-6]: _read_jsonl(z, n) for n in z.namelist() if n.startswith("data/") and n.endswith(".jsonl")}
        files = {n[6:]: z.read(n) for n in z.namelist() if n.startswith("files/")}
    if platform.tenant_by_slug(slug) is not None:
        raise click.ClickException(f"a tenant {slug} already exists; restore into a new slug")
    src = manifest["tenant"]
    engine = writer(platform.engine)
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        T = Tenant.__table__
        tid = conn.execute(insert(T).values(slug=slug, name=name or src["name"], timezone=src["timezone"],
                                            locale=src["locale"], settings=src.get("settings") or {},
                                            created_at=_dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None))
                           ).inserted_primary_key[0]

        # users by email (created without a password when missing)
        umap: dict[int, int] = {}
        U = User.__table__
        for old, u in (manifest.get("users") or {}).items():
            found = conn.execute(select(U.c.id).where(U.c.email == u["email"].lower())).scalar()
            if found is None:
                found = conn.execute(insert(U).values(email=u["email"].lower(), name=u.get("name") or "", password_hash=None,
                                                      is_superuser=False, disabled=False,
                                                      created_at=_dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None))
                                     ).inserted_primary_key[0]
            umap[int(old)] = found

        def add(model, row, **changes):
            t = model.__table__
            vals = {k: v for k, v in row.items() if k in t.c and k != "id"}
            vals.update(changes)
            vals["tenant_id"] = tid
            counts[t.name] = counts.get(t.name, 0) + 1
            return conn.execute(insert(t).values(**vals)).inserted_primary_key[0]

        def u(v):
            return umap.get(v) if v else None

        amap = {r["id"]: add(App, r) for r in meta.get("apps", [])}
        # tables: parents before their sub-tables
        tmap: dict[int, int] = {}
        pending = list(meta.get("user_tables", []))
        while pending:
            progress = False
            for r in list(pending):
                if r.get("parent_table_id") and r["parent_table_id"] not in tmap:
                    continue
                tmap[r["id"]] = add(UserTable, r, app_id=amap.get(r.get("app_id")),
                                    parent_table_id=tmap.get(r.get("parent_table_id")))
                pending.remove(r)
                progress = True
            if not progress:
                raise click.ClickException("the archive's sub-tables name parents that are not in it")
        fmap: dict[int, int] = {}
        for r in meta.get("fields", []):
            fmap[r["id"]] = add(Field, r, table_id=tmap[r["table_id"]], physical=None)
        Fc = Field.__table__.c
        for r in meta.get("fields", []):
            if r.get("physical"):
                conn.execute(Field.__table__.update().where(Fc.id == fmap[r["id"]])
                             .values(physical=_new_col(r["physical"], fmap)))
        for r in meta.get("autonumber_counters", []):
            if r["field_id"] in fmap:
                conn.execute(insert(AutonumberCounter.__table__).values(field_id=fmap[r["field_id"]], period=r["period"],
                                                                        value=r["value"]))
                counts["autonumber_counters"] = counts.get("autonumber_counters", 0) + 1
        for r in meta.get("views", []):
            add(View, r, table_id=tmap[r["table_id"]])
        for r in meta.get("dashboards", []):
            add(Dashboard, r, app_id=amap.get(r.get("app_id")))
        for r in meta.get("public_pages", []):
            add(PublicPage, r)
        for r in meta.get("template_installs", []):
            add(TemplateInstall, r)
        rmap = {r["id"]: add(rm.Rule, r, table_id=tmap.get(r.get("table_id")), owner_id=u(r.get("owner_id")))
                for r in meta.get("rules", [])}
        for r in meta.get("rule_timers", []):
            if r["rule_id"] in rmap:
                add(rm.RuleTimer, r, rule_id=rmap[r["rule_id"]], table_id=tmap.get(r["table_id"], r["table_id"]))
        for r in meta.get("rule_states", []):
            if r["rule_id"] in rmap:
                add(rm.RuleState, r, rule_id=rmap[r["rule_id"]])
        for r in meta.get("approvals", []):
            add(rm.Approval, r, rule_id=rmap.get(r.get("rule_id")), table_id=tmap.get(r["table_id"], r["table_id"]),
                decided_by=u(r.get("decided_by")))
        for r in meta.get("field_locks", []):
            add(rm.FieldLock, r, rule_id=rmap.get(r.get("rule_id")), table_id=tmap.get(r["table_id"], r["table_id"]))
        for r in meta.get("connector_installs", []):
            add(rm.ConnectorInstall, r, webhook_token=secrets.token_urlsafe(32)[:43])
        seen_members = set()
        for r in meta.get("memberships", []):
            nu = u(r["user_id"])
            if nu and nu not in seen_members:
                seen_members.add(nu)
                add(Membership, r, user_id=nu)
        if owner_email:
            owner = conn.execute(select(U.c.id).where(U.c.email == owner_email.lower())).scalar()
            if owner is None:
                raise click.ClickException(f"no user {owner_email}")
            if owner in seen_members:
                conn.execute(Membership.__table__.update().where(Membership.__table__.c.tenant_id == tid,
                                                                 Membership.__table__.c.user_id == owner).values(role="owner"))
            else:
                add(Membership, {"role": "owner", "attributes": {}}, user_id=owner)
        for r in meta.get("audit_log", []):
            add(AuditLog, r, user_id=u(r.get("user_id")))

        # attachments: new tokens (tokens are globally unique), files copied
        tokmap: dict[str, str] = {}
        files_dir = Path(platform.config["DATA_DIR"]) / "attachments" / str(tid)
        for r in meta.get("attachments", []):
            new = secrets.token_hex(16)
            tokmap[r["token"]] = new
            add(Attachment, r, token=new, uploaded_by=u(r.get("uploaded_by")))
            content = files.get(r["token"])
            if content is not None:
                files_dir.mkdir(parents=True, exist_ok=True)
                (files_dir / new).write_bytes(content)
                if hashlib.sha256(content).hexdigest() != r["sha256"]:
                    raise click.ClickException(f"attachment {r['filename']} is corrupt in the archive")
        for r in meta.get("record_history", []):
            add(RecordHistory, r, table_id=tmap.get(r["table_id"], r["table_id"]), user_id=u(r.get("user_id")),
                changes=_retoken(r.get("changes"), tokmap))

        # physical tables
        new_fields_by_table: dict[int, list] = {}
        for r in meta.get("fields", []):
            nr = dict(r, id=fmap[r["id"]], table_id=tmap[r["table_id"]], tenant_id=tid,
                      physical=_new_col(r["physical"], fmap) if r.get("physical") else None)
            new_fields_by_table.setdefault(nr["table_id"], []).append(Field(**nr))
        attachment_cols = {f"f_{fmap[r['id']]}" for r in meta.get("fields", []) if r["type"] == "attachment"}
        attachment_cols |= {_new_col(r["physical"], fmap) for r in meta.get("fields", [])
                            if r["type"] == "attachment" and r.get("physical")}
        for r in meta.get("user_tables", []):
            old_name = f"t_{r['id']}"
            info = manifest["physical"].get(old_name)
            row = UserTable(**dict(r, id=tmap[r["id"]], tenant_id=tid, parent_table_id=tmap.get(r.get("parent_table_id")),
                                   app_id=amap.get(r.get("app_id"))))
            frows = new_fields_by_table.get(row.id, [])
            extras = {_new_col(c, fmap): d for c, d in ((info or {}).get("extra") or {}).items()}
            table, specs = _typed_table(row, frows, extras)
            schema = compile_schema(row, frows)
            schema.table = table
            create_physical(conn, schema)
            for s in _m2m_specs(specs):
                junction_table(s).create(conn, checkfirst=True)
            if info is None:
                continue
            cols = [_new_col(c, fmap) for c in info["columns"]]
            batch = []
            for values in data.get(old_name, []):
                rec = dict(zip(cols, values))
                for c in ("created_by", "updated_by"):
                    if c in rec:
                        rec[c] = u(rec[c])
                for c in attachment_cols & rec.keys():
                    rec[c] = _retoken(rec[c], tokmap)
                batch.append(rec)
                if len(batch) >= 500:
                    conn.execute(insert(table), batch)
                    batch = []
            if batch:
                conn.execute(insert(table), batch)
            counts[f"records:{r['api_name']}"] = len(data.get(old_name, []))
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                  f"COALESCE((SELECT MAX(id) FROM {table.name}), 1), "
                                  f"(SELECT MAX(id) FROM {table.name}) IS NOT NULL)"))
        for jname, info in manifest["physical"].items():
            if not jname.startswith("j_"):
                continue
            new_j = f"j_{fmap[info['field_id']]}"
            rows = [{"src_id": s, "dst_id": d} for s, d in data.get(jname, [])]
            if rows:
                conn.execute(text(f"INSERT INTO {new_j} (src_id, dst_id) VALUES (:src_id, :dst_id)"), rows)
            counts[new_j] = len(rows)
    platform.cache.clear()
    return {"tenant_id": tid, "counts": counts,
            "maps": {"tables": tmap, "fields": fmap, "apps": amap, "rules": rmap, "attachments": tokmap}}


# -- CLI ---------------------------------------------------------------------------------------

def _platform():
    from .config import load_config
    from .core import Platform

    return Platform(load_config())


@click.command("backup")
@click.option("--tenant", "slug", required=True, help="slug of the tenant to back up")
@click.argument("out", type=click.Path(dir_okay=False))
def backup_cmd(slug, out):
    """Write one tenant (definitions, records incl. deleted ones, history, files) to OUT.zip."""
    m = backup_tenant(_platform(), slug, out)
    records = sum(v["rows"] for k, v in m["physical"].items() if k.startswith("t_"))
    click.echo(f"wrote {out}: {len(m['physical'])} physical tables, {records} rows, "
               f"{m['counts'].get('attachments', 0)} files, {m['counts'].get('fields', 0)} fields")
    if m.get("missing_files"):
        click.echo(f"warning: {len(m['missing_files'])} attachment files were missing on disk", err=True)
    click.echo("note: connector credentials stay encrypted; the restoring installation needs this one's credential key")


@click.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.option("--tenant", "slug", required=True, help="slug of the NEW tenant to create")
@click.option("--name", default=None, help="name of the new tenant (default: the archived one)")
@click.option("--owner", "owner_email", default=None, help="make this existing user an owner of the new tenant")
def restore_cmd(archive, slug, name, owner_email):
    """Recreate a backed-up tenant from ARCHIVE as a new tenant (new ids)."""
    from .errors import ApiError

    try:
        res = restore_tenant(_platform(), archive, slug, name=name, owner_email=owner_email)
    except ApiError as e:
        raise click.ClickException(e.message) from None
    recs = sum(v for k, v in res["counts"].items() if k.startswith("records:"))
    click.echo(f"restored tenant {slug} (id {res['tenant_id']}): {len(res['maps']['tables'])} tables, {recs} rows, "
               f"{len(res['maps']['attachments'])} files")


COMMANDS = [backup_cmd, restore_cmd]
