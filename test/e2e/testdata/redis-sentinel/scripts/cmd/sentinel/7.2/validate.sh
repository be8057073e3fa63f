#!/bin/sh
# validate.sh <script_base_path>: the sentinel answers PING and knows its primary.
set -e
redis-cli -p 26379 ping | grep -q PONG
redis-cli -p 26379 sentinel masters | grep -q ip
