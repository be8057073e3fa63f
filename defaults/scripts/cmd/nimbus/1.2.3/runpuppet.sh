#!/bin/sh
# runpuppet.sh <script_base_path>: apply the site.pp that pre-config wrote for this role
# (seed 000 section 4.4.2.3). Configures nimbus 1.2.3 and (re)starts its service.
set -eu
BASE="${1:?usage: runpuppet.sh <script_base_path>}"
ROLE=nimbus
VERSION=1.2.3
SITE="$BASE/puppet/manifests/$ROLE/site.pp"
[ -r "$SITE" ] || { echo "runpuppet: $SITE is missing: pre-config has not run" >&2; exit 1; }
rc=0
FACTER_straas_version="$VERSION" puppet apply --detailed-exitcodes \
  --modulepath="$BASE/puppet/modules" --logdest console "$SITE" || rc=$?
# --detailed-exitcodes: 0 nothing changed, 2 changes applied; 4 and 6 are failures.
case "$rc" in 0|2) exit 0 ;; *) echo "runpuppet: puppet apply failed ($rc)" >&2; exit 1 ;; esac
