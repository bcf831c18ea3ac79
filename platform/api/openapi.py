"""``GET /api/v1/openapi.json``: an OpenAPI 3.1 description of the whole v1 API.

The ``paths`` are generated from the Flask URL map at request time, so every route under
``/api/v1`` appears, including routes added later by other modules. Each operation is
described from ``OPERATIONS`` below, keyed by endpoint name; an endpoint that has no entry
gets a generic description (``x-undocumented: true``) and the test suite lists it, so that
somebody writes one.

The published JSON Schemas of definitions (table, field, view, dashboard, filter, app,
permissions) are embedded under ``components.schemas`` with their cross-references
rewritten to point inside this document, so the document is self-contained and valid
offline; each also names the URL where the original is served.
"""
from __future__ import annotations

import copy
import re

from flask import current_app, request

from ..validation import all_schema_names, schema
from .base import PUBLIC_ENDPOINTS, SAFE, api, ok

OPENAPI_VERSION = "3.1.0"
PREFIX = "/api/v1"
IGNORED_METHODS = {"HEAD", "OPTIONS"}

# -- building blocks ---------------------------------------------------------------------


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(props: dict | None = None, required: list | None = None, **extra) -> dict:
    d: dict = {"type": "object", "properties": props or {}}
    if required:
        d["required"] = required
    d.update(extra)
    return d


def arr(items: dict, **extra) -> dict:
    return {"type": "array", "items": items, **extra}


STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
OK = obj({"ok": {"const": True}}, ["ok"])
OK_RESTORABLE = obj({"ok": {"const": True}, "restorable": BOOL}, ["ok"])
ROLE = {"enum": ["owner", "admin", "builder", "member", "viewer"]}
TIMESTAMP = {"type": "string", "format": "date-time"}
LOCALE = {"type": "string", "pattern": "^[a-z]{2}(-[A-Z]{2})?$", "description": "a locale such as zh-CN or en", "example": "zh-CN"}
TENANT_NAME = {"type": "string", "minLength": 1, "maxLength": 100}

# Query parameters shared by several operations, referenced by name from OPERATIONS.
QUERY_PARAMS: dict[str, dict] = {
    "filter": {"description": "A filter as JSON (see the `filter` schema), URL-encoded, e.g. "
                              "`{\"field\":\"status\",\"op\":\"=\",\"value\":\"已付款\"}`.",
               "schema": STR, "example": '{"field":"status","op":"=","value":"已付款"}'},
    "sort": {"description": "Comma-separated field names, `-` prefix for descending, at most 10: `-created_at,amount`. "
                            "A many-to-one link may be followed one step: `customer.level`.",
             "schema": STR, "example": "-created_at,amount"},
    "q": {"description": "Full-text search over the searchable (text-like) fields; a number also matches the record id.",
          "schema": {"type": "string", "maxLength": 200}},
    "limit": {"description": "Page size.", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}},
    "cursor": {"description": "`next_cursor` from the previous page (keyset pagination); keep the same filter and sort.",
               "schema": STR},
    "offset": {"description": "Rows to skip (ignored when `cursor` is given). Prefer `cursor` for deep pages.",
               "schema": {"type": "integer", "minimum": 0, "maximum": 10000000}},
    "fields": {"description": "Comma-separated field names to return (system fields are always returned).",
               "schema": STR, "example": "order_no,status,amount"},
    "count": {"description": "`true` adds `total`, the number of matching records.",
              "schema": {"type": "string", "enum": ["true", "1", "false", "0"]}},
    "deleted": {"description": "`include` also returns soft-deleted records, `only` returns only them.",
                "schema": {"type": "string", "enum": ["include", "only"]}},
    "deleted_one": {"name": "deleted", "description": "`include` also finds a soft-deleted record.",
                    "schema": {"type": "string", "enum": ["include"]}},
    "expand": {"description": "`true` (or `all`) includes sub-table rows in list results (a single record always has them).",
               "schema": {"type": "string", "enum": ["true", "1", "all"]}},
    "skip_invalid": {"description": "Batch only: save the valid rows and report the others (status 201 if any was saved, "
                                    "else 400) instead of all-or-nothing.",
                     "schema": {"type": "string", "enum": ["true", "1"]}},
    "return": {"description": "Batch only: `ids` returns only the new ids instead of the full records.",
               "schema": {"type": "string", "enum": ["ids"]}},
    "dry_run": {"description": "`true` reports what a type change would do to existing values without changing anything.",
                "schema": {"type": "string", "enum": ["true", "1"]}},
    "audit_limit": {"name": "limit", "description": "Entries per page (newest first).",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
    "before": {"description": "Only entries with an id lower than this (the next page).", "schema": {"type": "integer", "minimum": 1}},
    "user_q": {"name": "q", "description": "Only users whose e-mail or name contains this text.",
               "schema": {"type": "string", "maxLength": 200}},
    "format": {"description": "File format (default csv; CSV streams, xlsx is limited to one sheet).",
               "schema": {"type": "string", "enum": ["csv", "xlsx"], "default": "csv"}},
    "view": {"description": "A view (api_name or id) whose filter, sorts and columns apply.", "schema": STR},
    "header": {"description": "Column headings: the field labels (in `locale`) or the api names.",
               "schema": {"type": "string", "enum": ["label", "api_name"], "default": "label"}},
    "locale": {"description": "Locale of labels and choice texts (default: the user's, else the tenant's).",
               "schema": {"type": "string", "example": "zh-CN"}},
}

HEADER_PARAMS: dict[str, dict] = {
    "If-Match": {"description": "The version the change is based on (the record's `ETag`, `\"3\"` or `3`). "
                                "A stale version gives 409 with the current record. May also be sent as `version` in the body.",
                 "schema": STR, "example": '"3"'},
}

PATH_DOCS: dict[str, str] = {
    "tenant": "The tenant's slug, e.g. `acme`.",
    "table": "A table's api_name (`orders`) or numeric id.",
    "table_id": "The numeric id of the (deleted) table.",
    "field": "A field's api_name or numeric id.",
    "field_id": "The numeric id of the deleted field.",
    "view": "A view's api_name or numeric id.",
    "ref": "A dashboard's api_name or numeric id.",
    "record_id": "The record id.",
    "user_id": "A user's id (for members: the member's user id).",
    "token_id": "The API token's id.",
    "session_id": "The id of one of your browser sessions (from GET /api/v1/auth/sessions).",
    "token": "The attachment token returned by the upload.",
    "name": "A schema name: " + ", ".join(all_schema_names()) + ".",
}
PATH_SCHEMAS: dict[str, dict] = {
    "record_id": {"type": "string", "pattern": "^[0-9]{1,18}$"},
    "name": {"type": "string", "enum": all_schema_names()},
    "token": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}
CONVERTER_SCHEMAS = {"int": {"type": "integer", "minimum": 0}, "float": {"type": "number"},
                     "uuid": {"type": "string", "format": "uuid"}, "path": {"type": "string"},
                     "string": {"type": "string"}, "default": {"type": "string"}}

# -- response schemas --------------------------------------------------------------------

COMPONENT_SCHEMAS: dict[str, dict] = {
    "Error": obj({"error": obj({
        "code": {"type": "string", "description": "machine-readable, e.g. validation_failed, not_found, conflict, csrf, bad_filter"},
        "message": {"type": "string", "description": "English"},
        "message_zh": {"type": "string", "description": "简体中文"},
        "errors": arr(ref("ErrorDetail"), description="one entry per problem, pointing into the request"),
        "current": {**ref("Record"), "description": "on a version conflict (409): the record as it is now"},
        "retry_after": {"type": "integer", "description": "seconds (429, 503)"},
        "error_id": {"type": "string", "description": "on 500: quote it to the operator"},
    }, ["code", "message", "message_zh"], additionalProperties=True)}, ["error"]),
    "ErrorDetail": obj({
        "pointer": {"type": "string", "description": "JSON pointer (RFC 6901) into the request body, e.g. /records/1/amount",
                    "example": "/records/1/amount"},
        "message": STR, "message_zh": STR,
        "code": {"type": "string", "description": "e.g. unknown_field, read_only, invalid_value, required"},
    }, ["pointer", "message", "message_zh"], additionalProperties=True),
    "Record": obj({
        "id": INT, "version": {"type": "integer", "description": "increments on every change (optimistic locking)"},
        "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
        "created_by": {"type": ["integer", "null"]}, "updated_by": {"type": ["integer", "null"]},
        "deleted_at": {**TIMESTAMP, "description": "present on soft-deleted records"},
        "parent_id": {"type": "integer", "description": "sub-table rows only"},
        "position": {"type": "integer", "description": "sub-table rows only"},
    }, ["id", "version"], additionalProperties=True,
        description="A record: the system fields plus one property per field api_name (sub-tables as lists of rows, "
                    "many-to-many and one-to-many links as lists of ids). Times are ISO 8601 in the tenant's timezone."),
    "RecordInput": obj({"version": {"type": "integer", "description": "on update: the version the change is based on"}},
                       additionalProperties=True,
                       description="Field values keyed by api_name. Sub-table rows are lists of objects (a row with `id` "
                                   "updates that row; rows left out are removed). Unknown fields are errors."),
    "RecordBatch": obj({"records": arr(ref("RecordInput"), minItems=1)}, ["records"]),
    "RecordPage": obj({
        "records": arr(ref("Record")), "has_more": BOOL,
        "next_cursor": {"type": ["string", "null"], "description": "pass as `cursor` for the next page"},
        "total": {"type": "integer", "description": "with count=true"},
        "view": {"type": "object", "description": "view records only: the view definition"},
    }, ["records", "has_more", "next_cursor"]),
    "SkipInvalidResult": obj({
        "created": arr({"oneOf": [ref("Record"), INT]}), "skipped": arr(INT, description="indexes of refused rows"),
        "errors": arr(ref("ErrorDetail")),
    }, ["created", "skipped", "errors"]),
    "HistoryEntry": obj({
        "version": INT, "action": {"enum": ["create", "update", "delete", "restore"]},
        "changes": {"type": "object", "additionalProperties": {"type": "array", "minItems": 2, "maxItems": 2},
                    "description": "field -> [old, new]"},
        "user_id": {"type": ["integer", "null"]}, "at": TIMESTAMP}),
    "Query": obj({
        "filter": ref("filter"), "sorts": ref("view/$defs/sorts"),
        "sort": {"oneOf": [STR, ref("view/$defs/sorts")], "description": "alias of sorts; a string like -created_at,amount"},
        "q": STR, "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
        "cursor": {"type": ["string", "null"]}, "offset": {"type": "integer", "minimum": 0},
        "fields": arr(STR), "count": BOOL, "deleted": {"enum": ["include", "only"]}, "expand": BOOL,
    }, additionalProperties=False),
    "AggregateRequest": obj({
        "filter": ref("filter"), "group_by": arr(ref("dashboard/$defs/group"), maxItems=2),
        "metrics": arr(ref("dashboard/$defs/metric"), minItems=1, maxItems=5),
        "limit": {"type": "integer", "minimum": 1, "maximum": 1000}, "order": {"enum": ["asc", "desc"]},
        "view": {"type": "string", "description": "a view whose filter is ANDed with `filter`"},
    }, additionalProperties=False),
    "AggregateResult": obj({
        "group_by": arr(STR), "metrics": arr(STR, description="metric names: `as`, else fn or fn_field"),
        "rows": arr({"type": "object", "additionalProperties": True}),
    }, ["group_by", "metrics", "rows"]),
    "User": obj({"id": INT, "email": STR, "name": STR, "is_superuser": BOOL, "locale": {"type": ["string", "null"]}}),
    "Tenant": obj({"id": INT, "slug": STR, "name": STR, "timezone": STR, "locale": STR, "role": ROLE}),
    "Member": {"allOf": [ref("User"), obj({
        "role": ROLE, "attributes": {"type": "object"},
        "disabled": {"type": "boolean", "description": "an admin of this workspace disabled the membership"},
        "disabled_at": {"type": ["string", "null"], "description": "since when (UTC)"},
        "account_disabled": {"type": "boolean", "description": "an instance administrator disabled the whole account"}})],
        "description": "Builders and above see this; members and viewers get only id, name and role."},
    "Account": {"allOf": [ref("User"), obj({"disabled": BOOL, "created_at": TIMESTAMP}, ["disabled"])]},
    "Token": obj({"id": INT, "name": STR, "prefix": STR, "role": {"oneOf": [ROLE, {"type": "null"}]},
                  "created_at": TIMESTAMP, "expires_at": {"type": ["string", "null"]},
                  "last_used_at": {"type": ["string", "null"]}, "revoked": BOOL}),
    "Session": obj({"user": ref("User"), "csrf_token": {"type": ["string", "null"],
                                                        "description": "send as X-CSRF-Token on every unsafe request "
                                                                       "(null when called with an API token)"},
                    "tenants": arr(ref("Tenant"))}),
    "BrowserSession": obj({
        "id": INT, "created_at": TIMESTAMP, "last_seen_at": {**TIMESTAMP, "description": "updated at most once a minute"},
        "expires_at": TIMESTAMP, "ip": {"type": ["string", "null"]}, "user_agent": {"type": ["string", "null"]},
        "current": {"type": "boolean", "description": "the session of this request"}},
        ["id", "created_at", "last_seen_at", "expires_at", "current"]),
    "FieldOut": obj({"id": INT, "api_name": STR, "type": STR, "position": INT}, additionalProperties=True,
                    description="A field definition (see the `field` schema) with its id and position."),
    "TableOut": obj({"id": INT, "api_name": STR, "schema_version": INT, "parent_table": {"type": ["integer", "null"]},
                     "fields": arr(ref("FieldOut"))}, additionalProperties=True,
                    description="A table definition (see the `table` schema) with ids; sub-tables are tables of their own."),
    "ViewOut": obj({"id": INT, "table_id": INT}, additionalProperties=True, description="A view definition with ids."),
    "DashboardOut": obj({"id": INT}, additionalProperties=True, description="A dashboard definition with its id."),
    "Attachment": obj({"token": STR, "filename": STR, "size": INT, "content_type": STR}),
}


def _wrap(key: str, inner: dict, **more) -> dict:
    return obj({key: inner, **more}, [key])


def _partial(name: str, what: str) -> dict:
    return {"type": "object", "minProperties": 1,
            "description": f"The properties to change; the result must still be a valid {what} (the `{name}` schema)."}


# -- the operations ----------------------------------------------------------------------
# Keyed by endpoint name. Keys: summary, description, tags, query (names in QUERY_PARAMS),
# headers (names in HEADER_PARAMS), body (schema), body_required, body_type, response
# (schema), status (success status), response_type, response_headers.

OPERATIONS: dict[str, dict] = {
    "health": {"summary": "Liveness check", "tags": ["meta"], "response": obj({"ok": BOOL})},
    "api_v1.openapi": {"summary": "This OpenAPI document", "tags": ["meta"], "response": {"type": "object"}},
    # auth
    "api_v1.login": {
        "summary": "Log in with email and password", "tags": ["auth"],
        "description": "Starts a server-side session (7 days), sets the session cookie `zhongshu_session` and "
                       "returns the CSRF token to send as `X-CSRF-Token` on every POST/PATCH/DELETE of this session. "
                       "Failed logins are limited per 15 minutes: LOGIN_MAX_ATTEMPTS (10) per account and address, "
                       "LOGIN_MAX_ATTEMPTS_PER_ADDRESS (50) per address across accounts; beyond either, 429 with "
                       "Retry-After, even for the right password. With the right password, a disabled account gets 403 "
                       "`account_disabled`, and someone whose every workspace membership is disabled 403 `member_disabled` "
                       "(a wrong password always gets the same 401, so neither says whether the account exists).",
        "body": obj({"email": {"type": "string", "format": "email"}, "password": STR}, ["email", "password"]),
        "response": ref("Session")},
    "api_v1.logout": {"summary": "Log out: ends the session on the server (a copy of the cookie stops working too)",
                      "tags": ["auth"], "response": OK},
    "api_v1.me": {"summary": "The current user, CSRF token and tenants", "tags": ["auth"], "response": ref("Session")},
    "api_v1.list_sessions": {"summary": "Your live browser sessions (session login only; API tokens get 403)", "tags": ["auth"],
                             "response": _wrap("sessions", arr(ref("BrowserSession")))},
    "api_v1.revoke_session": {"summary": "End one of your browser sessions, e.g. on a lost laptop (session login only)",
                              "tags": ["auth"], "description": "Another user's session id answers 404. Ending the current "
                                                               "session logs this browser out.", "response": OK},
    "api_v1.change_password": {
        "summary": "Change your password; your other sessions end (session login only)", "tags": ["auth"],
        "description": "A wrong `current_password` gives 400 and counts as a failed login (429 after too many).",
        "body": obj({"current_password": STR, "new_password": {"type": "string", "minLength": 8, "maxLength": 256}},
                    ["current_password", "new_password"]),
        "response": obj({"ok": {"const": True}, "ended_sessions": {"type": "integer", "minimum": 0}}, ["ok", "ended_sessions"])},
    # tenants
    "api_v1.list_tenants": {"summary": "Tenants the user belongs to", "tags": ["tenants"],
                            "response": _wrap("tenants", arr(ref("Tenant")))},
    "api_v1.create_tenant": {"summary": "Create a tenant (instance administrators only)", "tags": ["tenants"],
                             "body": obj({"slug": {"type": "string"}, "name": TENANT_NAME, "timezone": STR, "locale": LOCALE}, ["slug"]),
                             "status": 201, "response": _wrap("tenant", ref("Tenant"))},
    "api_v1.get_tenant": {"summary": "A tenant, with the caller's role", "tags": ["tenants"], "response": _wrap("tenant", ref("Tenant"))},
    "api_v1.update_tenant": {"summary": "Rename a tenant or change its timezone/locale (admin)", "tags": ["tenants"],
                             "body": obj({"name": TENANT_NAME, "timezone": STR, "locale": LOCALE}, additionalProperties=False, minProperties=1),
                             "response": _wrap("tenant", ref("Tenant"))},
    "api_v1.list_members": {"summary": "Members of the tenant", "tags": ["members"], "response": _wrap("members", arr(ref("Member")))},
    "api_v1.add_member": {"summary": "Add a member (admin); creates the user if new", "tags": ["members"],
                          "body": obj({"email": {"type": "string", "format": "email"}, "role": {**ROLE, "default": "member"},
                                       "name": STR, "password": STR, "attributes": {"type": "object"}}, ["email"]),
                          "status": 201, "response": _wrap("member", ref("Member"))},
    "api_v1.update_member": {"summary": "Change a member's role or attributes (admin)", "tags": ["members"],
                             "body": obj({"role": ROLE, "attributes": {"type": "object"}}), "response": OK},
    "api_v1.remove_member": {"summary": "Remove a member (admin)", "tags": ["members"],
                             "description": "409 `last_owner` for the workspace's last active owner (also for a role change).",
                             "response": OK},
    "api_v1.disable_member": {
        "summary": "Disable a member in this workspace (admin; owners only for an owner)", "tags": ["members"],
        "description": "From the next request on, the member's sessions and API tokens get 403 `member_disabled` here; "
                       "their browser sessions end at once unless they still have another active workspace. Nothing is "
                       "deleted (records, history, tokens, the membership); enabling gives the access back. Recorded in the "
                       "audit log (`disable_member`, with `reason`). 409: yourself (`cannot_disable_self`), the last active "
                       "owner (`last_owner`), an instance administrator (`instance_admin`). Disabled already: 200, no change.",
        "body": obj({"reason": {"type": "string", "maxLength": 500, "description": "kept in the audit log"}},
                    additionalProperties=False),
        "body_required": False, "response": _wrap("member", ref("Member"))},
    "api_v1.enable_member": {
        "summary": "Enable a disabled member again (admin; owners only for an owner)", "tags": ["members"],
        "description": "Their API tokens work again; ended sessions stay ended (they log in again). Audit log: `enable_member`.",
        "body": obj({"reason": {"type": "string", "maxLength": 500}}, additionalProperties=False),
        "body_required": False, "response": _wrap("member", ref("Member"))},
    "api_v1.list_users": {
        "summary": "User accounts of the installation, newest first (instance administrators)", "tags": ["users"],
        "query": ["user_q", "audit_limit", "before"], "response": _wrap("users", arr(ref("Account")))},
    "api_v1.disable_user": {
        "summary": "Disable a user account everywhere (instance administrators)", "tags": ["users"],
        "description": "No login (403 `account_disabled`), every browser session ends now, every API token gets 401. Nothing "
                       "is deleted; enabling gives the access back. Recorded in the audit log of every workspace the user "
                       "belongs to (`disable_user`). 409: yourself, the last active instance administrator. "
                       "`workspaces_without_owner`: workspaces whose only active owner this was.",
        "body": obj({"reason": {"type": "string", "maxLength": 500, "description": "kept in the audit log"}},
                    additionalProperties=False),
        "body_required": False,
        "response": obj({"user": ref("Account"), "ended_sessions": {"type": "integer", "minimum": 0},
                         "workspaces_without_owner": arr(STR)}, ["user", "ended_sessions", "workspaces_without_owner"])},
    "api_v1.enable_user": {
        "summary": "Enable a disabled user account (instance administrators)", "tags": ["users"],
        "description": "Tokens work again; ended sessions stay ended. Audit log: `enable_user`.",
        "body": obj({"reason": {"type": "string", "maxLength": 500}}, additionalProperties=False),
        "body_required": False, "response": _wrap("user", ref("Account"))},
    "api_v1.list_tokens": {"summary": "API tokens (admins see all, others their own)", "tags": ["tokens"],
                           "response": _wrap("tokens", arr(ref("Token")))},
    "api_v1.create_token": {
        "summary": "Create an API token (session login only)", "tags": ["tokens"],
        "description": "The raw token is returned once, in `token`. A token acts as its user in this tenant only, "
                       "with at most `role`.",
        "body": obj({"name": {"type": "string", "minLength": 1, "maxLength": 200}, "role": ROLE,
                     "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 3650}}, ["name"]),
        "status": 201, "response": {"allOf": [ref("Token"), obj({"token": STR}, ["token"])]}},
    "api_v1.revoke_token": {"summary": "Revoke an API token", "tags": ["tokens"], "response": OK},
    "api_v1.audit_log": {"summary": "The tenant's audit log, newest first (admin)", "tags": ["tenants"],
                         "query": ["audit_limit", "before"],
                         "response": _wrap("entries", arr(obj({"id": INT, "user_id": {"type": ["integer", "null"]}, "action": STR,
                                                                "object_type": STR, "object_id": {"type": ["integer", "null"]},
                                                                "detail": {}, "at": TIMESTAMP})))},
    # schemas and field types
    "api_v1.schema_doc": {"summary": "A published JSON Schema (Draft 2020-12) of definitions", "tags": ["meta"],
                          "response": {"type": "object"}},
    "api_v1.schema_index": {"summary": "Names and URLs of the published JSON Schemas", "tags": ["meta"],
                            "response": _wrap("schemas", {"type": "object", "additionalProperties": {"type": "string", "format": "uri"}})},
    "api_v1.field_types": {"summary": "Field types with their filter operators and options schema", "tags": ["meta"],
                           "response": _wrap("field_types", arr(obj({"type": STR, "label": {"type": "object"},
                                                                     "operators": arr(STR), "computed": BOOL, "sortable": BOOL,
                                                                     "options_schema": {"type": "object"}})))},
    # apps
    "api_v1.list_apps": {"summary": "Apps (groups of tables)", "tags": ["apps"],
                         "response": _wrap("apps", arr({"type": "object", "additionalProperties": True}))},
    "api_v1.create_app_route": {"summary": "Create an app (builder)", "tags": ["apps"], "body": ref("app"), "status": 201,
                                "response": _wrap("app", {"type": "object", "additionalProperties": True})},
    # tables
    "api_v1.list_tables": {"summary": "Tables the caller may read", "tags": ["tables"], "response": _wrap("tables", arr(ref("TableOut")))},
    "api_v1.create_table": {"summary": "Create a table with its fields (builder)", "tags": ["tables"], "body": ref("table"),
                            "status": 201, "response": _wrap("table", ref("TableOut"))},
    "api_v1.get_table": {"summary": "A table and its fields", "tags": ["tables"], "response": _wrap("table", ref("TableOut"))},
    "api_v1.update_table": {
        "summary": "Change a table's label, description, icon, primary field, sections, permissions, api_name or app (builder)",
        "tags": ["tables"], "body": _partial("table", "table definition"), "response": _wrap("table", ref("TableOut"))},
    "api_v1.delete_table": {"summary": "Soft-delete a table (builder; restorable)", "tags": ["tables"], "response": OK_RESTORABLE},
    "api_v1.restore_table": {"summary": "Restore a deleted table (builder)", "tags": ["tables"], "response": _wrap("table", ref("TableOut"))},
    "api_v1.deleted_tables": {"summary": "Deleted tables that can be restored", "tags": ["tables"],
                              "response": _wrap("tables", arr(obj({"id": INT, "api_name": STR, "deleted_at": TIMESTAMP})))},
    # fields
    "api_v1.add_field": {"summary": "Add a field (builder)", "tags": ["fields"], "body": ref("field"), "status": 201,
                         "response": obj({"field": ref("FieldOut"), "table": ref("TableOut")})},
    "api_v1.update_field": {
        "summary": "Rename, reconfigure or change the type of a field (builder)", "tags": ["fields"],
        "description": "A type change converts existing values and returns a `conversion` report; with `dry_run=true` "
                       "nothing is changed.",
        "query": ["dry_run"], "body": _partial("field", "field definition"),
        "response": obj({"table": ref("TableOut"), "field": ref("FieldOut"), "conversion": {"type": "object"}})},
    "api_v1.delete_field": {"summary": "Soft-delete a field (builder; restorable)", "tags": ["fields"],
                            "response": obj({"ok": {"const": True}, "restorable": BOOL, "table": ref("TableOut")})},
    "api_v1.deleted_fields": {"summary": "Deleted fields of a table", "tags": ["fields"],
                              "response": _wrap("fields", arr(obj({"id": INT, "api_name": STR, "type": STR, "deleted_at": TIMESTAMP})))},
    "api_v1.restore_field": {"summary": "Restore a deleted field (builder)", "tags": ["fields"], "response": _wrap("table", ref("TableOut"))},
    # views
    "api_v1.list_views": {"summary": "Views of a table visible to the caller's role", "tags": ["views"],
                          "response": _wrap("views", arr(ref("ViewOut")))},
    "api_v1.create_view": {"summary": "Create a view (builder)", "tags": ["views"], "body": ref("view"), "status": 201,
                           "response": _wrap("view", ref("ViewOut"))},
    "api_v1.get_view": {"summary": "A view", "tags": ["views"], "response": _wrap("view", ref("ViewOut"))},
    "api_v1.update_view": {"summary": "Change a view (builder)", "tags": ["views"], "body": _partial("view", "view definition"),
                           "response": _wrap("view", ref("ViewOut"))},
    "api_v1.delete_view": {"summary": "Delete a view (builder)", "tags": ["views"], "response": OK},
    "api_v1.view_records": {
        "summary": "A view's records", "tags": ["records", "views"],
        "description": "The view's filter AND the `filter` parameter; the view's sorts unless `sort` is given; the view's "
                       "columns unless `fields` is given.",
        "query": ["filter", "sort", "q", "limit", "cursor", "offset", "fields", "count", "deleted", "expand"],
        "response": ref("RecordPage")},
    # dashboards
    "api_v1.list_dashboards": {"summary": "Dashboards", "tags": ["dashboards"], "response": _wrap("dashboards", arr(ref("DashboardOut")))},
    "api_v1.create_dashboard": {"summary": "Create a dashboard (builder)", "tags": ["dashboards"], "body": ref("dashboard"),
                                "status": 201, "response": _wrap("dashboard", ref("DashboardOut"))},
    "api_v1.get_dashboard": {"summary": "A dashboard", "tags": ["dashboards"], "response": _wrap("dashboard", ref("DashboardOut"))},
    "api_v1.update_dashboard": {"summary": "Change a dashboard (builder; top-level properties are replaced)", "tags": ["dashboards"],
                                "body": _partial("dashboard", "dashboard definition"), "response": _wrap("dashboard", ref("DashboardOut"))},
    "api_v1.delete_dashboard": {"summary": "Delete a dashboard (builder)", "tags": ["dashboards"], "response": OK},
    "api_v1.dashboard_data": {
        "summary": "Every widget's numbers", "tags": ["dashboards"],
        "description": "Each widget's aggregate; `alert` is true when its threshold is crossed.",
        "response": obj({"dashboard": STR, "refresh_seconds": INT, "widgets": arr({"allOf": [
            ref("AggregateResult"), obj({"id": STR, "type": STR, "alert": BOOL})]})})},
    # records
    "api_v1.list_records": {
        "summary": "List records (filter, sort, search, keyset pagination)", "tags": ["records"],
        "query": ["filter", "sort", "q", "limit", "cursor", "offset", "fields", "count", "deleted", "expand"],
        "response": ref("RecordPage")},
    "api_v1.query_records": {
        "summary": "List records with the query in the body (for long filters)", "tags": ["records"],
        "body": ref("Query"), "response": ref("RecordPage")},
    "api_v1.create_records": {
        "summary": "Create one record or a batch", "tags": ["records"],
        "description": "A record object creates one record (201, the record). `{\"records\": [...]}` creates a batch in one "
                       "transaction: all-or-nothing (400 with a pointer per bad value, e.g. `/records/1/amount`) unless "
                       "`skip_invalid=true`. At most MAX_BATCH_SIZE (default 5000) rows; more gives 413.",
        "query": ["skip_invalid", "return"],
        "body": {"oneOf": [ref("RecordBatch"), ref("RecordInput")]},
        "status": 201,
        "response": {"oneOf": [ref("Record"), _wrap("records", arr(ref("Record"))), _wrap("ids", arr(INT)), ref("SkipInvalidResult")]}},
    "api_v1.get_record": {"summary": "A record (with its sub-table rows)", "tags": ["records"], "query": ["fields", "deleted_one"],
                          "response": ref("Record"), "response_headers": ["ETag"]},
    "api_v1.update_record": {
        "summary": "Change a record", "tags": ["records"],
        "description": "Only the fields sent change. With If-Match (or `version` in the body) a stale version gives 409 "
                       "with `error.current`.",
        "headers": ["If-Match"], "body": ref("RecordInput"), "response": ref("Record"), "response_headers": ["ETag"]},
    "api_v1.delete_record": {"summary": "Soft-delete a record (restorable)", "tags": ["records"], "headers": ["If-Match"],
                             "response": obj({"ok": {"const": True}, "restorable": BOOL, "record": ref("Record")})},
    "api_v1.restore_record": {"summary": "Restore a soft-deleted record", "tags": ["records"], "response": ref("Record")},
    "api_v1.record_history": {"summary": "A record's change history, newest first (at most 200 entries)", "tags": ["records"],
                              "response": _wrap("history", arr(ref("HistoryEntry")))},
    "api_v1.aggregate_records": {
        "summary": "Group and aggregate (count, sum, avg, min, max, count_distinct)", "tags": ["records"],
        "body": ref("AggregateRequest"), "response": ref("AggregateResult")},
    # import / export (io_routes.py; formats in docs/import-export.md)
    "api_v1.export_records": {
        "summary": "Export a table or view as CSV or XLSX", "tags": ["import/export"],
        "description": "Bad filters and missing permissions fail as JSON before any byte is sent; CSV then streams.",
        "query": ["format", "view", "filter", "q", "sort", "fields", "header", "locale"],
        "response_types": {"text/csv": {"type": "string"},
                           "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
                               {"type": "string", "contentMediaType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}}},
    "api_v1.import_file": {
        "summary": "Import a spreadsheet (.csv or .xlsx) into a table", "tags": ["import/export"],
        "description": "All-or-nothing (400 `import_failed` with per-row errors) unless `skip_invalid`; `dry_run` "
                       "validates and reports without saving. 201 when records were created.",
        "body": obj({"file": {"type": "string", "contentMediaType": "application/octet-stream"},
                     "mapping": {"type": "string", "description": "JSON {column heading: field api_name}"},
                     "skip_invalid": {"type": "string", "enum": ["true", "false"]},
                     "dry_run": {"type": "string", "enum": ["true", "false"]}}, ["file"]),
        "body_type": "multipart/form-data",
        "response": obj({"ok": BOOL, "dry_run": BOOL, "skip_invalid": BOOL, "format": STR, "rows": INT, "valid": INT,
                         "invalid": INT, "created": INT, "skipped": INT, "would_create": INT,
                         "errors": arr(obj({"row": INT, "column": {"type": ["string", "null"]}}, additionalProperties=True))},
                        additionalProperties=True)},
    # attachments
    "api_v1.upload_attachment": {
        "summary": "Upload a file (multipart field `file`)", "tags": ["attachments"],
        "description": "Returns a token to put in an attachment field. Larger than ATTACHMENT_MAX_BYTES (default 50 MB) gives 413.",
        "body": obj({"file": {"type": "string", "contentMediaType": "application/octet-stream"}}, ["file"]),
        "body_type": "multipart/form-data", "status": 201, "response": ref("Attachment")},
    "api_v1.download_attachment": {"summary": "Download a file (always as an attachment)", "tags": ["attachments"],
                                   "response": {"type": "string", "contentMediaType": "application/octet-stream"},
                                   "response_type": "application/octet-stream"},
}

# -- record comments (platform/api/comments_routes.py) ------------------------------------
COMPONENT_SCHEMAS["Comment"] = obj({
    "id": INT, "record_id": INT, "user_id": {"type": ["integer", "null"]}, "user_name": {"type": ["string", "null"]},
    "body": {"type": "string", "maxLength": 5000}, "created_at": TIMESTAMP, "edited_at": {"type": ["string", "null"]},
    "can_edit": {"type": "boolean", "description": "the caller wrote it (and is a member or above)"},
    "can_delete": {"type": "boolean", "description": "the caller wrote it, or is an admin or owner"}})
_COMMENT_BODY = obj({"body": {"type": "string", "minLength": 1, "maxLength": 5000}}, ["body"], additionalProperties=False)
PATH_DOCS["comment_id"] = "The comment's id."
OPERATIONS.update({
    "api_v1.list_comments": {
        "summary": "Comments of a record, oldest first (the latest `limit`)", "tags": ["comments"], "query": ["comment_limit"],
        "description": "Anyone who can read the record (404 otherwise). Deleted comments are left out.",
        "response": obj({"comments": arr(ref("Comment")), "has_more": BOOL}, ["comments", "has_more"])},
    "api_v1.add_comment": {
        "summary": "Comment on a record (member or above)", "tags": ["comments"], "body": _COMMENT_BODY, "status": 201,
        "description": "Viewers get 403. An empty body or more than 5000 characters gives 400 at `/body`.",
        "response": _wrap("comment", ref("Comment"))},
    "api_v1.edit_comment": {
        "summary": "Change the text of your own comment", "tags": ["comments"], "body": _COMMENT_BODY,
        "description": "Only the author (403 for anyone else); sets `edited_at`.",
        "response": _wrap("comment", ref("Comment"))},
    "api_v1.delete_comment": {
        "summary": "Delete your own comment (admins and owners: any comment)", "tags": ["comments"], "response": OK},
})
QUERY_PARAMS["comment_limit"] = {"name": "limit", "description": "How many of the latest comments.",
                                 "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 200}}

ERROR_STATUSES = {
    "400": "The request is invalid: bad JSON, an invalid definition, a bad value (with JSON pointers), a bad filter.",
    "401": "Not logged in, or the API token is invalid, expired or revoked.",
    "403": "The role does not allow this, the X-CSRF-Token header is missing or wrong (code `csrf`), or your membership "
           "of this workspace is disabled (code `member_disabled`).",
    "404": "No such tenant (also when not a member), table, field, view, record or route.",
    "409": "A version conflict (`error.current` holds the record as it is now), a unique value already taken, or a change "
           "that would lock people out (disabling yourself, the last active owner).",
    "413": "The body or file is too large, or the batch has too many records.",
    "429": "Too many attempts; see the Retry-After header.",
    "500": "An unexpected error; `error.error_id` identifies it in the server log.",
    "503": "The database is busy or unavailable; retry after Retry-After seconds.",
}


# -- the embedded definition schemas ----------------------------------------------------

def _rewrite_refs(node, own: str):
    """Points a published schema's $refs inside this document (`#/components/schemas/...`)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ("$id", "$schema"):
                continue
            if k == "$ref" and isinstance(v, str):
                target, _, frag = v.partition("#")
                name = own if not target else target.removesuffix(".json")
                out[k] = f"#/components/schemas/{name}{frag}"
            else:
                out[k] = _rewrite_refs(v, own)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, own) for v in node]
    return node


def definition_schemas(base_url: str) -> dict:
    out = {}
    for name in all_schema_names():
        s = _rewrite_refs(copy.deepcopy(schema(name)), name)
        url = f"{base_url}{PREFIX}/schemas/{name}.json"
        s["externalDocs"] = {"description": f"the published JSON Schema of {name} definitions", "url": url}
        out[name] = s
    return out


# -- generation --------------------------------------------------------------------------

_ARG = re.compile(r"<(?:([a-zA-Z_][a-zA-Z0-9_]*)(?:\([^)]*\))?:)?([a-zA-Z_][a-zA-Z0-9_]*)>")


def openapi_path(rule: str) -> tuple[str, list[tuple[str, str]]]:
    """'/x/<int:id>/<name>' -> ('/x/{id}/{name}', [('id', 'int'), ('name', 'default')])."""
    params: list[tuple[str, str]] = []

    def sub(m):
        params.append((m.group(2), m.group(1) or "default"))
        return "{" + m.group(2) + "}"

    return _ARG.sub(sub, rule), params


def is_public(endpoint: str) -> bool:
    # The blueprint authenticates its own routes; app-level routes (health) are public.
    return endpoint in PUBLIC_ENDPOINTS or not endpoint.startswith(api.name + ".")


def _parameter(name: str, where: str, spec: dict) -> dict:
    p = {"name": spec.get("name", name), "in": where, "description": spec["description"], "schema": spec["schema"]}
    if "example" in spec:
        p["example"] = spec["example"]
    return p


def _operation(endpoint: str, method: str, params: list[tuple[str, str]], op_id: str) -> dict:
    d = OPERATIONS.get(endpoint)
    op: dict = {"operationId": op_id}
    if d is None:
        view = current_app.view_functions.get(endpoint)
        doc = (view.__doc__ or "").strip() if view else ""
        op["summary"] = doc.splitlines()[0] if doc else f"{method} {endpoint.split('.')[-1].replace('_', ' ')}"
        if doc:
            op["description"] = doc
        op["tags"] = ["undocumented"]
        op["x-undocumented"] = True
        d = {}
    else:
        op["summary"] = d["summary"]
        if d.get("description"):
            op["description"] = d["description"]
        op["tags"] = d.get("tags", [])
    parameters = []
    for name, conv in params:
        schema_ = PATH_SCHEMAS.get(name, CONVERTER_SCHEMAS.get(conv, {"type": "string"}))
        parameters.append({"name": name, "in": "path", "required": True,
                           "description": PATH_DOCS.get(name, name), "schema": schema_})
    for name in d.get("query", []):
        parameters.append(_parameter(name, "query", QUERY_PARAMS[name]))
    for name in d.get("headers", []):
        parameters.append(_parameter(name, "header", HEADER_PARAMS[name]))
    if parameters:
        op["parameters"] = parameters
    if "body" in d:
        op["requestBody"] = {"required": d.get("body_required", True),
                             "content": {d.get("body_type", "application/json"): {"schema": d["body"]}}}
    elif not d and method in ("POST", "PUT", "PATCH"):
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": {}}}}
    status = str(d.get("status", 200))
    success: dict = {"description": "Success"}
    if d.get("response_types"):
        success["content"] = {t: {"schema": sch} for t, sch in d["response_types"].items()}
    else:
        success["content"] = {d.get("response_type", "application/json"): {"schema": d.get("response", {})}}
    if d.get("response_headers"):
        success["headers"] = {h: {"$ref": f"#/components/headers/{h}"} for h in d["response_headers"]}
    op["responses"] = {status: success}
    if endpoint == "api_v1.create_records":  # skip_invalid with nothing saved
        op["responses"]["400"] = {"description": "Invalid records (all-or-nothing), or with skip_invalid none was valid "
                                                 "(then the body is a SkipInvalidResult with an empty `created`).",
                                  "content": {"application/json": {"schema": {"oneOf": [ref("Error"), ref("SkipInvalidResult")]}}}}
    for code in ERROR_STATUSES:
        if is_public(endpoint) and code in ("401", "403") and endpoint != "api_v1.login":
            continue
        op["responses"].setdefault(code, {"$ref": f"#/components/responses/E{code}"})
    if is_public(endpoint):
        op["security"] = []
    elif method in SAFE:
        op["security"] = [{"bearerToken": []}, {"sessionCookie": []}]
    else:
        op["security"] = [{"bearerToken": []}, {"sessionCookie": [], "csrfToken": []}]
    return op


def build_document(base_url: str = "") -> dict:
    paths: dict[str, dict] = {}
    seen_ids: set[str] = set()
    rules = sorted((r for r in current_app.url_map.iter_rules() if r.rule == PREFIX or r.rule.startswith(PREFIX + "/")),
                   key=lambda r: r.rule)
    for rule in rules:
        path, params = openapi_path(rule.rule)
        methods = sorted(m for m in rule.methods or () if m not in IGNORED_METHODS)
        for method in methods:
            base = rule.endpoint.removeprefix(api.name + ".").replace(".", "_")
            op_id = base if len(methods) == 1 else f"{base}_{method.lower()}"
            n = 2
            while op_id in seen_ids:
                op_id, n = f"{base}_{n}", n + 1
            seen_ids.add(op_id)
            paths.setdefault(path, {})[method.lower()] = _operation(rule.endpoint, method, params, op_id)
    tags = sorted({t for item in paths.values() for op in item.values() for t in op.get("tags", [])})
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Zhongshu (中枢) API",
            "version": "1",
            "summary": "Tables, fields, views, dashboards and records of a Zhongshu order hub.",
            "description": "See docs/api.md for a guide. Errors are JSON: "
                           "`{\"error\": {\"code\", \"message\", \"message_zh\", \"errors\": [{\"pointer\", \"message\", \"message_zh\"}]}}`.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/", "description": "this instance"}],
        "tags": [{"name": t} for t in tags],
        "security": [{"bearerToken": []}, {"sessionCookie": [], "csrfToken": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerToken": {"type": "http", "scheme": "bearer",
                                "description": "An API token (POST /api/v1/tenants/{tenant}/tokens), valid for one tenant. "
                                               "No CSRF header is needed."},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "zhongshu_session",
                                  "description": "The session cookie set by POST /api/v1/auth/login. Unsafe methods "
                                                 "(POST, PATCH, DELETE) also need the X-CSRF-Token header."},
                "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                              "description": "The csrf_token returned by login and GET /api/v1/auth/me; required with "
                                             "the session cookie on POST, PATCH and DELETE."},
            },
            "schemas": {**definition_schemas(base_url), **COMPONENT_SCHEMAS},
            "responses": {f"E{code}": {"description": text,
                                       "content": {"application/json": {"schema": ref("Error")}}}
                          for code, text in ERROR_STATUSES.items()},
            "headers": {"ETag": {"description": "The record version, quoted (`\"3\"`); send it back as If-Match.",
                                 "schema": STR}},
        },
    }


@api.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 document of /api/v1 (public)."""
    return ok(build_document(request.host_url.rstrip("/")))
