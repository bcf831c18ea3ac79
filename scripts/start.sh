#!/usr/bin/env bash
# Sets Zhongshu up (once) and starts it on the embedded default: SQLite in ./instance,
# an admin user and a demo tenant. Login details are printed at start.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
exec .venv/bin/zhongshu serve "$@"
