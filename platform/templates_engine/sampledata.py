"""Sample data: a template may ship ``sample.py`` (named by ``manifest.sample_data``) with
``generate(ctx)``; the installer calls it after creating the definitions, in the same
transaction — the sample data and the template land together or not at all.

Only templates read from a folder on disk (the built-in gallery, a folder given to the CLI)
can run sample data: a bundle or zip uploaded through the API never runs code.
"""
from __future__ import annotations

import importlib.util
import inspect
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from zhongshu.platform.errors import ApiError
from zhongshu.platform.models import Tenant

from .loader import Template, TemplateInvalid, problem

DEFAULT_SIZE = 100
BATCH = 500


@dataclass
class SampleContext:
    """What generate(ctx) gets."""

    records: object          #: a Records service acting as the platform (system actor)
    tenant: Tenant
    size: int                #: how big to make it (the generator decides what that means)
    now: datetime            #: the platform clock, naive UTC
    random: random.Random    #: seeded: the same size gives the same data
    template_dir: Path
    counts: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def schema(self, table: str):
        return self.records.schema(table)

    def insert(self, table: str, rows: list[dict], *, batch: int = BATCH) -> list[int]:
        """Creates rows (values as the API takes them) in batches; returns their ids."""
        schema = self.records.schema(table)
        ids: list[int] = []
        for i in range(0, len(rows), batch):
            chunk = rows[i:i + batch]
            created = self.records.create_many(schema, chunk, pointer=f"/{table}")
            ids.extend(r["id"] for r in created)
        self.counts[table] = self.counts.get(table, 0) + len(rows)
        return ids

    def log(self, message: str) -> None:
        self.notes.append(str(message))


def _load_module(t: Template):
    path = t.root / t.manifest["sample_data"]
    name = f"zhongshu_template_sample_{t.name}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def run_sample_data(platform, session, tenant: Tenant, t: Template, *, size: int | None, actor, trusted_code: bool = True) -> dict:
    rel = t.manifest.get("sample_data")
    if not rel:
        return {"skipped": "the template has no sample data"}
    if t.root is None or not trusted_code:
        return {"skipped": "sample data only runs from a template folder on the server (bundles never run code)"}
    size = int(size or t.manifest.get("sample_size") or DEFAULT_SIZE)
    started = time.monotonic()
    try:
        module = _load_module(t)
        gen = getattr(module, "generate", None)
        if not callable(gen):
            raise TemplateInvalid([problem(rel, "", "has no generate(ctx) function", "缺少 generate(ctx) 函数")])
        recs = platform.records(session, tenant, actor)
        ctx = SampleContext(records=recs, tenant=tenant, size=size, now=platform.clock(),
                            random=random.Random(f"{t.name}:{size}"), template_dir=t.root)
        params = [p for p in inspect.signature(gen).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        result = gen(ctx, size) if len(params) >= 2 else gen(ctx)
    except TemplateInvalid:
        raise
    except ApiError as e:
        errs = e.errors or [{"pointer": "", "message": e.message, "message_zh": e.message_zh}]
        raise TemplateInvalid([problem(rel, x.get("pointer", ""), f"sample data: {x.get('message', e.message)}",
                                       f"示例数据: {x.get('message_zh', e.message_zh)}") for x in errs]) from None
    except Exception as e:  # a bug in the generator: say where, keep the tenant as it was
        raise TemplateInvalid([problem(rel, "", f"sample data failed: {type(e).__name__}: {e}",
                                       f"示例数据生成失败: {type(e).__name__}: {e}")]) from None
    out = {"size": size, "records": dict(ctx.counts), "seconds": round(time.monotonic() - started, 3)}
    if ctx.notes:
        out["notes"] = ctx.notes
    if isinstance(result, dict):
        out["result"] = result
    return out
