#!/bin/sh
# runpuppet.sh <script_base_path>: apply the redis role's site.pp (written by pre_configure).
set -e
base="${1:?usage: runpuppet.sh <script_base_path>}"
exec puppet apply --modulepath="$base/puppet/modules" "$base/puppet/manifests/redis/site.pp"
