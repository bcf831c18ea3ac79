"""Definitions: apps, tables, fields, views, dashboards — validated, stored as JSON, and
applied to the physical tables in the same transaction (nothing half-applied)."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import func, select, text, update

from . import fields as ft
from . import permission_checks
from .errors import ApiError, Conflict, NotFound, ValidationFailed, field_error
from .fields.base import Ctx, FieldSpec, FieldValueError
from .fields.choice import assign_choice_ids
from .models import App, AuditLog, Dashboard, Field, UserTable, View, utcnow
from .storage.advisor import page_index_columns
from .storage.query import validate_filter
from .storage.schema import (
    SchemaCache,
    TableSchema,
    add_column,
    compile_schema,
    create_physical,
    ensure_composite_index,
    ensure_field_index,
    find_table_row,
    junction_table,
)
from .validation import validate

RESERVED = {"id", "version", "created_at", "updated_at", "created_by", "updated_by", "deleted_at", "parent_id", "position"}


@dataclass
class FieldCheckers:
    """Extra save-time checks (the runtime registers formula checking here)."""

    checks: list[Callable] = field(default_factory=list)
    #: called as fn(metadata, table_schema, field_name) after a field was added or changed
    after_change: list[Callable] = field(default_factory=list)


CHECKERS = FieldCheckers()


def _fail(pointer: str, en: str, zh: str, code: str = "validation_failed"):
    raise ValidationFailed(en, message_zh=zh, errors=[field_error(pointer, en, zh)], code=code)


class Metadata:
    def __init__(self, session, *, tenant_id: int, user_id: int | None, cache: SchemaCache, ctx: Ctx):
        self.session = session
        self.tenant_id = tenant_id
        self.user_id = user_id
        self.cache = cache
        self.ctx = ctx

    @property
    def conn(self):
        return self.session.connection()

    def audit(self, action: str, object_type: str, object_id: int | None, detail: dict | None = None):
        self.session.add(AuditLog(tenant_id=self.tenant_id, user_id=self.user_id, action=action,
                                  object_type=object_type, object_id=object_id, detail=detail or {}))

    def schema(self, ref) -> TableSchema:
        return self.cache.get(self.session, find_table_row(self.session, ref))

    # -- apps ------------------------------------------------------------------------
    def create_app(self, definition: dict) -> App:
        validate("app", definition)
        if self.session.scalar(select(App).where(App.api_name == definition["api_name"])):
            _fail("/api_name", f"an app named {definition['api_name']} already exists", f"应用 {definition['api_name']} 已存在", "conflict")
        app = App(tenant_id=self.tenant_id, api_name=definition["api_name"], definition=definition)
        self.session.add(app)
        self.session.flush()
        self.audit("create", "app", app.id, {"api_name": app.api_name})
        return app

    def app_id(self, api_name: str | None) -> int | None:
        if not api_name:
            return None
        app = self.session.scalar(select(App).where(App.api_name == api_name))
        if app is None:
            _fail("/app", f"no app named {api_name}", f"没有名为 {api_name} 的应用")
        return app.id

    # -- tables ----------------------------------------------------------------------
    def create_table(self, definition: dict, *, deferred_links: bool = False, check_permissions: bool = True) -> TableSchema:
        """Creates a table with its fields and sub-tables. With deferred_links, link
        fields whose target does not exist yet are left to a later add_field (templates).
        Without check_permissions the caller checks them once the table is complete
        (a template adds its links to other tables after creating them all)."""
        validate("table", definition)
        definition = copy.deepcopy(definition)
        name = definition["api_name"]
        if self.session.scalar(select(UserTable).where(UserTable.api_name == name, UserTable.deleted_at.is_(None))):
            _fail("/api_name", f"a table named {name} already exists", f"表 {name} 已存在", "conflict")
        field_defs = definition.pop("fields", [])
        row = UserTable(tenant_id=self.tenant_id, api_name=name, definition=definition,
                        app_id=self.app_id(definition.get("app")))
        self.session.add(row)
        self.session.flush()
        self._check_field_names(field_defs, "/fields")
        created = []
        for i, fdef in enumerate(field_defs):
            created.append(self._field_row(row, fdef, i, f"/fields/{i}", pending=field_defs))
        self.session.flush()
        schema = compile_schema(row, created)
        create_physical(self.conn, schema)
        for spec in schema.fields.values():
            self._create_related(row, spec)
        self._run_checkers(row, list(schema.fields), "/fields")
        if check_permissions:
            self.check_permissions(self.cache.get(self.session, row), definition.get("permissions"))
        self.audit("create", "table", row.id, {"api_name": name})
        return self.cache.get(self.session, row)

    def check_permissions(self, schema: TableSchema, permissions: dict | None = None):
        """Field names and row scopes of a permissions document (the table's own when not
        given), compiled as each role's reads will compile them; 400 at the pointer."""
        if permissions is None:
            permissions = schema.definition.get("permissions")
        permission_checks.check_permissions(schema, permissions, self.schema, self.ctx)

    def _run_checkers(self, table: UserTable, names: list[str], pointer: str):
        """Checks that need the whole new schema (formulas referencing sub-tables defined in
        the same request); a failure rolls the whole change back."""
        if not CHECKERS.checks:
            return
        schema = self.cache.get(self.session, table)
        order = list(schema.fields)
        for name in names:
            spec = schema.fields[name]
            problems = []
            for check in CHECKERS.checks:
                problems.extend(check(self, table, spec, None) or [])
            if problems:
                ptr = f"{pointer}/{order.index(name)}" if pointer else ""
                errs = [field_error(ptr + p, en, zh) for p, en, zh in problems]
                raise ValidationFailed(f"{name}: {problems[0][1]}", message_zh=f"{name}: {problems[0][2]}", errors=errs)
            if spec.type.name == "sub_table":
                child = find_table_row(self.session, spec.options["table"])
                cschema = self.cache.get(self.session, child)
                self._run_checkers(child, list(cschema.fields), f"{pointer}/{order.index(name)}/options/fields" if pointer else "")

    def _check_field_names(self, defs: list[dict], pointer: str):
        seen = set()
        for i, d in enumerate(defs):
            n = d.get("api_name")
            if n in RESERVED:
                _fail(f"{pointer}/{i}/api_name", f"'{n}' is a reserved name", f"'{n}' 是保留名称")
            if n in seen:
                _fail(f"{pointer}/{i}/api_name", f"the field name '{n}' is used twice", f"字段名 '{n}' 重复")
            seen.add(n)

    def _field_row(self, table: UserTable, fdef: dict, position: int, pointer: str, *, pending: list[dict] | None = None) -> Field:
        fdef = copy.deepcopy(fdef)
        ftype = ft.get(fdef["type"])
        if fdef["type"] in ("single_select", "multi_select"):
            fdef["options"] = assign_choice_ids(fdef.get("options") or {"choices": []})
        if fdef["type"] == "sub_table":
            fdef.setdefault("options", {}).setdefault("table", f"{table.api_name}_{fdef['api_name']}"[:63])
        row = Field(tenant_id=self.tenant_id, table_id=table.id, api_name=fdef["api_name"], type=fdef["type"],
                    definition=fdef, position=position)
        self.session.add(row)
        self.session.flush()
        spec = FieldSpec(id=row.id, api_name=row.api_name, type=ftype, definition=fdef, table_id=table.id, position=position)
        problems = ftype.check_definition(spec, {})
        if fdef["type"] == "link":
            target = fdef["options"]["target"]
            if target != table.api_name and not self.session.scalar(
                    select(UserTable).where(UserTable.api_name == target, UserTable.deleted_at.is_(None))):
                problems.append(("/options/target", f"no table named {target}", f"没有名为 {target} 的表"))
        if fdef["type"] in ("lookup", "rollup"):
            names = {d["api_name"]: d for d in (pending or [])}
            names.update({f.api_name: f.definition for f in self.session.scalars(select(Field).where(
                Field.table_id == table.id, Field.deleted_at.is_(None)))})
            through = names.get(fdef["options"]["through"])
            if through is None or through.get("type") not in ("link", "sub_table"):
                problems.append(("/options/through", f"'{fdef['options']['through']}' is not a link or sub-table of this table",
                                 f"'{fdef['options']['through']}' 不是本表的关联或子表字段"))
        if fdef.get("default") is not None and not ftype.computed and ftype.storage == "column":
            try:
                ftype.to_storage(fdef["default"], spec, self.ctx)
            except FieldValueError as e:
                problems.append(("/default", f"default: {e.message}", f"默认值: {e.message_zh}"))
        if problems:
            errs = [field_error(pointer + p, en, zh) for p, en, zh in problems]
            raise ValidationFailed(f"{fdef['api_name']}: {problems[0][1]}", message_zh=f"{fdef['api_name']}: {problems[0][2]}", errors=errs)
        return row

    def _create_related(self, table: UserTable, spec: FieldSpec):
        """Sub-tables get their child table; many-to-many links their junction table."""
        if spec.type.name == "sub_table":
            opts = spec.options
            child_def = {"api_name": opts["table"], "label": opts.get("label") or spec.definition.get("label") or spec.api_name,
                         "parent_field": spec.api_name}
            if self.session.scalar(select(UserTable).where(UserTable.api_name == opts["table"], UserTable.deleted_at.is_(None))):
                _fail(f"/fields/{spec.api_name}/options/table", f"a table named {opts['table']} already exists", f"表 {opts['table']} 已存在")
            child = UserTable(tenant_id=self.tenant_id, api_name=opts["table"], definition=child_def,
                              parent_table_id=table.id, app_id=table.app_id)
            self.session.add(child)
            self.session.flush()
            cdefs = opts.get("fields", [])
            self._check_field_names(cdefs, f"/fields/{spec.api_name}/options/fields")
            rows = [self._field_row(child, d, i, f"/fields/{spec.api_name}/options/fields/{i}", pending=cdefs) for i, d in enumerate(cdefs)]
            self.session.flush()
            cschema = compile_schema(child, rows)
            create_physical(self.conn, cschema)
            for cspec in cschema.fields.values():
                self._create_related(child, cspec)
        elif spec.type.name == "link" and spec.type.relationship(spec) == "many_to_many":
            junction_table(spec).create(self.conn, checkfirst=True)

    def bump(self, table: UserTable):
        table.schema_version = (table.schema_version or 1) + 1
        self.session.flush()

    def update_table(self, ref, patch: dict) -> TableSchema:
        row = find_table_row(self.session, ref)
        allowed = {"label", "description", "icon", "primary_field", "sections", "permissions", "api_name", "app"}
        unknown = set(patch) - allowed
        if unknown:
            _fail("/" + sorted(unknown)[0], f"cannot change {', '.join(sorted(unknown))} here (fields have their own endpoint)",
                  f"不能在此修改 {', '.join(sorted(unknown))}(字段请用字段接口)")
        definition = {**(row.definition or {}), **patch, "api_name": patch.get("api_name", row.api_name)}
        check = {k: v for k, v in definition.items() if k != "parent_field"}
        validate("table", check)
        if "api_name" in patch and patch["api_name"] != row.api_name and self.session.scalar(
                select(UserTable).where(UserTable.api_name == patch["api_name"], UserTable.deleted_at.is_(None))):
            _fail("/api_name", f"a table named {patch['api_name']} already exists", f"表 {patch['api_name']} 已存在", "conflict")
        if "permissions" in patch:
            self.check_permissions(self.cache.get(self.session, row), patch["permissions"])
        row.api_name = definition["api_name"]
        row.definition = definition
        if "app" in patch:
            row.app_id = self.app_id(patch["app"])
        self.bump(row)
        self.audit("update", "table", row.id, {"patch": patch})
        return self.cache.get(self.session, row)

    def delete_table(self, ref) -> None:
        """Soft delete: the table and its data stay restorable for the retention period."""
        row = find_table_row(self.session, ref, include_children=False)
        refs = self.session.scalars(select(Field).where(Field.type == "link", Field.deleted_at.is_(None))).all()
        users = [f for f in refs if (f.definition.get("options") or {}).get("target") == row.api_name and f.table_id != row.id]
        if users:
            names = ", ".join(sorted({f.api_name for f in users}))
            raise Conflict(f"other tables link to {row.api_name} ({names}); delete those links first",
                           message_zh=f"其他表仍关联 {row.api_name}({names}),请先删除这些关联字段")
        now = utcnow()
        row.deleted_at = now
        for child in self.session.scalars(select(UserTable).where(UserTable.parent_table_id == row.id)):
            child.deleted_at = now
        self.bump(row)
        self.audit("delete", "table", row.id, {"api_name": row.api_name})

    def restore_table(self, table_id: int) -> TableSchema:
        row = self.session.scalar(select(UserTable).where(UserTable.id == table_id, UserTable.deleted_at.is_not(None)))
        if row is None:
            raise NotFound("deleted table", "已删除的表")
        if self.session.scalar(select(UserTable).where(UserTable.api_name == row.api_name, UserTable.deleted_at.is_(None))):
            raise Conflict(f"a table named {row.api_name} exists again; rename it first", message_zh=f"已有同名表 {row.api_name},请先改名")
        row.deleted_at = None
        for child in self.session.scalars(select(UserTable).where(UserTable.parent_table_id == row.id)):
            child.deleted_at = None
        self.bump(row)
        self.audit("restore", "table", row.id, {})
        return self.cache.get(self.session, row)

    # -- fields ----------------------------------------------------------------------
    def field_row(self, table: UserTable, ref) -> Field:
        q = select(Field).where(Field.table_id == table.id, Field.deleted_at.is_(None))
        q = q.where(Field.id == int(ref)) if str(ref).isdigit() else q.where(Field.api_name == ref)
        f = self.session.scalar(q)
        if f is None:
            raise NotFound(f"field '{ref}'", f"字段 '{ref}'")
        return f

    def add_field(self, ref, fdef: dict) -> TableSchema:
        validate("field", fdef)
        table = find_table_row(self.session, ref)
        existing = self.session.scalars(select(Field).where(Field.table_id == table.id, Field.deleted_at.is_(None))).all()
        if fdef["api_name"] in RESERVED:
            _fail("/api_name", f"'{fdef['api_name']}' is a reserved name", f"'{fdef['api_name']}' 是保留名称")
        if any(f.api_name == fdef["api_name"] for f in existing):
            _fail("/api_name", f"the table already has a field '{fdef['api_name']}'", f"表中已有字段 '{fdef['api_name']}'", "conflict")
        position = fdef.pop("position", None) if "position" in fdef else None
        pos = max([f.position for f in existing], default=-1) + 1 if position is None else position
        row = self._field_row(table, fdef, pos, "")
        old_schema = self.cache.get(self.session, table)
        spec = FieldSpec(id=row.id, api_name=row.api_name, type=ft.get(row.type), definition=row.definition, table_id=table.id)
        add_column(self.conn, old_schema.table, spec)
        self.bump(table)
        schema = self.cache.get(self.session, table)
        ensure_field_index(self.conn, schema, schema.fields[row.api_name])
        self._create_related(table, schema.fields[row.api_name])
        self._run_checkers(table, [row.api_name], "")
        for fn in CHECKERS.after_change:
            fn(self, schema, row.api_name)
        self.audit("create", "field", row.id, {"table": table.api_name, "api_name": row.api_name, "type": row.type})
        return schema

    def update_field(self, ref, field_ref, patch: dict, *, dry_run: bool = False, convert_report: dict | None = None) -> TableSchema:
        table = find_table_row(self.session, ref)
        row = self.field_row(table, field_ref)
        old_def = copy.deepcopy(row.definition)
        new_def = {**old_def, **patch}
        if "options" in patch and isinstance(patch["options"], dict) and isinstance(old_def.get("options"), dict) \
                and patch.get("type", row.type) == row.type:
            new_def["options"] = {**old_def["options"], **patch["options"]}
        new_def.pop("position", None)
        validate("field", new_def)
        if new_def["api_name"] != row.api_name:
            if new_def["api_name"] in RESERVED or self.session.scalar(select(Field).where(
                    Field.table_id == table.id, Field.api_name == new_def["api_name"], Field.deleted_at.is_(None))):
                _fail("/api_name", f"the name '{new_def['api_name']}' is taken or reserved", f"名称 '{new_def['api_name']}' 已被占用或为保留名称", "conflict")
        new_type = ft.get(new_def["type"])
        if new_def["type"] in ("single_select", "multi_select"):
            new_def["options"] = assign_choice_ids(new_def.get("options") or {"choices": []},
                                                   old_def.get("options") if row.type in ("single_select", "multi_select") else None)
        spec = FieldSpec(id=row.id, api_name=new_def["api_name"], type=new_type, definition=new_def, table_id=table.id, physical=row.physical)
        problems = new_type.check_definition(spec, {})
        if problems:
            p, en, zh = problems[0]
            _fail(p, en, zh)
        if row.type in ("sub_table",) or new_def["type"] == "sub_table":
            if new_def["type"] != row.type:
                _fail("/type", "a sub-table cannot change type", "子表字段不能更改类型")
        schema = self.cache.get(self.session, table)
        old_spec = schema.fields[row.api_name]
        report = None
        if new_def["type"] != row.type or _storage_changes(old_spec, spec):
            report = self._convert_column(schema, old_spec, spec, dry_run=dry_run)
            if convert_report is not None:
                convert_report.update(report)
            if dry_run:
                return schema
        elif row.type in ("single_select", "multi_select"):
            self._check_removed_choices(schema, old_spec, spec, patch.get("remove_in_use", False))
        if dry_run:
            return schema
        if new_def["api_name"] != row.api_name and (table.definition or {}).get("permissions"):
            table.definition = {**table.definition, "permissions": permission_checks.renamed(
                table.definition["permissions"], row.api_name, new_def["api_name"])}
        row.api_name = new_def["api_name"]
        row.type = new_def["type"]
        row.definition = new_def
        if "position" in patch:
            row.position = int(patch["position"])
        if report:
            row.physical = report["column"]
        self.bump(table)
        new_schema = self.cache.get(self.session, table)
        if new_schema.fields[row.api_name].type.storage == "column":
            ensure_field_index(self.conn, new_schema, new_schema.fields[row.api_name])
        self._run_checkers(table, [row.api_name], "")
        for fn in CHECKERS.after_change:
            fn(self, new_schema, row.api_name)
        self.audit("update", "field", row.id, {"table": table.api_name, "before": old_def, "after": new_def,
                                                "conversion": {k: v for k, v in (report or {}).items() if k != "column"}})
        return new_schema

    def _check_removed_choices(self, schema, old_spec, new_spec, force: bool):
        kept = {c["id"] for c in new_spec.options.get("choices", [])}
        removed = [c for c in old_spec.options.get("choices", []) if c["id"] not in kept]
        if not removed or force:
            return
        col = schema.table.c[old_spec.column_name]
        in_use = []
        for c in removed:
            cond = col == c["id"] if old_spec.type.name == "single_select" else col.like(f'%"{c["id"]}"%')
            n = self.conn.execute(select(func.count()).select_from(schema.table).where(cond)).scalar_one()
            if n:
                in_use.append(f"{c['label']} ({n})")
        if in_use:
            raise Conflict(f"options still in use by records: {', '.join(in_use)}; change those records first",
                           message_zh=f"以下选项仍被记录使用: {', '.join(in_use)};请先修改这些记录")

    def _convert_column(self, schema: TableSchema, old: FieldSpec, new: FieldSpec, *, dry_run: bool) -> dict:
        """Type change: values are converted into a new column; the old column is kept, so a
        value that could not convert is reported and never lost."""
        if new.type.storage != "column" or new.type.column_type(new) is None or new.type.computed:
            target_col = None
        else:
            n = 1
            base = f"f_{new.id}_r"
            existing = set(schema.table.c.keys())
            while f"{base}{n}" in existing or (old.physical and old.physical == f"{base}{n}"):
                n += 1
            target_col = f"{base}{n}"
        failures, converted, total = [], 0, 0
        new_spec = FieldSpec(id=new.id, api_name=new.api_name, type=new.type, definition=new.definition, table_id=new.table_id, physical=target_col)
        if target_col and not dry_run:
            add_column(self.conn, schema.table, new_spec)
        if old.type.storage == "column" and old.type.column_type(old) is not None and target_col:
            t = schema.table
            col = t.c[old.column_name]
            last = 0
            from sqlalchemy import Column, MetaData, Table
            tmp = Table(t.name, MetaData(), Column("id", t.c.id.type, primary_key=True),
                        Column(target_col, new.type.column_type(new)))
            while True:
                rows = self.conn.execute(select(t.c.id, col).where(t.c.id > last).order_by(t.c.id).limit(2000)).all()
                if not rows:
                    break
                updates = []
                for rid, value in rows:
                    last = rid
                    if value is None:
                        continue
                    total += 1
                    shown = old.type.from_storage(value, old, self.ctx)
                    try:
                        v = new.type.convert(shown, old, new_spec, self.ctx)
                        converted += 1
                        updates.append({"_id": rid, "v": v})
                    except FieldValueError as e:
                        failures.append({"record_id": rid, "value": shown, "error": e.message, "error_zh": e.message_zh})
                if updates and not dry_run:
                    from sqlalchemy import bindparam
                    self.conn.execute(update(tmp).where(tmp.c.id == bindparam("_id")).values({target_col: bindparam("v")}), updates)
        return {"column": target_col, "values": total, "converted": converted, "failed": len(failures),
                "failures": failures[:200], "old_column_kept": old.column_name}

    def delete_field(self, ref, field_ref) -> TableSchema:
        table = find_table_row(self.session, ref)
        row = self.field_row(table, field_ref)
        schema = self.cache.get(self.session, table)
        dependents = [f.api_name for f in schema.fields.values() if f.type.name in ("lookup", "rollup")
                      and f.options.get("through") == row.api_name]
        if dependents:
            raise Conflict(f"fields {', '.join(dependents)} depend on {row.api_name}; delete them first",
                           message_zh=f"字段 {', '.join(dependents)} 依赖 {row.api_name},请先删除它们")
        scoping = permission_checks.roles_scoping_on((table.definition or {}).get("permissions"), row.api_name)
        if scoping:  # the role's every read would fail
            raise Conflict(f"the row scope of {', '.join(scoping)} uses {row.api_name}; change the table's permissions first",
                           message_zh=f"{', '.join(scoping)} 的行范围使用了 {row.api_name},请先修改表的权限")
        row.deleted_at = utcnow()
        self.bump(table)
        self.audit("delete", "field", row.id, {"table": table.api_name, "api_name": row.api_name})
        return self.cache.get(self.session, table)

    def restore_field(self, ref, field_id: int) -> TableSchema:
        table = find_table_row(self.session, ref)
        row = self.session.scalar(select(Field).where(Field.table_id == table.id, Field.id == field_id, Field.deleted_at.is_not(None)))
        if row is None:
            raise NotFound("deleted field", "已删除的字段")
        if self.session.scalar(select(Field).where(Field.table_id == table.id, Field.api_name == row.api_name, Field.deleted_at.is_(None))):
            raise Conflict(f"a field named {row.api_name} exists again; rename it first", message_zh=f"已有同名字段 {row.api_name}")
        row.deleted_at = None
        self.bump(table)
        self.audit("restore", "field", row.id, {"table": table.api_name})
        return self.cache.get(self.session, table)

    # -- views -----------------------------------------------------------------------
    def _check_view(self, schema: TableSchema, d: dict):
        validate("view", d)
        names = set(schema.fields) | set(schema.system_specs)
        for i, f in enumerate(d.get("fields", [])):
            if f not in names:
                _fail(f"/fields/{i}", f"no field '{f}' in {schema.api_name}", f"{schema.api_name} 中没有字段 '{f}'")
        for i, f in enumerate(d.get("group_by", [])):  # rows grouped by (the grid shows the first)
            if f not in schema.fields or not schema.fields[f].type.has_column(schema.fields[f]):
                _fail(f"/group_by/{i}", f"cannot group by '{f}': no such field with one value per record in {schema.api_name}",
                      f"不能按 '{f}' 分组:{schema.api_name} 中没有这个单值字段")
        from .storage.query import Compiler

        resolve = lambda ref: self.schema(ref)  # noqa: E731
        comp = Compiler(resolve, self.ctx)
        try:
            validate_filter(d.get("filter"))
            comp.where(schema, d.get("filter"))
            comp.sort_columns(schema, d.get("sorts", []))
        except ft.FilterError as e:
            _fail("/filter", e.message, e.message_zh)
        for key in ("kanban", "calendar"):
            if key in d:
                fname = d[key]["field"]
                spec = schema.fields.get(fname)
                want = ("single_select",) if key == "kanban" else ("date", "datetime", "created_time", "modified_time")
                if spec is None or spec.type.name not in want:
                    _fail(f"/{key}/field", f"{key} needs a {' or '.join(want)} field; '{fname}' is not one",
                          f"{key} 需要 {'/'.join(want)} 字段,'{fname}' 不是")

    def _index_for_view(self, schema: TableSchema, d: dict):
        """Saved views get an index on their equality filters followed by their first sort."""
        ensure_composite_index(self.conn, schema, page_index_columns(schema, d.get("filter"), d.get("sorts"))[:3])

    def create_view(self, ref, d: dict) -> View:
        schema = self.schema(ref)
        self._check_view(schema, d)
        if self.session.scalar(select(View).where(View.table_id == schema.id, View.api_name == d["api_name"])):
            _fail("/api_name", f"the table already has a view '{d['api_name']}'", f"表中已有视图 '{d['api_name']}'", "conflict")
        pos = (self.session.scalar(select(func.max(View.position)).where(View.table_id == schema.id)) or 0) + 1
        v = View(tenant_id=self.tenant_id, table_id=schema.id, api_name=d["api_name"], type=d["type"], definition=d, position=pos)
        self.session.add(v)
        self.session.flush()
        self._index_for_view(schema, d)
        self.audit("create", "view", v.id, {"table": schema.api_name, "api_name": d["api_name"]})
        return v

    def view_row(self, schema: TableSchema, ref) -> View:
        q = select(View).where(View.table_id == schema.id)
        q = q.where(View.id == int(ref)) if str(ref).isdigit() else q.where(View.api_name == ref)
        v = self.session.scalar(q)
        if v is None:
            raise NotFound(f"view '{ref}'", f"视图 '{ref}'")
        return v

    def update_view(self, ref, view_ref, patch: dict) -> View:
        schema = self.schema(ref)
        v = self.view_row(schema, view_ref)
        d = {k: x for k, x in {**v.definition, **patch}.items() if x is not None}  # null removes a property (a filter, roles)
        self._check_view(schema, d)
        v.definition, v.api_name, v.type = d, d["api_name"], d["type"]
        self.session.flush()
        self._index_for_view(schema, d)
        self.audit("update", "view", v.id, {"patch": patch})
        return v

    def delete_view(self, ref, view_ref):
        schema = self.schema(ref)
        v = self.view_row(schema, view_ref)
        self.audit("delete", "view", v.id, {"definition": v.definition})
        self.session.delete(v)

    # -- dashboards ------------------------------------------------------------------
    def check_dashboard(self, d: dict):
        validate("dashboard", d)
        for i, w in enumerate(d.get("widgets", [])):
            try:
                schema = self.schema(w["table"])
            except NotFound:
                _fail(f"/widgets/{i}/table", f"no table named {w['table']}", f"没有名为 {w['table']} 的表")
            from .storage.aggregate import check_aggregate

            try:
                check_aggregate(schema, self.schema, self.ctx, w)
            except ApiError as e:
                inner = e.errors[0]["pointer"] if e.errors else ""
                _fail(f"/widgets/{i}{inner}", e.message, e.message_zh)

    def create_dashboard(self, d: dict) -> Dashboard:
        self.check_dashboard(d)
        if self.session.scalar(select(Dashboard).where(Dashboard.api_name == d["api_name"])):
            _fail("/api_name", f"a dashboard named {d['api_name']} already exists", f"仪表盘 {d['api_name']} 已存在", "conflict")
        db = Dashboard(tenant_id=self.tenant_id, api_name=d["api_name"], definition=d, app_id=self.app_id(d.get("app")))
        self.session.add(db)
        self.session.flush()
        self.audit("create", "dashboard", db.id, {"api_name": d["api_name"]})
        return db


def _storage_changes(old: FieldSpec, new: FieldSpec) -> bool:
    """Same type, but a column type that changes (currency decimals, a formula's result)."""
    if old.type.storage != "column" or new.type.storage != "column":
        return False
    a, b = old.type.column_type(old), new.type.column_type(new)
    if a is None or b is None:
        return False
    return repr(a) != repr(b)
