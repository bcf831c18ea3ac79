"""The /api/v1 blueprint: authentication, tenant resolution, one transaction per request,
and errors as JSON. Tenant isolation happens here once: every tenant route sits under
``/tenants/<tenant>/`` and gets a session scoped to that tenant after the membership (or
the token's tenant) is checked."""
from __future__ import annotations

import functools
import json
import logging
import secrets
import uuid
import weakref

from flask import Blueprint, current_app, g, jsonify, request, session
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from .. import user_sessions
from ..auth import token_hash
from ..errors import ApiError, Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed, field_error
from ..fields.base import FieldValueError, FilterError
from ..models import ApiToken, Membership, Tenant, User, utcnow
from .. import metagen
from . import json_body
from ..storage.access import ROLE_RANK, Actor
from ..storage.records import ONE_STATEMENT
from ..tenancy import tenant_session

log = logging.getLogger("zhongshu.api")
api = Blueprint("api_v1", __name__, url_prefix="/api/v1")
SAFE = {"GET", "HEAD", "OPTIONS"}
#: POST routes that only read (queries in a body): no write lock on SQLite
READ_ONLY_POSTS = {"api_v1.query_records", "api_v1.aggregate_records"}
PUBLIC_ENDPOINTS = {"api_v1.login", "api_v1.schema_doc", "api_v1.schema_index", "api_v1.openapi", "api_v1.field_types", "api_v1.health"}


def platform():
    return current_app.extensions["zhongshu"]


def body() -> dict | list:
    """The JSON body, or a 400 that says what is wrong with it."""
    if not request.data:
        raise ApiError("the request needs a JSON body", message_zh="请求需要 JSON 内容", code="bad_json")
    try:
        data = json_body.loads(request.data)  # orjson where it reads what json.loads reads
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(f"the body is not valid JSON: {e}", message_zh=f"请求内容不是有效的 JSON: {e}", code="bad_json") from None
    return data


def body_object() -> dict:
    data = body()
    if not isinstance(data, dict):
        raise ApiError("the body must be a JSON object {...}", message_zh="请求内容应为 JSON 对象 {...}", code="bad_json")
    return data


def require_role(role: str):
    if not g.actor.at_least(role):
        raise Forbidden(f"this needs the {role} role or higher", message_zh=f"需要 {role} 或更高角色")


def ok(data, status: int = 200):
    resp = jsonify(data)
    resp.status_code = status
    return resp


# -- authentication ----------------------------------------------------------------------

def _system_session():
    """One tenant-less session for everything before the request's own (auth, tenant)."""
    s = getattr(g, "_sys_db", None)
    if s is None:
        s = g._sys_db = platform().open_session(None)
    return s


def _authenticate():
    g.user = None
    g.token = None
    g.browser_session = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        raw = header[7:].strip()
        slug = getattr(g, "tenant_slug", None)
        if slug is not None:
            # A tenant route: the token, its user, the tenant and the user's membership in
            # one query, on the request's own session (no second transaction).
            s = g.db = _request_session(None)
            row = s.connection().execute(_token_and_tenant_query(), {"h": token_hash(raw), "slug": slug}).first()
            tok, user, tenant, m = (None, None, None, None) if row is None else _snapshots(row, _JOINED)
            g.prefetched_tenant = (tenant, m)
        else:
            row = _system_session().execute(_token_query(), {"h": token_hash(raw)}).first()
            tok, user = row if row is not None else (None, None)
        if tok is None or tok.revoked_at is not None or (tok.expires_at and tok.expires_at < utcnow()):
            raise Unauthorized("the API token is invalid, expired or revoked", message_zh="API 令牌无效、已过期或已吊销")
        if user is None or user.disabled:
            raise Unauthorized("the token's user is disabled", message_zh="令牌所属用户已停用")
        g.user, g.token = user, tok
        return
    raw = session.get("sid")
    if isinstance(raw, str) and raw:
        _authenticate_browser_session(raw)


_QUERIES: dict = {}


def _token_query():
    """The token and its user (built once; the hash is bound at execution)."""
    q = _QUERIES.get("token")
    if q is None:
        q = _QUERIES["token"] = (select(ApiToken, User).outerjoin(User, User.id == ApiToken.user_id)
                                 .where(ApiToken.token_hash == bindparam("h")))
    return q


class Snapshot:
    """The column values of a row (token, user, tenant, membership) as plain attributes:
    what a request reads of them, without an ORM object per request."""

    def __init__(self, values: dict):
        self.__dict__.update(values)

    def __repr__(self):
        return f"Snapshot({self.__dict__!r})"


#: the models read by the token + tenant query, each with the label prefix of its columns
_JOINED = ((ApiToken, "k"), (User, "u"), (Tenant, "n"), (Membership, "m"))


def _layout(joined) -> tuple:
    """(column keys, start, end, position of the id) per model of ``joined``, in the
    order the query selects them: snapshots then slice the row (80 µs a request less than
    a label lookup per column)."""
    out, start = [], 0
    for model, _prefix in joined:
        keys = tuple(c.key for c in model.__table__.c)
        out.append((keys, start, start + len(keys), start + keys.index("id")))
        start += len(keys)
    return tuple(out)


_LAYOUTS: dict = {}


def _snapshots(row, joined) -> list:
    layout = _LAYOUTS.get(joined)
    if layout is None:
        layout = _LAYOUTS[joined] = _layout(joined)
    out = []
    for keys, start, end, id_at in layout:
        if row[id_at] is None:  # outer join found nothing
            out.append(None)
        else:
            out.append(Snapshot(dict(zip(keys, row[start:end]))))
    return out


def _token_and_tenant_query():
    q = _QUERIES.get("token_tenant")
    if q is None:
        k, u, n, mm = (model.__table__ for model, _ in _JOINED)
        cols = [c.label(f"{prefix}_{c.key}") for model, prefix in _JOINED for c in model.__table__.c]
        q = _QUERIES["token_tenant"] = (
            select(*cols).select_from(k)
            .outerjoin(u, u.c.id == k.c.user_id)
            .outerjoin(n, n.c.slug == bindparam("slug"))
            .outerjoin(mm, (mm.c.tenant_id == n.c.id) & (mm.c.user_id == k.c.user_id))
            .where(k.c.token_hash == bindparam("h")))
    return q


def _tenant_query():
    q = _QUERIES.get("tenant")
    if q is None:
        q = _QUERIES["tenant"] = select(Tenant, Membership).outerjoin(
            Membership, (Membership.tenant_id == Tenant.id) & (Membership.user_id == bindparam("uid"))
        ).where(Tenant.slug == bindparam("slug"))
    return q


def _writes() -> bool:
    return request.method not in SAFE and request.endpoint not in READ_ONLY_POSTS


#: Routes that only read records. On PostgreSQL they run without a transaction of their own
#: (autocommit): no BEGIN and no COMMIT round trip, two of the five a page cost. Under
#: PostgreSQL's READ COMMITTED every statement takes its own snapshot inside a transaction
#: too, so these routes read exactly what they read before. SQLite keeps its BEGIN (no
#: round trip there, and a page and its count then share one snapshot).
AUTOCOMMIT_READS = {"api_v1.list_records", "api_v1.get_record", "api_v1.view_records", "api_v1.query_records",
                    "api_v1.aggregate_records", "api_v1.record_history"}
_AUTOCOMMIT_ENGINES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


#: Routes whose usual write on PostgreSQL is one statement (a record's create: the row, its
#: autonumbers and its history row in one INSERT): their session starts in autocommit as
#: well, and that statement is atomic on its own -- no BEGIN and no COMMIT round trip, two
#: of a create's five. Any write of more than that statement (a batch, sub-table rows,
#: links, rules) opens its transaction first (``Records._begin``), as before.
ONE_STATEMENT_WRITES = {"api_v1.create_records"}


def _request_session(tenant_id):
    """The request's own session: autocommit for the read routes above on PostgreSQL,
    otherwise one transaction (BEGIN IMMEDIATE on SQLite for writes)."""
    zs = platform()
    if zs.dialect == "postgresql":
        reads = request.endpoint in AUTOCOMMIT_READS and request.method in SAFE | {"POST"}
        one_statement = not reads and request.endpoint in ONE_STATEMENT_WRITES and request.method == "POST"
        if reads or one_statement:
            engine = _AUTOCOMMIT_ENGINES.get(zs)
            if engine is None:
                engine = _AUTOCOMMIT_ENGINES[zs] = zs.engine.execution_options(isolation_level="AUTOCOMMIT")
            # the platform's sessionmaker, so its commit and rollback listeners apply
            s = tenant_session(functools.partial(zs.Session, bind=engine), tenant_id)
            if one_statement:
                s.info[ONE_STATEMENT] = True
            return s
    return zs.open_session(tenant_id, write=_writes())


def _authenticate_browser_session(raw: str):
    """The cookie's token names a row of user_sessions; one query reads it with its user."""
    found = user_sessions.find(_system_session(), raw)
    if found is None:
        return
    us, user = found
    if not user_sessions.is_live(us):
        return
    if user.disabled or session.get("pw") != user_sessions.password_fingerprint(user):
        # disabled, or the password changed since this login: the session is over for good
        _system_write(lambda s: user_sessions.revoke_all(s, user.id) if user.disabled else user_sessions.revoke(s, us.id))
        return
    if user_sessions.needs_touch(us):
        _system_write(lambda s: user_sessions.touch(s, us.id))
    g.user, g.browser_session = user, us
    if request.method not in SAFE:
        sent = request.headers.get("X-CSRF-Token", "")
        if not sent or not secrets.compare_digest(sent, session.get("csrf", "")):
            raise Forbidden("missing or wrong X-CSRF-Token header", message_zh="缺少或错误的 X-CSRF-Token 请求头", code="csrf")


def _system_write(change):
    """A short write of session bookkeeping; a busy database must not fail the request."""
    try:
        with platform().tenant_session(None, write=True) as s:
            change(s)
    except OperationalError as e:
        log.warning("could not update user_sessions: %s", e)


@api.before_request
def _before():
    g.db = None
    public = request.endpoint in PUBLIC_ENDPOINTS
    limit = current_app.config.get("JSON_MAX_BYTES", 16 * 1024 * 1024)
    if request.mimetype != "multipart/form-data" and (request.content_length or 0) > limit:
        raise ApiError(f"the request body is larger than {limit // (1024 * 1024)} MB", message_zh=f"请求内容超过 {limit // (1024 * 1024)} MB",
                       status=413, code="too_large")
    try:
        _authenticate()
    except ApiError:
        if not public:
            raise
        g.user = g.token = None  # public routes ignore stale or wrong credentials
    if public:
        return
    if g.user is None:
        raise Unauthorized("log in or send an API token (Authorization: Bearer ...)", message_zh="请登录或提供 API 令牌")


@api.url_value_preprocessor
def _tenant_slug(endpoint, values):
    if values and "tenant" in values:
        g.tenant_slug = values.pop("tenant")


@api.before_request
def _tenant_access():
    """Resolves /tenants/<tenant>/ once for every tenant route: the user must be a member
    (or the token must belong to that tenant); otherwise 404, never a hint it exists."""
    slug = getattr(g, "tenant_slug", None)
    if slug is None:
        return
    user = g.user
    pre = getattr(g, "prefetched_tenant", None)
    if pre is not None:
        tenant, m = pre
    else:
        row = _system_session().execute(_tenant_query(), {"uid": user.id, "slug": slug}).first()
        tenant, m = (row if row is not None else (None, None))
    _close_system_session()
    if tenant is None or (g.token is not None and g.token.tenant_id != tenant.id):
        raise NotFound("tenant", "租户")
    if m is None and not user.is_superuser:
        raise NotFound("tenant", "租户")
    if m is not None and m.disabled_at is not None:
        if not user.is_superuser:  # a disabled membership: sessions and tokens alike, from this request on
            raise Forbidden("your access to this workspace is disabled; ask its owner or an administrator",
                            message_zh="你在此工作区的访问已被停用，请联系所有者或管理员", code="member_disabled")
        m = None  # an instance administrator's access never depended on the membership
    role = "owner" if m is None else m.role
    if g.token is not None and g.token.role and ROLE_RANK[g.token.role] < ROLE_RANK[role]:
        role = g.token.role
    g.tenant = tenant
    g.actor = Actor(user_id=user.id, role=role, attributes=(m.attributes if m else {}) or {},
                    token_id=g.token.id if g.token else None)
    if g.db is None:
        g.db = _request_session(tenant.id)
    else:
        g.db.info["tenant_id"] = tenant.id  # from here on the request's session sees this tenant only
    # The metadata stamp came with the tenant row: the request's caches need no query of their own.
    metagen.prime(g.db, tenant.id, tenant.meta_stamp)


def db():
    return g.db


def records():
    return platform().records(g.db, g.tenant, g.actor)


def metadata():
    return platform().metadata(g.db, g.tenant, g.actor)


@api.after_request
def _commit(response):
    s = getattr(g, "db", None)
    if s is None:
        return response
    g.db = None
    try:
        if response.status_code < 400:
            s.commit()
        else:
            s.rollback()
    except IntegrityError as e:
        s.rollback()
        log.info("integrity error on commit: %s", e)
        err = Conflict("the change conflicts with existing data (a unique value is already taken)",
                       message_zh="修改与现有数据冲突(唯一值已被占用)")
        response = jsonify(err.to_dict())
        response.status_code = 409
    finally:
        s.close()
    return response


def _close_system_session():
    s = getattr(g, "_sys_db", None)
    if s is not None:
        g._sys_db = None
        s.close()  # detaches g.user / g.token with their loaded values (rollback would expire them)


@api.teardown_request
def _close(exc):
    _close_system_session()
    s = getattr(g, "db", None)
    if s is not None:
        s.rollback()
        s.close()
        g.db = None


# -- errors ------------------------------------------------------------------------------

def _error_response(err: ApiError):
    resp = jsonify(err.to_dict())
    resp.status_code = err.status
    if err.status == 429 and "retry_after" in err.extra:
        resp.headers["Retry-After"] = str(err.extra["retry_after"])
    return resp


@api.errorhandler(ApiError)
def _api_error(err: ApiError):
    return _error_response(err)


@api.errorhandler(FilterError)
def _filter_error(err: FilterError):
    return _error_response(ApiError(err.message, message_zh=err.message_zh, code="bad_filter"))


@api.errorhandler(FieldValueError)
def _value_error(err: FieldValueError):
    return _error_response(ValidationFailed(err.message, message_zh=err.message_zh))


@api.errorhandler(IntegrityError)
def _integrity(err):
    log.info("integrity error: %s", err)
    return _error_response(Conflict("the change conflicts with existing data (a unique value is already taken)",
                                    message_zh="修改与现有数据冲突(唯一值已被占用)"))


@api.errorhandler(HTTPException)
def _http_error(err: HTTPException):
    words = {404: ("no such API route", "没有这个接口"), 405: ("this method is not allowed here", "此接口不支持该请求方法"),
             413: ("the request body is too large", "请求内容过大"), 400: ("bad request", "请求有误")}
    en, zh = words.get(err.code, (err.description or err.name, err.description or err.name))
    e = ApiError(en, message_zh=zh, status=err.code, code=err.name.lower().replace(" ", "_"))
    return _error_response(e)


@api.errorhandler(OverflowError)
def _too_big_id(err):
    # An id past 64 bits names nothing that can exist.
    return _error_response(NotFound("resource", "资源"))


@api.errorhandler(OperationalError)
def _db_busy(err):
    log.warning("database unavailable or busy: %s", err)
    e = ApiError("the database is busy or unavailable; try again shortly", message_zh="数据库繁忙或不可用,请稍后重试",
                 status=503, code="unavailable", retry_after=2)
    resp = _error_response(e)
    resp.headers["Retry-After"] = "2"
    return resp


@api.errorhandler(Exception)
def _unexpected(err):
    error_id = uuid.uuid4().hex[:12]  # made here: the other requests need none
    log.exception("unexpected error %s on %s %s", error_id, request.method, request.path)
    e = ApiError(f"an unexpected error happened; it was logged with id {error_id}",
                 message_zh=f"发生意外错误,已记录,编号 {error_id}", status=500, code="internal_error", error_id=error_id)
    return _error_response(e)


def int_arg(name: str, default: int | None = None, lo: int = 0, hi: int = 10**9) -> int | None:
    v = request.args.get(name)
    if v is None or v == "":
        return default
    try:
        n = int(v)
    except ValueError:
        raise ApiError(f"'{name}' must be a whole number", message_zh=f"'{name}' 应为整数", code="bad_parameter") from None
    if not lo <= n <= hi:
        raise ApiError(f"'{name}' must be between {lo} and {hi}", message_zh=f"'{name}' 应在 {lo} 到 {hi} 之间", code="bad_parameter")
    return n


def json_arg(name: str):
    v = request.args.get(name)
    if v is None or v == "":
        return None
    try:
        return json.loads(v)
    except ValueError:
        raise ApiError(f"'{name}' must be JSON", message_zh=f"'{name}' 应为 JSON", code="bad_parameter") from None


def version_arg(data: dict | None = None) -> int | None:
    raw = request.headers.get("If-Match")
    if raw:
        raw = raw.strip().strip('"').removeprefix("W/").strip('"')
        if not raw.isdigit():
            raise ApiError("If-Match must be the record version", message_zh="If-Match 应为记录版本号", code="bad_parameter")
        return int(raw)
    if data is not None and "version" in data:
        v = data["version"]
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValidationFailed("version must be a whole number", message_zh="version 应为整数",
                                   errors=[field_error("/version", "must be a whole number", "应为整数")])
        return v
    return None
