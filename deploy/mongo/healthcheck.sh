#!/bin/bash
# Healthy once the single-node replica set has a primary; the first run initiates it.
set -euo pipefail
mongosh --quiet --host localhost -u "$MONGO_INITDB_ROOT_USERNAME" \
  -p "$(cat "$MONGO_INITDB_ROOT_PASSWORD_FILE")" --authenticationDatabase admin --eval '
  let status;
  try { status = rs.status(); }
  catch (e) { rs.initiate({_id: "rs0", members: [{_id: 0, host: "mongo:27017"}]}); quit(1); }
  quit(status.members.some(m => m.stateStr === "PRIMARY") ? 0 : 1);'
