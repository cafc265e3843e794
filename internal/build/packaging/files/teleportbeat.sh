#!/bin/sh
# Runs teleportbeat with the paths of the package, like the Beats' own
# /usr/bin wrappers: `teleportbeat test config`, `teleportbeat setup`, ...
exec /usr/share/teleportbeat/bin/teleportbeat \
  --path.home /usr/share/teleportbeat \
  --path.config /etc/teleportbeat \
  --path.data /var/lib/teleportbeat \
  --path.logs /var/log/teleportbeat \
  "$@"
