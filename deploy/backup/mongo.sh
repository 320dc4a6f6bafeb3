#!/bin/sh
# The `backup` profile's MongoDB job (docker-compose.yml, service backup-mongo): a
# consistent dump of every database (mongodump --oplog: one point in time across the
# replica set) every IBEST_BACKUP_INTERVAL_SECONDS, kept IBEST_BACKUP_KEEP_DAYS days.
# The backup user's password is a secret file; it reaches mongodump through a config file
# on tmpfs, never the command line. Restore: docs/operations.md.
set -eu
interval=${IBEST_BACKUP_INTERVAL_SECONDS:-86400}
keep=${IBEST_BACKUP_KEEP_DAYS:-14}
out=/backups/mongo
umask 077
printf 'password: "%s"\n' "$(cat /run/secrets/mongo_password_backup)" > /tmp/mongodump.yaml
while true; do
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  if mongodump --host mongo --port 27017 --username ibest-backup \
      --authenticationDatabase admin --config /tmp/mongodump.yaml \
      --oplog --gzip --archive="$out/ibest-$stamp.archive.gz.partial"; then
    mv "$out/ibest-$stamp.archive.gz.partial" "$out/ibest-$stamp.archive.gz"
    echo "backup-mongo: wrote $out/ibest-$stamp.archive.gz"
  else
    rm -f "$out/ibest-$stamp.archive.gz.partial"
    echo "backup-mongo: mongodump failed at $stamp" >&2
  fi
  find "$out" -name 'ibest-*.archive.gz' -mtime +"$keep" -print -delete
  sleep "$interval"
done
