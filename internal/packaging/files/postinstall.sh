#!/bin/sh
set -e
chown -R teleportbeat:teleportbeat /var/lib/teleportbeat /var/log/teleportbeat
# The config may hold credentials: readable by the beat's group, nobody else.
chown root:teleportbeat /etc/teleportbeat /etc/teleportbeat/teleportbeat.yml
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
