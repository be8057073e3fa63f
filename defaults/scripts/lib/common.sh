# common.sh: helpers sourced by cmd/*/*/validate.sh and guest commands.
# POSIX sh; no bashisms, so it runs under dash.

# log MESSAGE...: to stderr, which the agent keeps with the command's result.
log() { echo "straas: $*" >&2; }

# die MESSAGE...: log and exit 1.
die() { log "$@"; exit 1; }

# port_open PORT: true when something listens on 127.0.0.1:PORT.
port_open() {
  if command -v ss >/dev/null 2>&1; then
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# wait_port PORT SECONDS: wait until PORT listens, at most SECONDS.
wait_port() {
  i=0
  while ! port_open "$1"; do
    i=$((i + 1))
    [ "$i" -ge "$2" ] && die "port $1 is not listening after $2s"
    sleep 1
  done
}

# service_active NAME: true when the systemd unit NAME runs.
service_active() { systemctl is-active --quiet "$1"; }

# four_letter WORD PORT: ask the zookeeper on PORT a four letter word.
four_letter() { printf '%s' "$1" | nc -q 2 127.0.0.1 "$2" 2>/dev/null || printf '%s' "$1" | nc -w 2 127.0.0.1 "$2"; }

# straas_env FILE: source an env file puppet wrote (ZK_CONNECT, BROKER_ID, ...).
straas_env() { [ -r "$1" ] || die "$1 is missing: has this node been configured?"; . "$1"; }
