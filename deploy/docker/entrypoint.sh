#!/bin/sh
# Build MONGODB_URL from the password in a secrets file, so no password sits in the
# environment of docker-compose.yml. NATS_URL is passed in whole (see .env.example).
set -eu
if [ -n "${MONGODB_PASSWORD_FILE:-}" ] && [ -z "${MONGODB_URL:-}" ]; then
  MONGODB_PASSWORD="$(cat "$MONGODB_PASSWORD_FILE")"
  MONGODB_URL="mongodb://${MONGODB_USERNAME:-root}:${MONGODB_PASSWORD}@${MONGODB_HOSTS:-mongo:27017}/?authSource=admin&replicaSet=${MONGODB_REPLICA_SET:-rs0}"
  export MONGODB_URL
fi
exec "$@"
