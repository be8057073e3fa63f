#!/usr/bin/env bash
# Runs a local moto server for `straas aws bootstrap --endpoint http://127.0.0.1:PORT`
# and manual testing: the same launcher the AWS-endpoint suite uses (DynamoDB served
# atomically, Step Functions executing), from .venv (created here if missing).
#   scripts/moto.sh [PORT]      (default 4566; stop with Ctrl-C)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${STRAAS_VENV:-$root/.venv}"
port="${1:-4566}"
if ! "$venv/bin/python" -c 'import moto.server' 2>/dev/null; then
	python3 -m venv "$venv"
	"$venv/bin/pip" install --quiet "moto[server]>=5.2.5"
fi
echo "moto on http://127.0.0.1:$port (AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test)"
MOTO_PORT="$port" exec "$venv/bin/python" "$root/test/awsendpoint/moto_server.py" 127.0.0.1 "$port"
