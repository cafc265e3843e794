#!/bin/sh
set -e
# Stop the service on removal (not on upgrade: deb passes "upgrade", rpm 1).
case "$1" in
  remove|0)
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      systemctl stop teleportbeat.service || true
      systemctl disable teleportbeat.service || true
    fi
    ;;
esac
