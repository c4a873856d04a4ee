#!/usr/bin/env bash
# side-by-side.sh LOG "BACKGROUND COMMAND" FOREGROUND COMMAND...
# Runs both commands at once: the foreground one prints as it goes, the background one into
# LOG, which is printed whole when both have ended. Fails if either failed.
# The molecule scenarios spend almost half their time waiting on test VMs (boots, health
# checks, image builds): the functional tests and sanity beside them keep the 2 cores busy.
set -uo pipefail
log=$1 background=$2
shift 2
bash -c "$background" >"$log" 2>&1 &
background_pid=$!
"$@"
foreground_status=$?
wait "$background_pid"
background_status=$?
echo "=== $background (exit $background_status); its output: ==="
cat "$log"
echo "=== $* (exit $foreground_status) ==="
exit $((foreground_status || background_status))
