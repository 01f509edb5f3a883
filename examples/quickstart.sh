#!/usr/bin/env bash
# The spec's "Creating Your First Flow" (section 5.5), end to end on the embedded default:
# no server to install or start. Everything lives in SHELLFLOW_HOME (.demo/ here), so the
# demo never touches your own setup.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export SHELLFLOW_HOME="${SHELLFLOW_HOME:-$here/.demo}"
export SHELLFLOW_INI="$SHELLFLOW_HOME/shellflow.ini"  # keep ~/.config out of the demo
step() { printf '\n$ %s\n' "$*" >&2; "$@"; }

if [ -f "$SHELLFLOW_HOME/agent-demo.pid" ]; then flow agent stop --node demo >/dev/null 2>&1 || true; fi
flow broker stop >/dev/null 2>&1 || true
rm -rf "$SHELLFLOW_HOME"
mkdir -p "$SHELLFLOW_HOME"
cleanup() {
  flow agent stop --node demo >/dev/null 2>&1 || true
  flow broker stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Processors come from git: make a repository of the example processors (no network).
repo="$SHELLFLOW_HOME/pyfi-processors"
cp -r "$here/examples/processors" "$repo"
git -C "$repo" init -q
git -C "$repo" add -A
git -C "$repo" -c user.name=demo -c user.email=demo@localhost commit -qm "example processors"

step flow db init
step flow add queue -n pyfi.queue1 -t direct
step flow add processor -n proc1 -g "$repo" -m pyfi.processors.sample -h localhost -c 2
step flow add socket -n pyfi.processors.sample.do_something -q pyfi.queue1 -pn proc1 -t do_something
step flow add socket -n pyfi.processors.sample.do_this -q pyfi.queue1 -pn proc1 -t do_this
step flow ls sockets

# The agent deploys proc1 (a checkout and a virtualenv of its own) and runs its worker.
step flow agent start --node demo --detach
step flow proc start -n proc1 --wait --timeout 180

step flow task run --socket pyfi.processors.sample.do_this --data "['some data']"
printf '\n$ echo "HI THERE!" | flow task run -s pyfi.processors.sample.do_something | flow task run -s pyfi.processors.sample.do_this\n' >&2
echo "HI THERE!" | flow task run -s pyfi.processors.sample.do_something \
  | flow task run -s pyfi.processors.sample.do_this
step flow ls calls
step flow ls processor -n proc1
step flow agent stop --node demo
printf '\nThe network and its calls are stored in %s.\n' "$SHELLFLOW_HOME" >&2
