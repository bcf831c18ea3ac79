#!/bin/sh
# A Zhongshu web node on granian (HTTP in Rust, the same WSGI app) instead of gunicorn.
# Measured for webhook intake in docs/benchmarks.md ("Webhook intake"): about half of
# gunicorn gthread's CPU per webhook. Needs `pip install granian` (not a dependency of the
# package). Reads the same variables as deploy/gunicorn.conf.py:
#
#   ZHONGSHU_BIND (127.0.0.1:8000)  ZHONGSHU_WEB_WORKERS (2)  ZHONGSHU_WEB_THREADS (32)
#   ZHONGSHU_LOG_LEVEL (info)       extra granian flags: "$@"
#
# Differences from gunicorn.conf.py: X-Forwarded-* headers are not applied (set
# ZHONGSHU_PUBLIC_URL behind a proxy so webhook URLs are right), and workers are recycled by
# age (24 h) instead of by request count. Web nodes run without the embedded worker and
# scheduler, as with gunicorn (create_app never starts them).
#
# The database pool of each process follows the threads: one kept connection per blocking
# thread plus one for the webhook group committer, 4 overflow (ZHONGSHU_DB_POOL_SIZE /
# ZHONGSHU_DB_MAX_OVERFLOW set by hand win; docs/deployment.md, "Database connections").
set -eu
bind="${ZHONGSHU_BIND:-127.0.0.1:8000}"
threads="${ZHONGSHU_WEB_THREADS:-32}"
export ZHONGSHU_DB_POOL_SIZE="${ZHONGSHU_DB_POOL_SIZE:-$((threads + 1))}"
export ZHONGSHU_DB_MAX_OVERFLOW="${ZHONGSHU_DB_MAX_OVERFLOW:-4}"
exec granian --interface wsgi --factory \
    --host "${bind%:*}" --port "${bind##*:}" \
    --workers "${ZHONGSHU_WEB_WORKERS:-2}" --blocking-threads "$threads" \
    --respawn-failed-workers --workers-lifetime 24h --no-ws \
    --log-level "${ZHONGSHU_LOG_LEVEL:-info}" "$@" \
    zhongshu.platform.app:create_app
