#!/bin/bash
# mongod refuses a keyfile readable by others, and secrets are mounted read-only with the
# host's permissions: copy it into place owned by mongodb with mode 400, then start as usual.
set -euo pipefail
install -o mongodb -g mongodb -m 400 /run/secrets/mongo_keyfile /data/configdb/keyfile
exec docker-entrypoint.sh mongod --replSet rs0 --keyFile /data/configdb/keyfile --bind_ip_all "$@"
