"""Who may do what with a table: roles, per-table and per-field permissions, row scopes."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Forbidden
from .schema import TableSchema

ROLE_RANK = {"viewer": 0, "member": 1, "builder": 2, "admin": 3, "owner": 4}
DEFAULT_ACCESS = {"owner": "write", "admin": "write", "builder": "write", "member": "write", "viewer": "read"}


@dataclass
class Actor:
    """The user (or token, or rule acting for a user) on whose behalf something runs."""

    user_id: int | None
    role: str
    attributes: dict = field(default_factory=dict)
    token_id: int | None = None
    is_system: bool = False  # the runtime acting as the platform itself

    def at_least(self, role: str) -> bool:
        return self.is_system or ROLE_RANK.get(self.role, -1) >= ROLE_RANK[role]


@dataclass
class Access:
    read: bool
    write: bool
    hidden: set = field(default_factory=set)
    read_only: set = field(default_factory=set)
    masked: set = field(default_factory=set)
    rows: dict | list | None = None

    def require_read(self, schema: TableSchema):
        if not self.read:
            raise Forbidden(f"you may not read table {schema.api_name}", message_zh=f"你没有查看表 {schema.api_name} 的权限")

    def require_write(self, schema: TableSchema):
        if not self.write:
            raise Forbidden(f"you may not change records of table {schema.api_name}", message_zh=f"你没有修改表 {schema.api_name} 记录的权限")


def access_for(schema: TableSchema, actor: Actor, root: TableSchema | None = None) -> Access:
    """Sub-tables follow the permissions of their parent table (``root``)."""
    if actor.is_system or actor.role in ("owner", "admin"):
        return Access(True, True)
    conf = ((root or schema).definition.get("permissions") or {}).get(actor.role, {})
    level = conf.get("access", DEFAULT_ACCESS.get(actor.role, "none"))
    if actor.role == "viewer" and level == "write":
        level = "read"  # a viewer never writes, whatever a table says
    fields = conf.get("fields", {}) if root is None else {}
    return Access(
        read=level in ("read", "write"),
        write=level == "write",
        hidden={f for f, p in fields.items() if p == "hidden"},
        read_only={f for f, p in fields.items() if p == "read_only"},
        masked={f for f, p in fields.items() if p == "masked"},
        rows=conf.get("rows") if root is None else None,
    )
