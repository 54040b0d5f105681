#!/usr/bin/env bash
# bench-nginx.sh: 03 and 04 against nginx, in one run, with wrk (docs/results.md).
#   keep-alive:       wrk -t2 -c50 -d${SECONDS_EACH}s  GET /ping
#   Connection close: the same with -H 'Connection: close' (a connection per request)
# Every server gets 2 worker processes; nginx answers `return 200 "PONG\n"`.
# Needs: ./lab build, ./lab setup --bench. Loopback only; everything started here is stopped here.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${SECONDS_EACH:-5}
ROUNDS=${ROUNDS:-3}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cat > "$work/nginx.conf" <<CONF
daemon off;
worker_processes 2;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    server {
        listen 127.0.0.1:18080;
        location / { default_type text/plain; return 200 "PONG\n"; }
    }
}
CONF
nginx -c "$work/nginx.conf" -p "$work" & pids+=($!)
build/bin/prefork --port 18081 --workers 2 >/dev/null 2>&1 & pids+=($!)
build/bin/prefork_threads --port 18082 --workers 2 >/dev/null 2>&1 & pids+=($!)
sleep 1

rps() {  # url [extra wrk args]: requests per second
    wrk -t2 -c50 -d"${SECONDS_EACH}s" "$@" | awk '/Requests\/sec/ {print $2}'
}
echo "| round | mode | nginx | prefork (03) | prefork_threads (04) | 03/nginx | 04/nginx |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
    for mode in keep-alive close; do
        args=(); [ "$mode" = close ] && args=(-H "Connection: close")
        n=$(rps "${args[@]}" http://127.0.0.1:18080/ping)
        a=$(rps "${args[@]}" http://127.0.0.1:18081/ping)
        b=$(rps "${args[@]}" http://127.0.0.1:18082/ping)
        awk -v r="$round" -v m="$mode" -v n="$n" -v a="$a" -v b="$b" \
            'BEGIN { printf "| %s | %s | %.0f | %.0f | %.0f | %.2f | %.2f |\n", r, m, n, a, b, a/n, b/n }'
    done
done
