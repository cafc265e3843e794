#!/bin/sh
set -e
# Stop the service on removal (not on upgrade: deb passes "upgrade", rpm 1).
case "$1" in
  remove|0)
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      systemctl stop teleportbeat.service || true
      systemctl disable teleportbeat.service || true
      # Out of Elastic Agent's components too (the spec before the
      # binary: a spec without its binary stops the agent), and the watch off.
      if systemctl is-enabled --quiet teleportbeat-agent-component.path 2>/dev/null; then
        /usr/share/teleportbeat/bin/teleportbeat agent install --uninstall || true
      fi
    fi
    ;;
esac
