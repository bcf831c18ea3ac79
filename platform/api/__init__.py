"""The REST API (/api/v1). Importing this package registers every route on ``api``."""
from . import auth_routes, comments_routes, io_routes, meta_routes, openapi, pages_routes, records_routes, users_routes  # noqa: F401  (route registration)
from .base import api

__all__ = ["api"]
from zhongshu.connectors.service import routes as _connector_routes  # noqa: E402,F401
from zhongshu.runtime.rules import api as _rules_routes  # noqa: E402,F401
from zhongshu.runtime import api_outbox as _outbox_routes  # noqa: E402,F401
from zhongshu.runtime import formula_preview as _formula_preview_routes  # noqa: E402,F401
from zhongshu.platform.templates_engine import routes as _template_routes  # noqa: E402,F401
