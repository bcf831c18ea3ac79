"""Comments on a record: the conversation next to its history in the record form.

Who may do what: anyone who can read the record reads its comments; members and above
add comments (a viewer only reads); authors edit and delete their own comments; admins and
owners also delete anyone's. The record is checked first on every call (table access, row
scope, not deleted), so a record the caller cannot see has no comments either (404).
Deleting keeps the row with ``deleted_at`` set; it no longer shows.
"""
from __future__ import annotations

from flask import g
from sqlalchemy import select

from ..errors import Forbidden, NotFound, ValidationFailed, field_error
from ..models import RecordComment, User, utcnow
from .base import api, body_object, int_arg, ok, records
from .records_routes import _record_id

MAX_BODY = 5000
BASE = "/tenants/<tenant>/tables/<table>/records/<record_id>/comments"


def _readable_record(table: str, record_id: str):
    """(records, schema, id) of a record the caller can read, else 404."""
    recs = records()
    schema = recs.schema(table)
    rid = _record_id(record_id)
    recs.get(schema, rid, fields=[])
    return recs, schema, rid


def _text(data: dict) -> str:
    unknown = set(data) - {"body"}
    if unknown:
        k = sorted(unknown)[0]
        raise ValidationFailed(f"unknown property '{k}'", message_zh=f"未知属性 '{k}'",
                               errors=[field_error(f"/{k}", "unknown property", "未知属性")])
    text = data.get("body")
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed("the comment is empty", message_zh="评论内容为空",
                               errors=[field_error("/body", "write something", "请填写内容", code="required")])
    text = text.strip()
    if len(text) > MAX_BODY:
        raise ValidationFailed(f"a comment has at most {MAX_BODY} characters ({len(text)} given)",
                               message_zh=f"评论最多 {MAX_BODY} 个字符(当前 {len(text)} 个)",
                               errors=[field_error("/body", f"at most {MAX_BODY} characters", f"最多 {MAX_BODY} 个字符",
                                                   code="too_long")])
    return text


def _may_add():
    if not g.actor.at_least("member"):
        raise Forbidden("viewers can read comments but not write them", message_zh="查看者只能阅读评论,不能发表")


def _comment(schema, rid: int, comment_id: int) -> RecordComment:
    c = g.db.scalar(select(RecordComment).where(RecordComment.id == comment_id, RecordComment.table_id == schema.id,
                                                RecordComment.record_id == rid, RecordComment.deleted_at.is_(None)))
    if c is None or c.tenant_id != g.tenant.id:
        raise NotFound(f"comment {comment_id}", f"评论 {comment_id}")
    return c


def _as_json(recs, schema, c: RecordComment, names: dict) -> dict:
    ts = schema.system_specs["created_at"]
    at = lambda v: ts.type.from_storage(v, ts, recs.ctx) if v else None  # noqa: E731  (tenant's timezone, like history)
    own = c.user_id == g.user.id
    return {"id": c.id, "record_id": c.record_id, "user_id": c.user_id, "user_name": names.get(c.user_id), "body": c.body,
            "created_at": at(c.created_at), "edited_at": at(c.edited_at),
            "can_edit": own and g.actor.at_least("member"),
            "can_delete": (own and g.actor.at_least("member")) or g.actor.at_least("admin")}


def _names(user_ids) -> dict:
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    return {u.id: (u.name or u.email) for u in g.db.scalars(select(User).where(User.id.in_(ids)))}


@api.get(BASE)
def list_comments(table, record_id):
    recs, schema, rid = _readable_record(table, record_id)
    limit = int_arg("limit", 200, 1, 500)
    rows = list(g.db.scalars(select(RecordComment).where(
        RecordComment.table_id == schema.id, RecordComment.record_id == rid, RecordComment.deleted_at.is_(None))
        .order_by(RecordComment.id.desc()).limit(limit + 1)))
    has_more = len(rows) > limit
    rows = list(reversed(rows[:limit]))  # the latest ones, oldest first like a conversation
    names = _names(c.user_id for c in rows)
    return ok({"comments": [_as_json(recs, schema, c, names) for c in rows], "has_more": has_more})


@api.post(BASE)
def add_comment(table, record_id):
    data = body_object()
    recs, schema, rid = _readable_record(table, record_id)
    _may_add()
    c = RecordComment(tenant_id=g.tenant.id, table_id=schema.id, record_id=rid, user_id=g.user.id, body=_text(data),
                      created_at=utcnow())
    g.db.add(c)
    g.db.flush()
    return ok({"comment": _as_json(recs, schema, c, _names([c.user_id]))}, 201)


@api.patch(BASE + "/<int:comment_id>")
def edit_comment(table, record_id, comment_id):
    data = body_object()
    recs, schema, rid = _readable_record(table, record_id)
    c = _comment(schema, rid, comment_id)
    if c.user_id != g.user.id:
        raise Forbidden("only its author can edit a comment", message_zh="只有作者可以编辑评论")
    _may_add()
    c.body = _text(data)
    c.edited_at = utcnow()
    g.db.flush()
    return ok({"comment": _as_json(recs, schema, c, _names([c.user_id]))})


@api.delete(BASE + "/<int:comment_id>")
def delete_comment(table, record_id, comment_id):
    recs, schema, rid = _readable_record(table, record_id)
    c = _comment(schema, rid, comment_id)
    own = c.user_id == g.user.id and g.actor.at_least("member")
    if not own and not g.actor.at_least("admin"):
        raise Forbidden("only its author or an admin can delete a comment", message_zh="只有作者或管理员可以删除评论")
    c.deleted_at = utcnow()
    g.db.flush()
    return ok({"ok": True})
