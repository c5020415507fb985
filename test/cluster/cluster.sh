#!/usr/bin/env bash
# A three-node MariaDB Galera cluster on loopback with HAProxy in front, for test/cluster/.
#   cluster.sh start        install what is missing, bootstrap node 1, join 2 and 3, start HAProxy
#   cluster.sh stop         stop HAProxy and every node, remove the cluster's directory
#   cluster.sh kill N       SIGKILL node N (the fault test)
#   cluster.sh restart N    start node N again: it rejoins and catches up (IST, else SST)
#   cluster.sh wait-synced N
# Node N listens on 331N (SQL), 457N (Galera), 458N (IST) and 459N (SST); HAProxy on 3320.
# Everything lives under CLUSTER_DIR (default /tmp/auth-galera); nothing touches the server on 3306.
set -euo pipefail

DIR="${CLUSTER_DIR:-/tmp/auth-galera}"
NODES=(1 2 3)
HAPROXY_PORT=3320
PROVIDER=/usr/lib/galera/libgalera_smm.so

log() { printf '[cluster] %s\n' "$*" >&2; }

install_missing() {
  local missing=()
  [ -f "$PROVIDER" ] || missing+=(galera-4)
  command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
  command -v rsync >/dev/null 2>&1 || missing+=(rsync)
  command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
  [ "${#missing[@]}" = 0 ] && return
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  # A package may start its own service; this cluster needs none of them.
  if command -v haproxy >/dev/null 2>&1 && [ -f /run/haproxy.pid ]; then kill "$(cat /run/haproxy.pid)" 2>/dev/null || true; fi
}

write_config() {
  local n=$1 d="$DIR/node$1"
  mkdir -p "$d/data"
  cat >"$d/my.cnf" <<EOF
[mariadbd]
user=mysql
datadir=$d/data
socket=$d/mysqld.sock
pid-file=$d/mysqld.pid
log-error=$d/error.log
port=331$n
bind-address=127.0.0.1
skip-name-resolve
max_connections=300
# Small buffers: three nodes share a 2-core CI machine with everything else.
performance_schema=OFF
innodb_buffer_pool_size=32M
innodb_log_file_size=16M
innodb_log_buffer_size=4M
innodb_flush_log_at_trx_commit=2
key_buffer_size=1M
aria_pagecache_buffer_size=4M
query_cache_size=0
# What Galera requires of every node.
binlog_format=ROW
default_storage_engine=InnoDB
innodb_autoinc_lock_mode=2
wsrep_on=ON
wsrep_provider=$PROVIDER
wsrep_cluster_name=auth_test
wsrep_cluster_address=gcomm://127.0.0.1:4571,127.0.0.1:4572,127.0.0.1:4573
wsrep_node_name=node$n
wsrep_node_address=127.0.0.1:457$n
wsrep_node_incoming_address=127.0.0.1:331$n
wsrep_sst_method=rsync
wsrep_sst_receive_address=127.0.0.1:459$n
wsrep_slave_threads=2
wsrep_provider_options="gmcast.listen_addr=tcp://127.0.0.1:457$n;ist.recv_addr=127.0.0.1:458$n;gcache.size=64M;gcache.page_size=16M;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S;evs.install_timeout=PT6S"
EOF
  chown -R mysql:mysql "$d"
}

sql() { local n=$1; shift; mariadb --socket="$DIR/node$n/mysqld.sock" -uroot -N -B "$@"; }
tcp_sql() { local n=$1; shift; mariadb -h127.0.0.1 -P"331$n" -uroot -N -B "$@"; }

start_node() {
  local n=$1; shift
  # Not a process-group leader here, so setsid execs in place and $! is mariadbd's own pid.
  setsid /usr/sbin/mariadbd --defaults-file="$DIR/node$n/my.cnf" "$@" </dev/null >>"$DIR/node$n/stdout.log" 2>&1 &
  echo $! >"$DIR/node$n/node.pid"
}

wait_synced() {
  local n=$1 state
  for _ in $(seq 1 240); do
    state=$(tcp_sql "$n" -e "SHOW STATUS LIKE 'wsrep_local_state_comment'" 2>/dev/null | cut -f2 || true)
    if [ "$state" = Synced ]; then return 0; fi
    if ! pid_of "$n" >/dev/null; then log "node $n died; its log:"; tail -30 "$DIR/node$n/error.log" >&2; return 1; fi
    sleep 0.5
  done
  log "node $n is not Synced after 120 s (state: ${state:-none})"; tail -30 "$DIR/node$n/error.log" >&2
  return 1
}

pid_of() {
  local f="$DIR/node$1/node.pid" pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

start() {
  install_missing
  if [ -d "$DIR" ]; then stop; fi
  mkdir -p "$DIR"
  for n in "${NODES[@]}"; do write_config "$n"; done

  log "bootstrapping node 1"
  mariadb-install-db --defaults-file="$DIR/node1/my.cnf" --skip-test-db >"$DIR/node1/install.log" 2>&1
  start_node 1 --wsrep-new-cluster
  for _ in $(seq 1 120); do sql 1 -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.5; done
  # Root without a password from loopback, as the tests use the server on 3306; HAProxy's check user.
  sql 1 -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
            CREATE USER IF NOT EXISTS 'haproxy'@'127.0.0.1';"
  wait_synced 1

  # Joiners start with an empty data directory and receive a full copy (SST) from node 1.
  for n in 2 3; do
    log "joining node $n"
    start_node "$n"
    wait_synced "$n"
  done
  log "cluster size: $(tcp_sql 1 -e "SHOW STATUS LIKE 'wsrep_cluster_size'" | cut -f2)"

  cat >"$DIR/haproxy.cfg" <<EOF
global
  maxconn 1000
  pidfile $DIR/haproxy.pid
  daemon
defaults
  mode tcp
  timeout connect 2s
  timeout client 10m
  timeout server 10m
  timeout check 1s
  # A connection refused by a node that just died is tried again on another one.
  retries 3
  option redispatch 1
listen galera
  bind 127.0.0.1:$HAPROXY_PORT
  balance leastconn
  option mysql-check user haproxy post-41
  default-server inter 500ms fastinter 250ms downinter 1s fall 2 rise 3 on-marked-down shutdown-sessions
$(for n in "${NODES[@]}"; do echo "  server node$n 127.0.0.1:331$n check"; done)
EOF
  haproxy -f "$DIR/haproxy.cfg" -q
  for _ in $(seq 1 40); do mariadb -h127.0.0.1 -P"$HAPROXY_PORT" -uroot -N -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.25; done
  log "HAProxy on 127.0.0.1:$HAPROXY_PORT"
}

stop() {
  if [ -f "$DIR/haproxy.pid" ]; then
    local hp; hp=$(cat "$DIR/haproxy.pid")
    kill "$hp" 2>/dev/null || true
  fi
  local pids=()
  for n in "${NODES[@]}"; do
    local pid; pid=$(pid_of "$n" || true)
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; pids+=("$pid"); fi
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  done
  # An SST in flight leaves an rsync daemon behind; it runs from the node's directory.
  for f in "$DIR"/node*/data/rsync_sst.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  rm -rf "$DIR"
}

kill_node() {
  local pid; pid=$(pid_of "$1") || { log "node $1 is not running"; return 1; }
  kill -9 "$pid"
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}

# How node N caught up when it last restarted: IST (the missing write-sets) or SST (a full copy).
transfer() {
  local from; from=$(( $(cat "$DIR/node$1/restart.line") + 1 ))
  local since; since=$(tail -n +"$from" "$DIR/node$1/error.log")
  if grep -q 'IST received' <<<"$since"; then echo IST
  elif grep -qE 'SST (received|succeeded|complete)|State transfer required' <<<"$since"; then echo SST
  else echo none; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  kill) kill_node "$2" ;;
  restart) wc -l <"$DIR/node$2/error.log" >"$DIR/node$2/restart.line"; start_node "$2"; wait_synced "$2" ;;
  transfer) transfer "$2" ;;
  wait-synced) wait_synced "$2" ;;
  *) echo "usage: $0 start|stop|kill N|restart N|wait-synced N|transfer N" >&2; exit 2 ;;
esac
