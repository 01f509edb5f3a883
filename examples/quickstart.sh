#!/usr/bin/env bash
# The spec's "Creating Your First Flow" (section 5.5) on the embedded default: no server.
# Everything lives in SHELLFLOW_HOME (.demo/ here), so the demo never touches your own setup.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export SHELLFLOW_HOME="${SHELLFLOW_HOME:-$here/.demo}"
rm -rf "$SHELLFLOW_HOME"
export SHELLFLOW_INI="$SHELLFLOW_HOME/shellflow.ini"  # keep ~/.config out of the demo
step() { printf '\n$ %s\n' "$*" >&2; "$@"; }

# The processors live in this repository (examples/processors), so no network is needed.
repo="$here"

step flow db init
step flow add queue -n pyfi.queue1 -t direct
step flow add processor -n proc1 -g "$repo" -mp examples/processors -m pyfi.processors.sample -h localhost -c 5
step flow add socket -n pyfi.processors.sample.do_something -q pyfi.queue1 -pn proc1 -t do_something
step flow add socket -n pyfi.processors.sample.do_this -q pyfi.queue1 -pn proc1 -t do_this
step flow ls processors
step flow ls sockets
step flow ls socket -n pyfi.processors.sample.do_this
step flow config show
printf '\nThe network above is stored in %s.\n' "$SHELLFLOW_HOME" >&2
