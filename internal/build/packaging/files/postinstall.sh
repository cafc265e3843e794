#!/bin/sh
set -e
chown -R teleportbeat:teleportbeat /var/lib/teleportbeat /var/log/teleportbeat
# The config may hold credentials: readable by the beat's group, nobody else.
chown root:teleportbeat /etc/teleportbeat /etc/teleportbeat/teleportbeat.yml
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
# Elastic Agent: where teleportbeat was placed into the agent's components
# (the watch is on), an upgrade of this package places the new version
# there too; otherwise, with an agent on this host, say how.
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled --quiet teleportbeat-agent-component.path 2>/dev/null; then
  /usr/share/teleportbeat/bin/teleportbeat agent install ||
    echo "teleportbeat: could not place this version into Elastic Agent's components; run: sudo teleportbeat agent install" >&2
elif [ -d /opt/Elastic/Agent/data ] || [ -d /var/lib/elastic-agent/data ]; then
  echo "Elastic Agent is installed on this host. To run teleportbeat under it (Fleet): sudo teleportbeat agent install"
fi
