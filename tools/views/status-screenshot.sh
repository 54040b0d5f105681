#!/usr/bin/env bash
# status-screenshot.sh [OUT.png]: the picture on docs/status.md.
#
# Starts 03 with 4 workers on a free port, loads it as the page's caption
# says (PINGs, SLEEPs and WORKs on six connections, a connection per
# request), and has headless Chromium draw its /status page into OUT.png
# (default docs/images/status-03.png). Needs the release build (./lab build)
# and Debian's chromium (./lab setup). Everything it starts is stopped.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."
out=$(readlink -f "${1:-docs/images/status-03.png}")
bin=build/bin
browser=$(command -v chromium || command -v chromium-browser) || { echo "status-screenshot: chromium not found (./lab setup)" >&2; exit 1; }
[ -x "$bin/prefork" ] && [ -x "$bin/loadgen" ] || { echo "status-screenshot: build first (./lab build)" >&2; exit 1; }

work=$(mktemp -d)
server_pid="" load_pid=""
cleanup() {
    [ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

"$bin/prefork" --port 0 --workers 4 > "$work/out" 2> "$work/err" &
server_pid=$!
port=""
for _ in $(seq 50); do
    port=$(sed -n 's/.*listening on [^:]*:\([0-9]*\) .*/\1/p' "$work/out")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "status-screenshot: prefork did not start: $(cat "$work/err")" >&2; exit 1; }

"$bin/loadgen" --port "$port" --connections 6 --duration 8 --conn-per-request \
    --request PING --weight 6 --request 'SLEEP 300' --weight 3 --request 'WORK 2000000' --weight 1 \
    > /dev/null 2>&1 &
load_pid=$!
sleep 2  # counts worth reading

# The flags a root Chromium needs on a machine with no network (see docs/development.md).
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile" --hide-scrollbars --window-size=1100,420 \
    --screenshot="$out" "http://127.0.0.1:$port/status" > /dev/null 2>&1
[ -s "$out" ] || { echo "status-screenshot: chromium drew nothing" >&2; exit 1; }
echo "$out"
