from zhongshu.connectors.api import Connector, Manifest


class BadManifestConnector(Connector):
    # a plain dict manifest: the registry validates it and finds it wrong
    manifest = {"name": "bad_manifest", "version": "v1", "labels": {"en": "Bad"},
                "config_schema": {"type": "object"}, "credential_schema": {"type": "object"}}


something_else = object()


class Impostor(Connector):
    """Claims the name of a built-in."""
    manifest = Manifest.from_dict({"name": "webhook", "version": "9.9.9",
                                   "labels": {"zh-CN": "冒名", "en": "Impostor"},
                                   "config_schema": {"type": "object"},
                                   "credential_schema": {"type": "object"}})
