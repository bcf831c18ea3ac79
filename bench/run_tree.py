#!/usr/bin/env python
"""Run a bench script with the ``zhongshu`` packages taken from another checkout (a git
worktree), with this venv: A/B pairs without a second venv.

    git worktree add --detach /tmp/me-base <rev>
    .venv/bin/python bench/run_tree.py /tmp/me-base bench/bench_bulk_cpu.py --db sqlite
    .venv/bin/python bench/run_tree.py /tmp/me-base bench/bench_data.py --rows 100000 ...

For ``bench_data.py`` the server it starts runs from the same checkout (its command goes
through this script again). The checkout must not need packages this venv lacks.
"""
from __future__ import annotations

import importlib.util
import os
import runpy
import sys
import types

PACKAGES = ("platform", "runtime", "connectors", "builder_ui", "templates")


def use_tree(root: str) -> None:
    """Maps zhongshu.<package> to <root>/<package> before anything imports it."""
    pkg = types.ModuleType("zhongshu")
    pkg.__path__ = []
    sys.modules["zhongshu"] = pkg
    for sub in PACKAGES:
        path = os.path.join(root, sub)
        init = os.path.join(path, "__init__.py")
        if os.path.exists(init):
            spec = importlib.util.spec_from_file_location(f"zhongshu.{sub}", init, submodule_search_locations=[path])
            m = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = m
            spec.loader.exec_module(m)
        else:  # a namespace package, as the editable install maps it
            m = types.ModuleType(f"zhongshu.{sub}")
            m.__path__ = [path]
            # with a spec, as importlib gives one (importlib.resources and the template
            # loader look at __spec__; without it a template install failed on the base tree)
            m.__spec__ = importlib.util.spec_from_loader(m.__name__, None, is_package=True)
            m.__spec__.submodule_search_locations = [path]
            sys.modules[m.__name__] = m
        setattr(pkg, sub, m)


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    root, script = os.path.abspath(sys.argv[1]), sys.argv[2]
    use_tree(root)
    if script == "--serve":  # the server bench_data.py starts
        sys.argv = ["zhongshu", *sys.argv[3:]]
        from zhongshu.platform.cli import main as cli

        cli()
        return
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import _server

    _server._zhongshu_cmd = lambda: [sys.executable, os.path.abspath(__file__), root, "--serve"]
    sys.argv = [script, *sys.argv[3:]]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
