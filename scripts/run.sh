#!/usr/bin/env bash
# Web server, Celery worker and Celery beat together; Ctrl-C (or any of them dying) stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${VENV:-.venv}/bin/python
pids=()
cleanup() { trap - INT TERM EXIT; kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup INT TERM EXIT

$PY -m celery -A portal worker --loglevel=INFO --concurrency=2 --without-gossip --without-mingle -n portal@%h &
pids+=($!)
$PY -m celery -A portal beat --loglevel=INFO --schedule=var/celerybeat-schedule &
pids+=($!)
$PY manage.py runserver "${PORT_BIND:-127.0.0.1:8000}" &
pids+=($!)
echo "SLA portal: http://${PORT_BIND:-127.0.0.1:8000}/  (Ctrl-C stops web, worker and beat)"
wait -n
