"""The ``zhongshu`` command line (click, Flask CLI conventions).

    zhongshu init            migrate, create the first admin and a demo tenant
    zhongshu serve           run the server (embedded default: one process)
    zhongshu migrate         apply database migrations
    zhongshu user create     add a user; zhongshu tenant create: add a tenant
    zhongshu user disable    disable a user (the account, or with --tenant one membership); user enable undoes it
"""
from __future__ import annotations

import json
import secrets
import sys

import click
from sqlalchemy import select

from .config import load_config
from .core import Platform


def _platform() -> Platform:
    return Platform(load_config())


@click.group()
@click.version_option(package_name="zhongshu")
def main():
    """Zhongshu (中枢): a low-code order hub."""


@main.command()
@click.option("--revision", default="head", show_default=True)
def migrate(revision):
    """Apply database migrations of the system tables."""
    from .migrations import upgrade

    zs = _platform()
    upgrade(zs.engine, revision)
    click.echo(f"database at {revision}: {zs.engine.url.render_as_string(hide_password=True)}")


def ensure_initialised(zs: Platform, *, admin_email: str, tenant_slug: str, tenant_name: str, quiet: bool = False,
                       template: str | None = "order_management", sample_size: int = 300) -> dict:
    """Idempotent first start: migrations, an admin user and a demo tenant. The admin's
    password is generated once and kept in the instance folder (mode 0600)."""
    from pathlib import Path

    from .migrations import upgrade
    from .models import Tenant, User

    upgrade(zs.engine)
    cred_file = Path(zs.config["DATA_DIR"]) / "admin_credentials.json"
    with zs.tenant_session(None) as s:
        admin = s.scalar(select(User).where(User.email == admin_email))
        tenant = s.scalar(select(Tenant).where(Tenant.slug == tenant_slug))
    created = {}
    if admin is None:
        password = secrets.token_urlsafe(12)
        admin = zs.create_user(admin_email, password, name="Admin", superuser=True)
        cred_file.write_text(json.dumps({"email": admin_email, "password": password}), "utf-8")
        cred_file.chmod(0o600)
        created["admin"] = True
    if tenant is None:
        tenant = zs.create_tenant(tenant_slug, tenant_name, owner_email=admin_email)
        created["tenant"] = True
        if template:
            # The quick start: the order hub with sample data in the demo tenant.
            from .templates_engine import install_template

            if not quiet:
                click.echo(f"installing the {template} template with {sample_size} sample orders (once)...")
            report = install_template(zs, tenant.id, template, with_sample_data=sample_size > 0, sample_size=sample_size or None)
            created["template"] = report.get("template", template)
    creds = json.loads(cred_file.read_text("utf-8")) if cred_file.exists() else {"email": admin_email, "password": "(set before)"}
    return {"admin": admin, "tenant": tenant, "credentials": creds, "created": created}


def _template_choice(value: str | None) -> str | None:
    # click ignores an empty environment variable, so "none" is the way to say no template.
    return None if not value or value.lower() == "none" else value


TEMPLATE_OPTION = click.option("--template", default="order_management", show_default=True, envvar="ZHONGSHU_INIT_TEMPLATE",
                               help="template installed into the new demo tenant ('none' for none)")
SAMPLE_OPTION = click.option("--sample-size", default=300, show_default=True, type=int, envvar="ZHONGSHU_INIT_SAMPLE_SIZE",
                             help="sample orders generated with the template (0 for none)")


@main.command()
@click.option("--admin-email", default="admin@example.com", show_default=True)
@click.option("--tenant", "tenant_slug", default="demo", show_default=True)
@click.option("--tenant-name", default="演示公司 Demo Co.", show_default=True)
@TEMPLATE_OPTION
@SAMPLE_OPTION
def init(admin_email, tenant_slug, tenant_name, template, sample_size):
    """Prepare the instance: database, first admin, demo tenant with the order hub (safe to run again)."""
    zs = _platform()
    info = ensure_initialised(zs, admin_email=admin_email, tenant_slug=tenant_slug, tenant_name=tenant_name,
                              template=_template_choice(template), sample_size=sample_size)
    c = info["credentials"]
    click.echo(f"instance folder: {zs.config['DATA_DIR']}")
    click.echo(f"tenant: {info['tenant'].slug}")
    click.echo(f"log in as {c['email']} with password {c['password']}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--init/--no-init", "do_init", default=True, help="prepare the instance first (idempotent)")
@TEMPLATE_OPTION
@SAMPLE_OPTION
def serve(host, port, threads, do_init, template, sample_size):
    """Run the server: API, UI, worker and scheduler in one process (waitress)."""
    from waitress import serve as waitress_serve

    from .app import create_app
    from .serve_memory import Trimmer, limit_arenas

    limit_arenas()  # before any thread starts (platform/serve_memory.py)
    zs = _platform()
    if do_init:
        info = ensure_initialised(zs, admin_email="admin@example.com", tenant_slug="demo", tenant_name="演示公司 Demo Co.",
                                  template=_template_choice(template), sample_size=sample_size)
        c = info["credentials"]
        click.echo(f"Zhongshu on http://{host}:{port}/  —  log in as {c['email']} / {c['password']}")
    app = create_app(platform=zs)
    # The embedded default: this one process also runs the outbox worker and the scheduler.
    if zs.config["RUN_WORKER"]:
        from zhongshu.runtime import worker

        worker.start_in_process(zs)
    if zs.config["RUN_SCHEDULER"]:
        from zhongshu.runtime import scheduler

        scheduler.start_in_process(zs)
    trimmer = Trimmer().start()
    try:
        waitress_serve(app, host=host, port=port, threads=threads, ident="zhongshu")
    finally:
        trimmer.stop()
        zs.close()


@main.group()
def user():
    """Users."""


@user.command("create")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", default="")
@click.option("--superuser", is_flag=True)
@click.option("--tenant", "tenant_slug", default=None, help="add to this tenant")
@click.option("--role", default="member", type=click.Choice(["owner", "admin", "builder", "member", "viewer"]))
def user_create(email, password, name, superuser, tenant_slug, role):
    """Create a user (and optionally add them to a tenant)."""
    from .errors import ApiError

    zs = _platform()
    try:
        t = None
        if tenant_slug:
            t = zs.tenant_by_slug(tenant_slug)
            if t is None:
                raise click.ClickException(f"no tenant {tenant_slug}")  # checked before anything is created
        u = zs.create_user(email, password, name=name, superuser=superuser)
        if t is not None:
            zs.add_member(t.id, u.id, role)
    except ApiError as e:
        raise click.ClickException(e.message) from None
    click.echo(f"created user {u.email}")


def _account_access(zs: Platform, email: str, reason: str | None, disable: bool) -> dict:
    from .models import User
    from .user_status import disable_account, enable_account

    with zs.tenant_session(None, write=True) as s:
        u = s.scalar(select(User).where(User.email == email))
        if u is None:
            raise click.ClickException(f"no user {email}")
        if disable:
            return disable_account(s, u, actor_id=None, reason=reason, via="cli")
        return {"changed": enable_account(s, u, actor_id=None, reason=reason, via="cli")}


def _membership_access(zs: Platform, email: str, tenant_slug: str, reason: str | None, disable: bool) -> dict:
    from .models import Membership, User
    from .user_status import disable_membership, enable_membership, has_other_active_workspace

    t = zs.tenant_by_slug(tenant_slug)
    if t is None:
        raise click.ClickException(f"no tenant {tenant_slug}")
    with zs.tenant_session(None) as everywhere:
        u = everywhere.scalar(select(User).where(User.email == email))
        if u is None:
            raise click.ClickException(f"no user {email}")
        elsewhere = u.is_superuser or has_other_active_workspace(everywhere, u.id, t.id)
    with zs.tenant_session(t.id, write=True) as s:
        m = s.scalar(select(Membership).where(Membership.user_id == u.id))
        if m is None:
            raise click.ClickException(f"{email} is not a member of {tenant_slug}")
        u = s.get(User, u.id)
        # the operator acts with an owner's rights; the last active owner still stays
        if disable:
            return {"changed": disable_membership(s, m, u, actor_id=None, actor_role="owner", reason=reason,
                                                  end_sessions=not elsewhere, via="cli")}
        return {"changed": enable_membership(s, m, u, actor_id=None, actor_role="owner", reason=reason, via="cli")}


def _change_access(email: str, tenant_slug: str | None, reason: str | None, *, disable: bool) -> None:
    """``user disable`` / ``user enable``: the account, or one membership with --tenant."""
    from .errors import ApiError
    from .user_status import check_reason

    zs = _platform()
    email = email.lower()
    try:
        reason = check_reason(reason)
        if tenant_slug is None:
            out = _account_access(zs, email, reason, disable)
        else:
            out = _membership_access(zs, email, tenant_slug, reason, disable)
    except ApiError as e:
        raise click.ClickException(e.message) from None
    finally:
        zs.close()
    verb = "disabled" if disable else "enabled"
    where = f" in {tenant_slug}" if tenant_slug else ""
    if not out["changed"]:
        click.echo(f"{email} was already {verb}{where}; nothing changed")
        return
    click.echo(f"{verb} {email}{where}")
    if disable and tenant_slug is None:
        click.echo(f"browser sessions ended: {out['ended_sessions']}; API tokens are refused from now on")
        if out["workspaces_without_owner"]:
            click.echo("warning: no active owner is left in " + ", ".join(out["workspaces_without_owner"]), err=True)


REASON_OPTION = click.option("--reason", default=None, help="kept in the audit log")
TENANT_ONLY = click.option("--tenant", "tenant_slug", default=None,
                           help="only the membership of this tenant (default: the whole account)")


@user.command("disable")
@click.argument("email")
@TENANT_ONLY
@REASON_OPTION
def user_disable(email, tenant_slug, reason):
    """Disable a user: no login, sessions end now, API tokens are refused. Nothing is deleted; undo with `user enable`."""
    _change_access(email, tenant_slug, reason, disable=True)


@user.command("enable")
@click.argument("email")
@TENANT_ONLY
@REASON_OPTION
def user_enable(email, tenant_slug, reason):
    """Enable a disabled user (or, with --tenant, their membership) again."""
    _change_access(email, tenant_slug, reason, disable=False)


@main.group()
def tenant():
    """Tenants."""


@tenant.command("create")
@click.argument("slug")
@click.option("--name", default=None)
@click.option("--owner", "owner_email", default=None, help="email of an existing user who owns it")
@click.option("--timezone", "tz", default=None)
def tenant_create(slug, name, owner_email, tz):
    """Create a tenant (workspace)."""
    from .errors import ApiError

    zs = _platform()
    try:
        t = zs.create_tenant(slug, name or slug, timezone_name=tz, owner_email=owner_email)
    except (ApiError, ValueError) as e:
        raise click.ClickException(getattr(e, "message", str(e))) from None
    click.echo(f"created tenant {t.slug} (id {t.id})")


@tenant.command("list")
def tenant_list():
    from .models import Tenant

    zs = _platform()
    with zs.tenant_session(None) as s:
        for t in s.scalars(select(Tenant).order_by(Tenant.id)):
            click.echo(f"{t.id}\t{t.slug}\t{t.name}\t{t.timezone}")


@main.command("schemas")
@click.argument("folder", type=click.Path(file_okay=False))
def export_schemas(folder):
    """Write every published JSON Schema into FOLDER."""
    from pathlib import Path

    from .validation import all_schema_names, schema

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for n in all_schema_names():
        (out / f"{n}.json").write_text(json.dumps(schema(n), ensure_ascii=False, indent=2), "utf-8")
    click.echo(f"wrote {len(all_schema_names())} schemas to {out}")


def _load_extension_commands():
    """Commands contributed by the other parts (runtime: worker, scheduler; templates)."""
    import importlib

    for module in ("zhongshu.runtime.cli", "zhongshu.platform.templates_engine.cli", "zhongshu.runtime.distributed.cli",
                   "zhongshu.connectors.service.cli", "zhongshu.platform.backup"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue
        for cmd in getattr(mod, "COMMANDS", []):
            main.add_command(cmd)


_load_extension_commands()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
