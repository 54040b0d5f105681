#!/bin/sh
# render.sh: regenerates every diagram of docs/diagrams from its source.
#
#   ./render.sh            NAME.dot -> NAME.svg for every .dot here (Graphviz's dot)
#   ./render.sh --check    renders into a temporary directory and fails if a
#                          committed NAME.svg differs from its source's rendering
#   ./render.sh --png DIR  also writes DIR/NAME.png for every SVG here, the
#                          hand-written ones included (rsvg-convert), to look at
#
# Needs the Debian package graphviz (dot); --png needs librsvg2-bin
# (rsvg-convert). The hand-written SVGs (rolling-restart.svg, pass-fd.svg) have
# no source but themselves: edit them directly; this script leaves them alone.
# Idempotent: the same dot version writes the same bytes every time.
set -eu

cd "$(dirname "$0")"

mode=render
png_dir=
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    --png)
        png_dir=${2:?"--png needs a directory"}
        ;;
    -h|--help)
        sed -n '2,/^set -eu/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "render.sh: unknown argument: $1 (try --help)" >&2
        exit 2
        ;;
esac

if ! command -v dot >/dev/null 2>&1; then
    echo "render.sh: dot not found: apt-get install -y graphviz" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

status=0
for src in *.dot; do
    name=${src%.dot}
    dot -Tsvg "$src" -o "$tmp/$name.svg"
    if [ "$mode" = check ]; then
        if ! cmp -s "$tmp/$name.svg" "$name.svg"; then
            echo "render.sh: $name.svg is not what $src renders to (run ./render.sh)" >&2
            status=1
        fi
    elif ! cmp -s "$tmp/$name.svg" "$name.svg" 2>/dev/null; then
        cp "$tmp/$name.svg" "$name.svg"
        echo "rendered $name.svg"
    fi
done

if [ -n "$png_dir" ]; then
    if ! command -v rsvg-convert >/dev/null 2>&1; then
        echo "render.sh: rsvg-convert not found: apt-get install -y librsvg2-bin" >&2
        exit 1
    fi
    mkdir -p "$png_dir"
    for svg in *.svg; do
        rsvg-convert "$svg" -o "$png_dir/${svg%.svg}.png"
        echo "wrote $png_dir/${svg%.svg}.png"
    done
fi

exit $status
