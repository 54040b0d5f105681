#!/usr/bin/env bash
# bench-nginx.sh: the models against nginx, in one run, with wrk (docs/results.md).
#
#   tools/compare/bench-nginx.sh             03, 04 and 06 with 2 workers each against nginx with 2;
#                                    wrk -t2 -c50 shares every CPU with them
#   tools/compare/bench-nginx.sh --one-core  05, and 06 and nginx with 1 worker each, every server on
#                                    the last CPU, wrk -t1 -c50 on the others
#
# Two loads each round: keep-alive (GET /ping) and a connection per request
# (the same with Connection: close). nginx answers `return 200 "PONG\n"`.
# The servers take turns, and the order is reversed every other round, so
# that a slow spell of this shared machine does not land on one server only.
# Prints every round, then the median of each ratio to nginx.
# Env: ROUNDS (5), SECONDS_EACH (5). Needs ./lab build and ./lab setup --bench.
# Loopback only; everything started here is stopped here.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_EACH=${SECONDS_EACH:-5}
ROUNDS=${ROUNDS:-5}
one_core=false
[ "${1:-}" = --one-core ] && one_core=true
for tool in nginx wrk taskset; do
    command -v "$tool" >/dev/null || { echo "bench-nginx: $tool not found (./lab setup --bench)" >&2; exit 1; }
done
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

cpus=$(nproc)
if $one_core; then
    [ "$cpus" -ge 2 ] || { echo "bench-nginx: --one-core needs 2 CPUs or more" >&2; exit 1; }
    server_cpu=$((cpus - 1))
    load_cpus="0-$((cpus - 2))"
    workers=1
    on_server=(taskset -c "$server_cpu")
    on_load=(taskset -c "$load_cpus")
    wrk_threads=1
    names=(nginx event_loop prefork_event_loop)
    labels=("nginx" "05" "06")
else
    workers=2
    on_server=()
    on_load=()
    wrk_threads=2
    names=(nginx prefork prefork_threads prefork_event_loop)
    labels=("nginx" "03" "04" "06")
fi

cat > "$work/nginx.conf" <<CONF
daemon off;
worker_processes $workers;
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
"${on_server[@]}" nginx -c "$work/nginx.conf" -p "$work" & pids+=($!)
port=18080
ports=(18080)
for name in "${names[@]:1}"; do
    port=$((port + 1))
    ports+=("$port")
    args=(--port "$port")
    [ "$name" = event_loop ] || args+=(--workers "$workers")
    "${on_server[@]}" "build/bin/$name" "${args[@]}" >/dev/null 2>&1 & pids+=($!)
done
sleep 1

rps() {  # port mode: requests per second
    local extra=()
    [ "$2" = close ] && extra=(-H "Connection: close")
    "${on_load[@]}" wrk -t"$wrk_threads" -c50 -d"${SECONDS_EACH}s" "${extra[@]}" "http://127.0.0.1:$1/ping" |
        awk '/Requests\/sec/ {print $2}'
}

if $one_core; then
    echo "Servers on CPU $server_cpu, wrk on CPU $load_cpus; 1 worker each; ${SECONDS_EACH} s per run."
else
    echo "Not pinned; $workers workers each; ${SECONDS_EACH} s per run."
fi
echo
header="| round | mode |"; rule="|---|---|"
for l in "${labels[@]}"; do header+=" $l |"; rule+="---|"; done
for l in "${labels[@]:1}"; do header+=" $l/nginx |"; rule+="---|"; done
echo "$header"; echo "$rule"
ratios="$work/ratios"
: > "$ratios"
n=${#names[@]}
for round in $(seq 1 "$ROUNDS"); do
    for mode in keep-alive close; do
        order=$(seq 0 $((n - 1)))
        [ $((round % 2)) -eq 0 ] && order=$(seq $((n - 1)) -1 0)
        declare -A got=()
        for i in $order; do got[$i]=$(rps "${ports[$i]}" "$mode"); done
        line="| $round | $mode |"
        for i in $(seq 0 $((n - 1))); do line+=" $(printf '%.0f' "${got[$i]}") |"; done
        for i in $(seq 1 $((n - 1))); do
            r=$(awk -v a="${got[$i]}" -v b="${got[0]}" 'BEGIN { printf "%.2f", a / b }')
            line+=" $r |"
            echo "$mode ${labels[$i]} $r" >> "$ratios"
        done
        echo "$line"
        unset got
    done
done
echo
echo "Median of the ratios to nginx over $ROUNDS rounds:"
for mode in keep-alive close; do
    line="  $mode:"
    for l in "${labels[@]:1}"; do
        m=$(awk -v m="$mode" -v l="$l" '$1 == m && $2 == l {print $3}' "$ratios" | sort -n |
            awk '{v[NR] = $1} END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
        line+=" $l ${m}x"
    done
    echo "$line"
done
