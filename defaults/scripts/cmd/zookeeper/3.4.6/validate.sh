#!/bin/sh
# validate.sh <script_base_path>: is zookeeper 3.4.6 serving? (seed 000 section 4.4.2.4)
# Checks the ports components/zookeeper.json lists under validate_ports, then the service.
set -eu
BASE="${1:?usage: validate.sh <script_base_path>}"
. "$BASE/lib/common.sh"
wait_port 2181 60
[ "$(four_letter ruok 2181)" = "imok" ] || die "zookeeper does not answer ruok"
four_letter srvr 2181 | grep -Eq "^Mode: (leader|follower|standalone)" || die "zookeeper has no quorum"
echo "zookeeper 3.4.6: ok"
