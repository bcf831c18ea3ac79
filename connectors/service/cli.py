"""``zhongshu connectors ...`` commands (add ``"zhongshu.connectors.service.cli"`` to the
modules ``platform/cli.py`` loads extension commands from)."""
from __future__ import annotations

import json

import click


def _platform():
    from zhongshu.platform.config import load_config
    from zhongshu.platform.core import Platform
    return Platform(load_config())


@click.group("connectors")
def connectors():
    """Connector installs: credential keys, pulls."""


@connectors.command("rotate-keys")
@click.option("--keep-old", is_flag=True, help="Key file: keep the old keys after re-encrypting.")
def rotate_keys_cmd(keep_old):
    """Re-encrypt every install's credentials under a new key (key file) or under the
    newest key of ZHONGSHU_SECRET_KEYS."""
    from .keys import rotate_keys
    zs = _platform()
    try:
        result = rotate_keys(zs, drop_old=not keep_old)
    finally:
        zs.close()
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))
    if result["failed"]:
        raise SystemExit(1)


@connectors.command("pull")
@click.option("--force", is_flag=True, help="Pull every install now, whatever its interval.")
def pull_cmd(force):
    """Run the scheduled pulls once (what the scheduler does every minute)."""
    from .pulls import run_pulls
    zs = _platform()
    try:
        result = run_pulls(zs, force=force)
    finally:
        zs.close()
    click.echo(json.dumps(result, ensure_ascii=False, indent=2, default=str))


@connectors.command("generate-key")
def generate_key_cmd():
    """Print a new Fernet key (for ZHONGSHU_SECRET_KEYS)."""
    from zhongshu.connectors.api import generate_key
    click.echo(generate_key())


COMMANDS = [connectors]
