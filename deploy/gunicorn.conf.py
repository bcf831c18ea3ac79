"""gunicorn settings of a Zhongshu web node (stateless: any number behind a load balancer).

    gunicorn -c deploy/gunicorn.conf.py            # binds ZHONGSHU_BIND (127.0.0.1:8000)

Command-line flags override these (e.g. ``--bind 0.0.0.0:8000 --workers 4``). The app is
``zhongshu.platform.app:create_app()``; its configuration comes from ``ZHONGSHU_*``
environment variables (see docs/deployment.md). Web nodes must run with
``ZHONGSHU_RUN_WORKER=false`` and ``ZHONGSHU_RUN_SCHEDULER=false`` (``create_app`` never
starts them; ``zhongshu serve`` does) and share one ``ZHONGSHU_SECRET_KEY``.
"""
import os

wsgi_app = "zhongshu.platform.app:create_app()"
bind = os.environ.get("ZHONGSHU_BIND", "127.0.0.1:8000")
# Threads, not processes, carry the concurrency: requests mostly wait on PostgreSQL, and
# each process costs ~100 MB (schema cache, SQLAlchemy, jsonschema). 2 processes x 8
# threads per 2 cores is the measured sweet spot (docs/scale.md).
workers = int(os.environ.get("ZHONGSHU_WEB_WORKERS", "2"))
worker_class = os.environ.get("ZHONGSHU_WEB_WORKER_CLASS", "gthread")
threads = int(os.environ.get("ZHONGSHU_WEB_THREADS", "8"))
# Each process opens its own database pool after the fork (never preload: a pool must not
# be shared across fork). Its size follows the threads (post_fork below).
preload_app = False
timeout = 60
graceful_timeout = 30
keepalive = 5
# Recycle processes now and then: bounds memory growth from caches.
max_requests = int(os.environ.get("ZHONGSHU_WEB_MAX_REQUESTS", "20000"))
max_requests_jitter = 2000
# Behind a load balancer on the same private network: trust its X-Forwarded-* headers.
forwarded_allow_ips = os.environ.get("ZHONGSHU_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("ZHONGSHU_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("ZHONGSHU_LOG_LEVEL", "info")
proc_name = "zhongshu-web"


def pool_settings(threads: int, environ=os.environ) -> dict:
    """The database pool of a web process: one kept connection per request thread (a
    request holds at most one) plus one for the webhook group committer, so no request
    opens and closes a connection of its own; a few overflow connections for a moment of
    more. ``ZHONGSHU_DB_POOL_SIZE`` / ``ZHONGSHU_DB_MAX_OVERFLOW`` set by hand win.
    Connection count per web process: docs/deployment.md ("Database connections")."""
    return {"ZHONGSHU_DB_POOL_SIZE": environ.get("ZHONGSHU_DB_POOL_SIZE") or str(threads + 1),
            "ZHONGSHU_DB_MAX_OVERFLOW": environ.get("ZHONGSHU_DB_MAX_OVERFLOW") or "4"}


def post_fork(server, worker):
    """In the new process, before the app (and its pool) is made: size the pool for the
    threads this process really runs (``--threads`` on the command line included)."""
    os.environ.update(pool_settings(int(worker.cfg.threads)))


def post_worker_init(worker):
    """Discover the connector plugins (and validate their manifests) before the first request:
    otherwise the first webhook a new process takes waits ~1 s for it."""
    try:
        from zhongshu.connectors.api.registry import default_registry
        default_registry()
    except Exception:  # noqa: BLE001 - the first request will try again and report it
        worker.log.exception("connector discovery failed at start")
