#!/bin/sh
# The TLS reverse proxy: the one HTTP port published for people. Its login password comes
# from a secret file; Caddy is given only its bcrypt hash.
set -eu
password="$(cat /run/secrets/proxy_password)"
if [ "${#password}" -lt 16 ] || echo "$password" | grep -qiE 'change-?me|replace-?me|example'; then
  echo "refusing to start: /run/secrets/proxy_password is a placeholder" >&2
  exit 1
fi
PROXY_PASSWORD_HASH="$(caddy hash-password --plaintext "$password")"
export PROXY_PASSWORD_HASH
unset password
exec caddy run --config /etc/caddy/Caddyfile --adapter caddyfile
