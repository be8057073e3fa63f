#!/bin/sh
# validate.sh <script_base_path>: is kafka 0.8.2.2 serving? (seed 000 section 4.4.2.4)
# Checks the ports components/kafka.json lists under validate_ports, then the service.
set -eu
BASE="${1:?usage: validate.sh <script_base_path>}"
. "$BASE/lib/common.sh"
wait_port 9092 120
service_active kafka || die "kafka is not running"
echo "kafka 0.8.2.2: ok"
