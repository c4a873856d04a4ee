#!/usr/bin/env bash
# Print the failed tasks of an Ansible log again, each with its result, so that they are the
# last thing a long CI log shows (molecule's cleanup and destroy output follows a failure).
# A nested run's failure, reported inside an outer task's result, is shown there too.
set -euo pipefail
log=$1
echo "=== The failed tasks of $log ==="
awk '
  /(TASK \[|PLAY |RUNNING HANDLER|NO MORE HOSTS|\.\.\.ignoring)/ { show = 0 }
  /TASK \[/ { task = $0; next }
  /(fatal|failed): \[/ { show = 1; lines = 0; print ""; print task }
  show && lines++ < 120 { print }
' "$log" | tail -n 400
