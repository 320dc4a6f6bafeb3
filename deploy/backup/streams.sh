#!/bin/sh
# The `backup` profile's JetStream job (docker-compose.yml, service backup-streams): a
# snapshot of the events stream (`ibest streams snapshot`, JetStream's own snapshot API)
# every IBEST_BACKUP_INTERVAL_SECONDS, kept IBEST_BACKUP_KEEP_DAYS days. The events stream
# is the platform's record: every service's state can be rebuilt from it.
# Restore: docs/operations.md.
set -eu
interval=${IBEST_BACKUP_INTERVAL_SECONDS:-86400}
keep=${IBEST_BACKUP_KEEP_DAYS:-14}
out=/backups/streams
while true; do
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  if ibest streams snapshot --stream IBEST_EVENTS --out "$out/partial-$stamp"; then
    mv "$out/partial-$stamp" "$out/events-$stamp"
  else
    rm -rf "$out/partial-$stamp"
    echo "backup-streams: snapshot failed at $stamp" >&2
  fi
  find "$out" -mindepth 1 -maxdepth 1 -type d -name 'events-*' -mtime +"$keep" \
    -exec rm -rf {} + -print
  sleep "$interval"
done
