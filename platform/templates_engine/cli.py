"""``zhongshu template ...``: list, check, install, export and upgrade templates."""
from __future__ import annotations

import json
from pathlib import Path

import click

from zhongshu.platform.errors import ApiError


def _platform():
    from zhongshu.platform.cli import _platform as make

    return make()


def _fail(e: Exception):
    from .loader import TemplateInvalid

    if isinstance(e, TemplateInvalid):
        raise click.ClickException("the template has problems (nothing was changed):\n  " + "\n  ".join(e.lines())) from None
    raise click.ClickException(getattr(e, "message", None) or str(e)) from None


def _tenant(zs, slug):
    t = zs.tenant_by_slug(slug)
    if t is None:
        raise click.ClickException(f"no tenant {slug} (see: zhongshu tenant list)")
    return t


def _label(v) -> str:
    if isinstance(v, dict):
        return " / ".join(str(x) for x in v.values())
    return str(v or "")


@click.group()
def template():
    """Solution templates: gallery, install, export, upgrade."""


@template.command("list")
def list_cmd():
    """The built-in templates."""
    from .loader import builtin_templates, load

    found = builtin_templates()
    if not found:
        click.echo("no built-in templates found")
    for name, path in found.items():
        t = load(path, check=False)
        m = t.manifest
        conns = ", ".join(f"{c['api_name']} ({c['connector']})" for c in m.get("connectors", []))
        click.echo(f"{name}\t{m.get('version', '?')}\t{_label(m.get('label'))}" + (f"\tconnectors: {conns}" if conns else ""))


@template.command("check")
@click.argument("source")
def check_cmd(source):
    """Check a template (built-in name, folder, .zip or bundle .json) without installing it."""
    from .loader import load

    try:
        t = load(source)
    except ApiError as e:
        _fail(e)
    click.echo(f"{t.name} {t.version}: {len(t.files)} files, no problems found by the static checks")


@template.command("install")
@click.argument("source")
@click.option("--tenant", "tenant_slug", required=True)
@click.option("--sample-data", is_flag=True, help="also create the template's sample data")
@click.option("--size", type=click.IntRange(1, 10_000_000), default=None, help="sample data size")
@click.option("--connectors", "connectors_file", type=click.Path(exists=True, dir_okay=False),
              help="a JSON file {api_name: {config, credentials}} of connector installs to create")
def install_cmd(source, tenant_slug, sample_data, size, connectors_file):
    """Install SOURCE (a built-in name, a folder, a .zip or a bundle .json) into a tenant."""
    from .installer import install_template

    zs = _platform()
    try:
        t = _tenant(zs, tenant_slug)
        connectors = json.loads(Path(connectors_file).read_text("utf-8")) if connectors_file else None
        report = install_template(zs, t.id, source, connectors=connectors, with_sample_data=sample_data, sample_size=size)
    except (ApiError, ValueError) as e:
        _fail(e)
    finally:
        zs.close()
    c = report["created"]
    click.echo(f"installed {report['template']} {report['version']} into {tenant_slug}: {len(c['tables'])} tables, "
               f"{c['fields']} fields, {len(c['views'])} views, {len(c['rules'])} rules, {len(c['dashboards'])} dashboards, "
               f"{len(c['pages'])} pages")
    for d in report["disabled_rules"]:
        click.echo(f"  rule {d['rule']} is off: {d['reason']}")
    if "sample_data" in report:
        click.echo(f"  sample data: {json.dumps(report['sample_data'], ensure_ascii=False)}")


@template.command("export")
@click.option("--tenant", "tenant_slug", required=True)
@click.option("--app", default=None, help="only this app (default: everything)")
@click.option("--name", default=None, help="the template name to write in the manifest")
@click.option("--version", "version", default="1.0.0", show_default=True)
@click.argument("out_dir", type=click.Path(file_okay=False))
def export_cmd(tenant_slug, app, name, version, out_dir):
    """Write a tenant's definitions into OUT_DIR in the template format."""
    from zhongshu.platform.models import Tenant

    from .exporter import export_template

    zs = _platform()
    try:
        t = _tenant(zs, tenant_slug)
        with zs.tenant_session(t.id) as s:
            tpl = export_template(s, s.get(Tenant, t.id), app, name=name, version=version)
        tpl.write(out_dir)
    except ApiError as e:
        _fail(e)
    finally:
        zs.close()
    click.echo(f"wrote {len(tpl.files)} files and manifest.json to {out_dir}")


@template.command("upgrade")
@click.argument("source")
@click.option("--tenant", "tenant_slug", required=True)
def upgrade_cmd(source, tenant_slug):
    """Apply a newer version of an installed template; customisations are kept."""
    from .upgrade import upgrade_template

    zs = _platform()
    try:
        t = _tenant(zs, tenant_slug)
        r = upgrade_template(zs, t.id, source)
    except ApiError as e:
        _fail(e)
    finally:
        zs.close()
    click.echo(f"upgraded {r['template']} {r['from_version']} -> {r['to_version']} in {tenant_slug}")
    for key in ("added", "updated", "merged", "removed_from_template_kept"):
        if r[key]:
            click.echo(f"  {key.replace('_', ' ')}: {', '.join(r[key])}")
    for c in r["conflicts"]:
        click.echo(f"  conflict: {c['object']} ({c['file']}): {c['reason']}; tenant changed {', '.join(c['tenant_changed']) or '-'}, "
                   f"template changed {', '.join(c['template_changed']) or '-'}; kept the tenant's version")


COMMANDS = [template]
