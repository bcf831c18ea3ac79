"""Finding connectors: the built-ins plus every installed plugin.

A plugin is any distribution that declares an entry point in the group
``zhongshu.connectors``; the entry point's object is a :class:`Connector` subclass (or a
module/object with a ``connector`` attribute holding one)::

    [project.entry-points."zhongshu.connectors"]
    my_erp = "my_erp_connector:MyErpConnector"

A plugin that fails to import, has an invalid manifest, clashes with an existing name, or
raises while being loaded is recorded as a :class:`LoadFailure` and skipped: the registry
and every other connector keep working, and :meth:`ConnectorRegistry.report` shows it.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import logging
import traceback
from dataclasses import dataclass
from typing import Iterable

from .base import Connector
from .errors import PermanentError
from .manifest import Manifest, validate_manifest

log = logging.getLogger("zhongshu.connectors")

ENTRY_POINT_GROUP = "zhongshu.connectors"

#: name → "module:Class" for the connectors that ship with Zhongshu
BUILTINS: dict[str, str] = {
    "webhook": "zhongshu.connectors.webhook:WebhookConnector",
    "http_request": "zhongshu.connectors.http_request:HttpRequestConnector",
    "dingtalk": "zhongshu.connectors.dingtalk:DingTalkRobotConnector",
    "wecom": "zhongshu.connectors.wecom:WeComRobotConnector",
    "email": "zhongshu.connectors.email:EmailConnector",
    "sms": "zhongshu.connectors.sms:SmsGatewayConnector",
    "shopify": "zhongshu.connectors.shopify:ShopifyConnector",
    "douyin": "zhongshu.connectors.douyin:DouyinShopConnector",
    "kuaidi100": "zhongshu.connectors.kuaidi100:Kuaidi100Connector",
    "wms": "zhongshu.connectors.wms:WmsInventoryConnector",
    "file_drop": "zhongshu.connectors.file_drop:FileDropConnector",
}


@dataclass(frozen=True)
class LoadFailure:
    name: str
    source: str  # "builtin" or "entry_point:<distribution>"
    error: str
    traceback: str = ""


@dataclass(frozen=True)
class ConnectorInfo:
    name: str
    source: str
    cls: type[Connector]

    @property
    def manifest(self) -> Manifest:
        return self.cls.manifest


class UnknownConnector(PermanentError):
    code = "unknown_connector"


def _resolve(obj) -> type[Connector]:
    if isinstance(obj, type) and issubclass(obj, Connector):
        return obj
    inner = getattr(obj, "connector", None)
    if isinstance(inner, type) and issubclass(inner, Connector):
        return inner
    raise TypeError(f"{obj!r} is not a Connector subclass (nor has a 'connector' attribute that is one)")


def _check(cls: type[Connector], expected_name: str | None) -> None:
    m = getattr(cls, "manifest", None)
    if isinstance(m, dict):  # allow plugins to declare the manifest as plain data
        cls.manifest = m = Manifest.from_dict(m)
    if not isinstance(m, Manifest):
        raise TypeError(f"{cls.__name__}.manifest must be a Manifest (or a manifest dict)")
    validate_manifest(m.to_dict())
    if expected_name and m.name != expected_name:
        raise ValueError(f"entry point name {expected_name!r} does not match manifest name {m.name!r}")


class ConnectorRegistry:
    """``ConnectorRegistry.discover()`` → registry of built-ins + installed plugins."""

    def __init__(self):
        self._connectors: dict[str, ConnectorInfo] = {}
        self._failures: list[LoadFailure] = []

    @classmethod
    def discover(cls, *, builtins: bool = True, entry_points: bool = True,
                 group: str = ENTRY_POINT_GROUP) -> "ConnectorRegistry":
        reg = cls()
        if builtins:
            reg.load_builtins()
        if entry_points:
            reg.load_entry_points(group)
        return reg

    # -- loading ------------------------------------------------------------------------
    def _fail(self, name: str, source: str, exc: BaseException) -> None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self._failures.append(LoadFailure(name, source, f"{type(exc).__name__}: {exc}", tb))
        log.warning("connector %s (%s) not loaded: %s: %s", name, source, type(exc).__name__, exc)

    def load_builtins(self, names: Iterable[str] | None = None) -> None:
        for name in names or BUILTINS:
            target = BUILTINS[name]
            try:
                mod, _, attr = target.partition(":")
                cls = _resolve(getattr(importlib.import_module(mod), attr))
                self.register(cls, source="builtin", expected_name=name)
            except Exception as exc:  # isolate: one broken connector must not hide the others
                self._fail(name, "builtin", exc)

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        try:
            eps = importlib.metadata.entry_points(group=group)
        except Exception as exc:
            self._fail("(entry points)", group, exc)
            return
        for ep in eps:
            dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
            source = f"entry_point:{dist}"
            if ep.name in self._connectors and self._connectors[ep.name].source == source:
                continue  # same distribution seen twice on sys.path
            try:
                cls = _resolve(ep.load())
                self.register(cls, source=source, expected_name=ep.name)
            except BaseException as exc:  # noqa: BLE001 - includes SystemExit from a hostile import
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self._fail(ep.name, source, exc)

    def register(self, cls: type[Connector], *, source: str = "manual",
                 expected_name: str | None = None) -> None:
        """Add a connector class (validates its manifest; names must be unique)."""
        _check(cls, expected_name)
        name = cls.manifest.name
        if name in self._connectors:
            raise ValueError(f"connector name {name!r} already registered by {self._connectors[name].source}")
        self._connectors[name] = ConnectorInfo(name, source, cls)

    # -- lookup -------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._connectors)

    def __contains__(self, name: str) -> bool:
        return name in self._connectors

    def info(self, name: str) -> ConnectorInfo:
        try:
            return self._connectors[name]
        except KeyError:
            failure = next((f for f in self._failures if f.name == name), None)
            extra = f" (failed to load: {failure.error})" if failure else ""
            raise UnknownConnector(f"no connector named {name!r}{extra}") from None

    def get(self, name: str) -> type[Connector]:
        return self.info(name).cls

    def create(self, name: str, **kwargs) -> Connector:
        """A ready-to-use instance (kwargs go to the constructor, e.g. ``http=``)."""
        return self.get(name)(**kwargs)

    def manifest(self, name: str) -> Manifest:
        return self.get(name).manifest

    def manifests(self) -> list[Manifest]:
        return [self._connectors[n].cls.manifest for n in self.names()]

    @property
    def failures(self) -> list[LoadFailure]:
        return list(self._failures)

    def report(self) -> dict:
        """For the admin UI / health endpoint: what loaded and what did not."""
        return {
            "loaded": [{"name": i.name, "version": i.manifest.version, "source": i.source}
                       for i in (self._connectors[n] for n in self.names())],
            "failed": [{"name": f.name, "source": f.source, "error": f.error} for f in self._failures],
        }


_default: ConnectorRegistry | None = None


def default_registry(refresh: bool = False) -> ConnectorRegistry:
    """Process-wide registry, discovered once (``refresh=True`` to re-scan after pip installs)."""
    global _default
    if _default is None or refresh:
        _default = ConnectorRegistry.discover()
    return _default
