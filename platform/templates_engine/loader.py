"""Reading and checking a template: a folder, a zip of that folder, or a JSON bundle.

Everything that can be checked without a database is checked here, file by file, and all
problems are reported together, each naming the file and the JSON pointer inside it::

    rules/paid.json /actions/0/connector: connector 'ding' is not declared in manifest.json

A template with any problem is refused as a whole (``TemplateInvalid``).
"""
from __future__ import annotations

import copy
import importlib.util
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from zhongshu.platform import validation
from zhongshu.platform.errors import ApiError, ValidationFailed
from zhongshu.platform.lru import LruCache
from zhongshu.platform.validation import canonical_digest, errors_for, load_static, register_dynamic

BUNDLE_FORMAT = "zhongshu-template"
BUNDLE_VERSION = 1
KINDS = ("tables", "views", "rules", "dashboards", "pages")
SLUG = re.compile(r"^[a-z0-9-]{1,64}$")
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_FILES = 5000

_schemas_ready = False


def ensure_schemas() -> None:
    """The manifest schema is published like the others (/api/v1/schemas/template_manifest.json);
    the rule schema comes from the runtime."""
    global _schemas_ready
    if _schemas_ready:
        return
    from zhongshu.runtime.setup import _global_setup

    _global_setup()
    register_dynamic("template_manifest", lambda: load_static("template_manifest"))
    _schemas_ready = True


# -- errors ------------------------------------------------------------------------------

def problem(file: str, pointer: str, message: str, message_zh: str | None = None) -> dict:
    return {"file": file, "pointer": pointer, "message": message, "message_zh": message_zh or message,
            "where": f"{file} {pointer or '/'}"}


def describe(p: dict, zh: bool = False) -> str:
    return f"{p['file']} {p['pointer'] or '/'}: {p['message_zh'] if zh else p['message']}"


class TemplateInvalid(ValidationFailed):
    """The template (or a bundle) has problems; nothing was changed."""

    code = "template_invalid"

    def __init__(self, problems: list[dict], *, what: str = "template"):
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        more_zh = f"(另有 {len(problems) - 1} 处)" if len(problems) > 1 else ""
        super().__init__(f"the {what} has problems: {describe(first)}{more}",
                         message_zh=f"模板有误: {describe(first, True)}{more_zh}", errors=problems)

    def lines(self) -> list[str]:
        return [describe(p) for p in self.problems]


def wrap_error(e: Exception, file: str, base: str = "") -> TemplateInvalid:
    """An ApiError raised by the platform while applying one file, as a template problem."""
    if isinstance(e, TemplateInvalid):
        return e
    if isinstance(e, ApiError) and e.errors:
        return TemplateInvalid([problem(file, base + (x.get("pointer") or ""), x.get("message", e.message),
                                        x.get("message_zh")) for x in e.errors])
    msg = getattr(e, "message", None) or str(e)
    msg_zh = getattr(e, "message_zh", None) or msg
    return TemplateInvalid([problem(file, base, msg, msg_zh)])


# -- the template object ---------------------------------------------------------------------

@dataclass
class Template:
    manifest: dict
    #: relative path ("tables/orders.json") -> parsed document, in a stable order
    files: dict[str, Any]
    #: the folder on disk (only folders can carry sample data: bundles never run code)
    root: Path | None = None
    source: str = ""
    problems: list[dict] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def version(self) -> str:
        return self.manifest["version"]

    def docs(self, kind: str) -> list[tuple[str, dict]]:
        return [(p, d) for p, d in self.files.items() if p.startswith(kind + "/")]

    def to_bundle(self) -> dict:
        return {"format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION, "manifest": copy.deepcopy(self.manifest),
                "files": copy.deepcopy(self.files)}

    def write(self, folder: str | Path) -> Path:
        """Writes the template format into FOLDER (manifest.json, tables/, views/, ...)."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        (out / "manifest.json").write_text(_dump(self.manifest), "utf-8")
        for rel, doc in self.files.items():
            p = out / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(_dump(doc), "utf-8")
        return out


def _dump(doc) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


# -- reading -------------------------------------------------------------------------------

def _parse(rel: str, raw: bytes, problems: list[dict]):
    if len(raw) > MAX_FILE_BYTES:
        problems.append(problem(rel, "", f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB",
                                f"文件超过 {MAX_FILE_BYTES // (1024 * 1024)} MB"))
        return None
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        problems.append(problem(rel, "", "the file is not UTF-8 text", "文件不是 UTF-8 文本"))
    except json.JSONDecodeError as e:
        problems.append(problem(rel, "", f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})",
                                f"不是有效的 JSON: {e.msg}(第 {e.lineno} 行第 {e.colno} 列)"))
    return None


def _from_entries(entries: Iterable[tuple[str, bytes]], root: Path | None, source: str) -> Template:
    problems: list[dict] = []
    manifest = None
    files: dict[str, Any] = {}
    seen_manifest = False
    for rel, raw in sorted(entries):
        if rel == "manifest.json":
            seen_manifest = True
            manifest = _parse(rel, raw, problems)
            continue
        parts = rel.split("/")
        if len(parts) == 2 and parts[0] in KINDS and parts[1].endswith(".json"):
            doc = _parse(rel, raw, problems)
            if doc is not None or not problems or problems[-1]["file"] != rel:
                files[rel] = doc
    if not seen_manifest:
        problems.append(problem("manifest.json", "", "the template has no manifest.json", "模板缺少 manifest.json"))
    if len(files) > MAX_FILES:
        problems.append(problem("manifest.json", "", f"more than {MAX_FILES} files", f"文件超过 {MAX_FILES} 个"))
    files = {k: files[k] for k in sorted(files, key=lambda p: (KINDS.index(p.split("/")[0]), p))}
    return Template(manifest if isinstance(manifest, dict) else {}, files, root, source, problems)


def read_folder(path: Path) -> Template:
    entries = []
    for p in sorted(path.rglob("*.json")):
        rel = p.relative_to(path).as_posix()
        if rel == "manifest.json" or (rel.split("/")[0] in KINDS and rel.count("/") == 1):
            entries.append((rel, p.read_bytes()))
    return _from_entries(entries, path, str(path))


def read_zip(data: bytes | Path, source: str = "zip") -> Template:
    zf = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    names = [n for n in zf.namelist() if not n.endswith("/")]
    manifests = sorted((n for n in names if n.endswith("manifest.json")), key=len)
    prefix = manifests[0][: -len("manifest.json")] if manifests else ""
    entries = []
    for n in names[:MAX_FILES + 10]:
        if n.startswith(prefix) and n.endswith(".json"):
            info = zf.getinfo(n)
            if info.file_size > MAX_FILE_BYTES:
                entries.append((n[len(prefix):], b"x" * (MAX_FILE_BYTES + 1)))
            else:
                entries.append((n[len(prefix):], zf.read(n)))
    return _from_entries(entries, None, source)


def read_bundle(bundle: dict, source: str = "bundle") -> Template:
    """A JSON bundle: {"format": "zhongshu-template", "format_version": 1, "manifest": {...},
    "files": {"tables/orders.json": {...}, ...}}."""
    problems: list[dict] = []
    if not isinstance(bundle, dict):
        raise TemplateInvalid([problem("bundle", "", "a bundle must be a JSON object", "模板包应为 JSON 对象")], what="bundle")
    if bundle.get("format", BUNDLE_FORMAT) != BUNDLE_FORMAT:
        problems.append(problem("bundle", "/format", f"must be '{BUNDLE_FORMAT}'", f"应为 '{BUNDLE_FORMAT}'"))
    if bundle.get("format_version", BUNDLE_VERSION) != BUNDLE_VERSION:
        problems.append(problem("bundle", "/format_version", f"this platform reads format_version {BUNDLE_VERSION}",
                                f"本平台只支持 format_version {BUNDLE_VERSION}"))
    files = bundle.get("files", {})
    if not isinstance(files, dict):
        problems.append(problem("bundle", "/files", "must be an object {path: document}", "应为对象 {路径: 文档}"))
        files = {}
    if "manifest" not in bundle:
        problems.append(problem("manifest.json", "", "the bundle has no manifest", "模板包缺少 manifest"))
    kept = {}
    for rel, doc in files.items():
        parts = str(rel).split("/")
        if len(parts) != 2 or parts[0] not in KINDS or not parts[1].endswith(".json"):
            problems.append(problem("bundle", "/files/" + str(rel).replace("~", "~0").replace("/", "~1"),
                                    f"not a template file path: kind/name.json with kind one of {', '.join(KINDS)}",
                                    f"不是模板文件路径: 应为 类别/名称.json,类别为 {', '.join(KINDS)}"))
            continue
        kept[rel] = doc
    if len(kept) > MAX_FILES:
        problems.append(problem("bundle", "/files", f"more than {MAX_FILES} files", f"文件超过 {MAX_FILES} 个"))
    kept = {k: kept[k] for k in sorted(kept, key=lambda p: (KINDS.index(p.split("/")[0]), p))}
    manifest = bundle.get("manifest")
    return Template(manifest if isinstance(manifest, dict) else {}, kept, None, source, problems)


def builtin_dirs() -> list[Path]:
    """Where the built-in templates live: the ``zhongshu.templates`` namespace (the top-level
    templates/ folder of a checkout, or the installed package data)."""
    spec = importlib.util.find_spec("zhongshu.templates")
    out = []
    for loc in (spec.submodule_search_locations if spec and spec.submodule_search_locations else []):
        p = Path(loc)
        if p.is_dir():
            out.append(p)
    return out


def builtin_templates() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for base in builtin_dirs():
        for d in sorted(base.iterdir()):
            if d.is_dir() and (d / "manifest.json").is_file() and d.name not in found:
                found[d.name] = d
    return found


def load(source, *, check: bool = True) -> Template:
    """A template from a built-in name, a folder, a .zip or .json file, a bundle dict, or a
    Template. With check (default), TemplateInvalid is raised when anything is wrong."""
    if isinstance(source, Template):
        t = source
    elif isinstance(source, dict):
        t = read_bundle(source)
    elif isinstance(source, bytes):
        t = read_zip(source)
    else:
        s = str(source)
        p = Path(s)
        builtins = builtin_templates()
        if re.fullmatch(r"[a-z][a-z0-9_]{0,62}", s) and s in builtins and not p.exists():
            p = builtins[s]
        if p.is_dir():
            t = read_folder(p)
        elif p.is_file() and p.suffix == ".zip":
            t = read_zip(p, str(p))
        elif p.is_file() and p.suffix == ".json":
            data = _parse(p.name, p.read_bytes(), [])
            if data is None:
                raise TemplateInvalid([problem(p.name, "", "not a valid JSON bundle", "不是有效的 JSON 模板包")])
            t = read_bundle(data, str(p))
        else:
            known = ", ".join(sorted(builtins)) or "none"
            raise TemplateInvalid([problem(s, "", f"no template named '{s}' (built-in templates: {known}) and no such folder or file",
                                           f"没有名为 '{s}' 的模板(内置模板: {known}),也没有这个文件夹或文件")])
    if check:
        t.problems = t.problems + check_template(t)
        if t.problems:
            raise TemplateInvalid(t.problems)
    return t


# -- static checks ----------------------------------------------------------------------------

def _semver(v: str) -> tuple:
    core = re.split(r"[-+]", v, maxsplit=1)[0]
    return tuple(int(x) for x in core.split("."))


def _ver(v: str) -> tuple:
    parts = [int(x) for x in v.strip().split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def platform_version() -> str:
    try:
        from importlib.metadata import version

        return version("zhongshu")
    except Exception:  # pragma: no cover - running from a bare checkout
        return "0.1.0"


def satisfies(current: str, spec: str) -> bool:
    cur = _ver(re.split(r"[^0-9.]", current, maxsplit=1)[0] or "0")
    for clause in spec.split(","):
        m = re.match(r"\s*(>=|<=|==|!=|>|<)\s*([0-9.]+)\s*$", clause)
        if not m:
            return False
        op, v = m.group(1), _ver(m.group(2))
        ok = {">=": cur >= v, "<=": cur <= v, "==": cur == v, "!=": cur != v, ">": cur > v, "<": cur < v}[op]
        if not ok:
            return False
    return True


def child_table_name(table: str, fdef: dict) -> str:
    return (fdef.get("options") or {}).get("table") or f"{table}_{fdef['api_name']}"[:63]


def walk_tables(doc: dict, file: str):
    """(table api name, field definition, pointer, parent table) for every field of a table
    document, sub-table fields included (their table is the sub-table's child table)."""
    def walk(table, fields, base, parent):
        for i, f in enumerate(fields or []):
            if not isinstance(f, dict) or "api_name" not in f:
                continue
            yield table, f, f"{base}/{i}", parent
            if f.get("type") == "sub_table":
                yield from walk(child_table_name(table, f), (f.get("options") or {}).get("fields"),
                                f"{base}/{i}/options/fields", table)
    yield from walk(doc["api_name"], doc.get("fields"), "/fields", None)


def connector_uses(rule: dict, base: str = "") -> list[tuple[str, str]]:
    """(connector install api name, pointer) for every notify / call_connector action and
    connector_event trigger of a rule, nested actions included."""
    out = []

    def walk(node, ptr):
        if isinstance(node, dict):
            if node.get("type") in ("notify", "call_connector") and isinstance(node.get("connector"), str):
                out.append((node["connector"], ptr + "/connector"))
            for k, v in node.items():
                walk(v, f"{ptr}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{ptr}/{i}")

    walk(rule.get("actions"), base + "/actions")
    walk(rule.get("else"), base + "/else")
    trig = rule.get("trigger") or {}
    if trig.get("type") == "connector_event" and isinstance(trig.get("install"), str):
        out.append((trig["install"], base + "/trigger/install"))
    return out


def _errs(name: str, file: str, doc, base: str = "") -> list[dict]:
    return [problem(file, e["pointer"], e["message"], e["message_zh"]) for e in errors_for(name, doc, base)]


#: Templates that passed check_template, by what the check reads: installing the built-in
#: order hub into tenant after tenant checks the same unchanged files each time. A changed
#: file changes the key (a digest of the content, not a modification time that can stay the
#: same within a second), so it is checked again; failures are never kept.
_PASSED: LruCache[bool] = LruCache(64)


def _check_key(t: Template):
    digest = canonical_digest({"manifest": t.manifest, "files": t.files})
    if digest is None:
        return None
    sample = t.manifest.get("sample_data") if isinstance(t.manifest, dict) else None
    sample_there = bool(sample) and t.root is not None and isinstance(sample, str) and (t.root / sample).is_file()
    return (digest, str(t.root) if t.root is not None else None, sample_there, validation.generation, platform_version())


def check_template(t: Template) -> list[dict]:
    """Every check that needs no database: schemas, names used twice, references between the
    template's own files, declared connectors, the platform version, the sample-data file."""
    ensure_schemas()
    key = _check_key(t)
    if key is not None and _PASSED.get(key):
        return []
    out = _check_template(t)
    if not out and key is not None:
        _PASSED.put(key, True)
    return out


def _check_template(t: Template) -> list[dict]:
    out: list[dict] = []
    m = t.manifest
    out += _errs("template_manifest", "manifest.json", m)
    if not out:
        if "platform" in m and not satisfies(platform_version(), m["platform"]):
            out.append(problem("manifest.json", "/platform", f"needs platform {m['platform']}; this is {platform_version()}",
                               f"需要平台版本 {m['platform']},当前为 {platform_version()}"))
        if m.get("default_locale") and m.get("locales") and m["default_locale"] not in m["locales"]:
            out.append(problem("manifest.json", "/default_locale", "must be one of the locales", "应为 locales 之一"))
        names = [c["api_name"] for c in m.get("connectors", [])]
        for i, n in enumerate(names):
            if n in names[:i]:
                out.append(problem("manifest.json", f"/connectors/{i}/api_name", f"'{n}' is declared twice", f"'{n}' 重复声明"))
        if m.get("sample_data"):
            if t.root is not None and not (t.root / m["sample_data"]).is_file():
                out.append(problem("manifest.json", "/sample_data", f"no file {m['sample_data']} in the template folder",
                                   f"模板文件夹中没有 {m['sample_data']}"))
    declared = {c.get("api_name") for c in m.get("connectors", []) if isinstance(c, dict)}
    apps = {a.get("api_name") for a in m.get("apps", []) if isinstance(a, dict)}

    tables: dict[str, str] = {}  # api name (incl. sub-tables) -> file
    fields_of: dict[str, set] = {}
    good: dict[str, dict] = {}
    for rel, doc in t.files.items():
        if doc is None:
            continue  # already reported (bad JSON)
        if not isinstance(doc, dict):
            out.append(problem(rel, "", "must be a JSON object {...}", "应为 JSON 对象 {...}"))
            continue
        good[rel] = doc
    for rel, doc in good.items():
        if not rel.startswith("tables/"):
            continue
        errs = _errs("table", rel, doc)
        out += errs
        if errs:
            continue
        if doc["api_name"] in tables:
            out.append(problem(rel, "/api_name", f"table {doc['api_name']} is also defined in {tables[doc['api_name']]}",
                               f"表 {doc['api_name']} 已在 {tables[doc['api_name']]} 中定义"))
            continue
        tables[doc["api_name"]] = rel
        fields_of[doc["api_name"]] = set()
        for table, f, ptr, parent in walk_tables(doc, rel):
            if table not in fields_of:
                tables[table] = rel
                fields_of[table] = set()
            fields_of[table].add(f["api_name"])
        if doc.get("app") and doc["app"] not in apps:
            out.append(problem(rel, "/app", f"app '{doc['app']}' is not declared in manifest.json apps",
                               f"应用 '{doc['app']}' 未在 manifest.json 的 apps 中声明"))
    seen: dict[str, str] = {}
    for rel, doc in good.items():
        kind = rel.split("/")[0]
        if kind == "views":
            if not isinstance(doc.get("table"), str):
                out.append(problem(rel, "/table", "'table' is required: the api name of the view's table",
                                   "缺少 'table': 视图所属表的 api 名称"))
                continue
            view = {k: v for k, v in doc.items() if k != "table"}
            errs = _errs("view", rel, view)
            out += errs
            if not errs:
                key = f"view:{doc['table']}.{view['api_name']}"
                if key in seen:
                    out.append(problem(rel, "/api_name", f"view {view['api_name']} of {doc['table']} is also defined in {seen[key]}",
                                       f"视图 {view['api_name']} 已在 {seen[key]} 中定义"))
                seen[key] = rel
                if doc["table"] not in tables:
                    pass  # may be a table the tenant already has; checked when installing
                else:
                    for i, f in enumerate(view.get("fields", [])):
                        if f not in fields_of[doc["table"]] and f not in SYSTEM_FIELDS:
                            out.append(problem(rel, f"/fields/{i}", f"no field '{f}' in {doc['table']}",
                                               f"{doc['table']} 中没有字段 '{f}'"))
        elif kind == "rules":
            errs = _errs("rule", rel, doc)
            out += errs
            if not errs:
                key = f"rule:{doc['api_name']}"
                if key in seen:
                    out.append(problem(rel, "/api_name", f"rule {doc['api_name']} is also defined in {seen[key]}",
                                       f"规则 {doc['api_name']} 已在 {seen[key]} 中定义"))
                seen[key] = rel
                for name, ptr in connector_uses(doc):
                    if name not in declared:
                        out.append(problem(rel, ptr, f"connector '{name}' is not declared in manifest.json connectors",
                                           f"连接器 '{name}' 未在 manifest.json 的 connectors 中声明"))
        elif kind == "dashboards":
            errs = _errs("dashboard", rel, doc)
            out += errs
            if not errs:
                key = f"dashboard:{doc['api_name']}"
                if key in seen:
                    out.append(problem(rel, "/api_name", f"dashboard {doc['api_name']} is also defined in {seen[key]}",
                                       f"仪表盘 {doc['api_name']} 已在 {seen[key]} 中定义"))
                seen[key] = rel
                if doc.get("app") and doc["app"] not in apps:
                    out.append(problem(rel, "/app", f"app '{doc['app']}' is not declared in manifest.json apps",
                                       f"应用 '{doc['app']}' 未在 manifest.json 的 apps 中声明"))
        elif kind == "pages":
            slug = doc.get("slug")
            if not isinstance(slug, str) or not SLUG.match(slug):
                out.append(problem(rel, "/slug", "'slug' is required: lower-case letters, digits and - (at most 64)",
                                   "需要 'slug': 小写字母、数字和 -(最多 64 个字符)"))
                continue
            key = f"page:{slug}"
            if key in seen:
                out.append(problem(rel, "/slug", f"page {slug} is also defined in {seen[key]}", f"页面 {slug} 已在 {seen[key]} 中定义"))
            seen[key] = rel
    return out


SYSTEM_FIELDS = {"id", "version", "created_at", "updated_at", "created_by", "updated_by", "deleted_at", "parent_id", "position"}
