#!/usr/bin/env bash
# Print the Debian mirror this machine's apt uses (the tests never hard-code one).
set -euo pipefail
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$f")
  [ -n "$uri" ] && { echo "$uri"; exit 0; }
done
uri=$(awk '/^deb / && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$uri" ] || { echo "debian-mirror: no Debian mirror found in apt sources" >&2; exit 1; }
echo "$uri"
