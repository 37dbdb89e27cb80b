#!/usr/bin/env bash
# make test-google: the e2e suites on Google's own Firestore and Pub/Sub emulators.
#
# Starts Google's emulators ONCE (`devstack emulators --emulators=google`, fake-gcs-server for
# GCS), waits for `devstack: ready`, exports their hosts and runs the suites in external mode
# (DEVSTACK_EMULATORS=external); each test binary isolates itself with its own project id.
# The emulators are stopped on exit, also on Ctrl-C or a failure. With --external it uses
# emulators already running instead (FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST and
# STORAGE_EMULATOR_HOST set, e.g. by docker-compose.emulators.yml).
set -euo pipefail
cd "$(dirname "$0")/.."
GO="${GO:-go}"
PKGS="${TEST_GOOGLE_PKGS:-./ingest/... ./processor/... ./replayer/... ./devstack/stack/... ./devstack/loadgen/... ./common/store/... ./common/archive/...}"

tmp="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export DEVSTACK_EMULATORS=external
if [ "${1:-}" = "--external" ]; then
  # Emulators already running (docker compose -f docker-compose.emulators.yml up): their
  # variables come from the environment.
  for v in FIRESTORE_EMULATOR_HOST PUBSUB_EMULATOR_HOST STORAGE_EMULATOR_HOST; do
    if [ -z "${!v:-}" ]; then echo "test-google: --external needs $v" >&2; exit 2; fi
  done
  # shellcheck disable=SC2086
  exec $GO test -race -count=1 -timeout 11m ${TEST_GOOGLE_ARGS:-} $PKGS
fi

$GO build -o "$tmp/devstack" ./devstack/cmd/devstack
start=$(date +%s)
"$tmp/devstack" emulators --emulators=google --firestore-port=0 --pubsub-port=0 --gcs-port=0 \
  --project=leadpipe-test --env-file="$tmp/env" >"$tmp/stdout" 2>"$tmp/stderr" &
pid=$!
until grep -q '^devstack: ready$' "$tmp/stdout" 2>/dev/null; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "test-google: devstack emulators --emulators=google failed:" >&2
    cat "$tmp/stderr" >&2
    exit 1
  fi
  if [ $(( $(date +%s) - start )) -gt 120 ]; then
    echo "test-google: Google's emulators not ready after 120 s" >&2
    cat "$tmp/stderr" >&2
    exit 1
  fi
  sleep 0.5
done
echo "test-google: Google's emulators ready after $(( $(date +%s) - start )) s:"
grep '^export ' "$tmp/stdout"
set -a
# shellcheck disable=SC1091
. "$tmp/env"
set +a
# shellcheck disable=SC2086
$GO test -race -count=1 -timeout 11m ${TEST_GOOGLE_ARGS:-} $PKGS
