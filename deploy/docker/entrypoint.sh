#!/bin/sh
# Refuse to start on a placeholder secret; every credential stays in its file
# (NATS_PASSWORD_FILE, MONGODB_PASSWORD_FILE, IBEST_REPORTING_TOKENS_FILE), never in the
# environment: the settings read the files (ibest.backbone.secrets checks them again).
set -eu
secrets="${IBEST_SECRETS_DIR:-/run/secrets}"
if [ -d "$secrets" ]; then
  for secret in "$secrets"/*; do
    [ -f "$secret" ] || continue
    if grep -qiE 'change-?me|replace-?me|example|placeholder' "$secret"; then
      echo "refusing to start: $secret is a placeholder (python -m deploy.make_secrets)" >&2
      exit 1
    fi
  done
fi
exec "$@"
