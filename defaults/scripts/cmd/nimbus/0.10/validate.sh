#!/bin/sh
# validate.sh <script_base_path>: is nimbus 0.10 serving? (seed 000 section 4.4.2.4)
# Checks the ports components/storm.json lists under validate_ports, then the service.
set -eu
BASE="${1:?usage: validate.sh <script_base_path>}"
. "$BASE/lib/common.sh"
wait_port 6627 120
wait_port 8080 60
service_active storm-nimbus || die "storm-nimbus is not running"
echo "nimbus 0.10: ok"
