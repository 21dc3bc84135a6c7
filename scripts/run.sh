#!/usr/bin/env bash
# Web server, Celery workers (general and clocks) and Celery beat together; Ctrl-C (or any of them
# dying) stops all.
#
# Loads the demo data (seed_demo, idempotent), then serves. PORT_BIND (default 127.0.0.1:8000) is
# where the web server listens; unless PORTAL_BASE_URL is set, the links in emails, the iCal feed
# and security.txt follow it (the demo's seeding, web, worker and beat alike).
# Each process runs in its own session and process group (setsid), its children with it (the
# worker's pool, the server under runserver's autoreloader). On Ctrl-C, TERM, HUP or exit: TERM to
# the web and beat groups and to the worker's main process (which stops its pool; TERM to the pool
# children themselves makes it start new ones), then KILL to every group after STOP_GRACE seconds
# (5) for whatever is left. A worker's warm shutdown waits for its running task; every sweep is
# safe to run twice, and an email's outbox row is sent again when its lease runs out, so a cold
# stop loses nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${VENV:-.venv}/bin/python
PORT_BIND=${PORT_BIND:-127.0.0.1:8000}
STOP_GRACE=${STOP_GRACE:-5}
BEAT_SCHEDULE=${BEAT_SCHEDULE:-var/celerybeat-schedule}

case $PORT_BIND in
  *:*) host=${PORT_BIND%:*} port=${PORT_BIND##*:} ;;
  *) host=127.0.0.1 port=$PORT_BIND ;;  # runserver accepts a bare port
esac
case $host in 0.0.0.0 | "" | "[::]") link_host=127.0.0.1 ;; *) link_host=$host ;; esac
url="http://$link_host:$port"
if [ "${DJANGO_ENV:-}" != production ]; then
  export PORTAL_BASE_URL=${PORTAL_BASE_URL:-$url}
fi
# A port another program listens on: say so now (runserver would fail after the worker and beat
# had started, and whatever answers there would have been announced as this portal).
"$PY" - "$host" "$port" <<'EOF' || exit 1
import socket, sys
host, port = sys.argv[1].strip("[]") or "127.0.0.1", int(sys.argv[2])
with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as runserver binds: a port just freed is free
    try:
        s.bind((host, port))
    except OSError as exc:
        sys.exit(f"Cannot serve on {sys.argv[1]}:{port} ({exc.strerror}): another program listens there. "
                 "Stop it, or choose another port: PORT_BIND=127.0.0.1:8101 make run")
EOF
# The demo data here, not before: its first run files a week of work whose emails (and their
# unsubscribe links, fixed when written) must name the same address as the server's pages.
"$PY" manage.py seed_demo || exit 1

groups=()   # process group ids: each child leads its own (setsid), its children stay in it
term=()     # what gets TERM first: a group (-pgid) or only its leader (pid)
announcer=
in_groups() { # any process of our groups left? (bash reaps its own children as they exit)
  local g
  for g in "${groups[@]}"; do
    kill -0 -- "-$g" 2>/dev/null && return 0
  done
  return 1
}
stop() {
  trap - EXIT
  trap 'deadline=0' INT TERM HUP  # a second Ctrl-C: KILL now
  [ -n "$announcer" ] && kill "$announcer" 2>/dev/null
  local g
  deadline=$((SECONDS + STOP_GRACE))
  for g in "${term[@]}"; do kill -TERM -- "$g" 2>/dev/null; done
  while in_groups && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  for g in "${groups[@]}"; do kill -KILL -- "-$g" 2>/dev/null; done
  wait 2>/dev/null
  echo "SLA portal stopped."
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP  # the terminal closed: in their own sessions, the children would not hear it

start() { # start group|leader cmd...: cmd in a new session and process group (its pid is the group's id)
  local how=$1
  shift
  setsid "$@" &
  groups+=($!)
  if [ "$how" = group ]; then term+=("-$!"); else term+=("$!"); fi
}
# Two workers: the general one (email, webhooks, inbound mail, recomputes) on the default queue, and
# one for the clocks' sweeps (escalations, SLA deadlines: portal/celery.py) on "<queue>-clocks", so
# that a backlog of email or webhooks never holds the process a P1 escalation needs.
queue=${CELERY_QUEUE:-portal}
start leader "$PY" -m celery -A portal worker --loglevel=INFO --concurrency=2 --without-gossip --without-mingle -n portal@%h -Q "$queue"
start leader "$PY" -m celery -A portal worker --loglevel=INFO --concurrency=1 --without-gossip --without-mingle -n clocks@%h -Q "$queue-clocks"
start group "$PY" -m celery -A portal beat --loglevel=INFO --schedule="$BEAT_SCHEDULE"
start group "$PY" manage.py runserver "$PORT_BIND"

# The one useful line, last: once /healthz answers 200 (the web serves, beat has sent the sweeps and
# the worker has run them all), or after 60 s whatever it says.
announce() {
  "$PY" - "$url/healthz" <<'EOF'
import sys, time, urllib.error, urllib.request
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(sys.argv[1], timeout=2)
        break
    except urllib.error.HTTPError:
        pass  # 503: a sweep has not run yet
    except OSError:
        pass  # not listening yet
    time.sleep(0.3)
EOF
  echo
  echo "SLA portal: $url/  (Ctrl-C stops web, workers and beat)"
}
announce &
announcer=$!

wait -n "${groups[@]}"  # the first of web, workers and beat to exit stops the others (trap on EXIT)
