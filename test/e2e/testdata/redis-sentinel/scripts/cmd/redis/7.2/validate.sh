#!/bin/sh
# validate.sh <script_base_path>: redis answers PING on its port.
set -e
port=$(sed -n 's/^ *port *=> *\([0-9]*\),$/\1/p' "$1/puppet/manifests/redis/site.pp" | head -n 1)
redis-cli -p "${port:-6379}" ping | grep -q PONG
