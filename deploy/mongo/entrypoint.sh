#!/bin/bash
# Runs as the image's mongodb user (compose `user: 999:999`). mongod refuses a keyfile
# readable by others, and secrets are mounted read-only with the host's permissions: copy
# it into place with mode 400, refuse placeholder secrets, then start as usual.
set -euo pipefail
for secret in /run/secrets/*; do
  if grep -qiE 'change-?me|replace-?me|example|placeholder' "$secret"; then
    echo "refusing to start: $secret is a placeholder (python -m deploy.make_secrets)" >&2
    exit 1
  fi
done
install -m 400 /run/secrets/mongo_keyfile /data/configdb/keyfile
exec docker-entrypoint.sh mongod --replSet rs0 --keyFile /data/configdb/keyfile --bind_ip_all "$@"
