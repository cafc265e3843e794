#!/bin/sh
set -e
# teleportbeat runs as its own system user, which owns its data and logs.
if ! getent group teleportbeat >/dev/null; then
  groupadd --system teleportbeat
fi
if ! getent passwd teleportbeat >/dev/null; then
  useradd --system --gid teleportbeat --home-dir /var/lib/teleportbeat --no-create-home \
    --shell /usr/sbin/nologin --comment "teleportbeat" teleportbeat
fi
