#!/usr/bin/env bash
# Sets up everything the tests need and runs them, on SQLite and on PostgreSQL
# (127.0.0.1:5432; set ZHONGSHU_TEST_DATABASES=sqlite to run without it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh test
# Browser tests drive Debian's Chromium; install it when missing (needs root, as in CI).
if [ -d tests/ui ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing: browser tests will be skipped (run as root or apt-get install chromium)" >&2
  fi
fi
# The PostgreSQL-restart test runs on its own afterwards: a restart in the middle of the main
# run would cut the other tests' connections.
status=0
.venv/bin/python -m pytest -n 2 -p no:cacheprovider -m "not pg_restart" "$@" || status=$?
if [ "$status" = 0 ] && [ "$#" = 0 ]; then
  .venv/bin/python -m pytest -p no:cacheprovider -m pg_restart -q || status=$?
  [ "$status" = 5 ] && status=0  # no such test selected
fi
exit "$status"
