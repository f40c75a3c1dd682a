#!/usr/bin/env bash
# Runs throwaway PostgreSQL and Redis servers on loopback for the project's tests (Debian, as root).
#
#   bash scripts/servers.sh install
#       Installs Debian's `postgresql` and `redis-server` packages when missing, and stops the
#       system cluster / system redis that the packages' postinst may have started.
#   bash scripts/servers.sh up DIR [--owner PID]
#       Runs `install`, then starts, in a fresh DIR:
#         - PostgreSQL (cluster DIR/pg, log DIR/pg.log, socket dir DIR/pgsock) on 127.0.0.1 on a
#           free port, password auth (scram-sha-256), with the login roles sk_main (owning
#           database sk_main) and sk_analytics (owning database sk_analytics);
#         - Redis (DIR/redis.conf, data dir DIR/redis, log DIR/redis.log, pidfile DIR/redis.pid)
#           on 127.0.0.1 on another free port, with a password and no persistence.
#       Waits (at most 60 s each) until both accept authenticated connections, then writes
#       DIR/env (shell `export` lines) and DIR/env.plain (KEY=VALUE lines) with
#       SKPROCESS_PG_{HOST,PORT,USER,DB,PASSWORD}, SKPROCESS_PG_ANALYTICS_{USER,DB,PASSWORD},
#       SKPROCESS_REDIS_{HOST,PORT,PASSWORD} and SKPROCESS_SERVERS_DIR, and prints the path of
#       DIR/env as the only line of stdout (progress goes to stderr).
#       With --owner PID, a detached watchdog (log DIR/watchdog.log) runs `down DIR` once PID is
#       gone, and exits itself when DIR is brought down by someone else.
#       On failure: prints the servers' log tails to stderr, stops what it started, exits 1.
#   bash scripts/servers.sh down DIR
#       Stops both servers (bounded waits, then kills) and removes DIR. Fine if already down.
#   bash scripts/servers.sh restart postgres|redis DIR
#       Restarts one server on the same port with the same data and passwords, waits until ready.
#
# DIR's absolute path may contain only [A-Za-z0-9._/+@-]; the `postgres` user must be able to
# reach it (e.g. under /tmp). Passwords are 24 random alphanumeric characters. Needs only the
# Debian packages above plus essential ones (bash, coreutils, util-linux, perl-base).
set -euo pipefail
export LC_ALL=C
umask 022 # the postgres user must be able to reach DIR; secret files get 077 explicitly
unset PGDATA PGSERVICE PGSERVICEFILE PGOPTIONS PGSSLMODE PGREQUIRESSL PGHOSTADDR PGPASSFILE \
  PGPASSWORD PGHOST PGPORT PGUSER PGDATABASE REDISCLI_AUTH

SELF=$(realpath "$0")
DEADLINE=60           # seconds each server gets to become ready
MARKER=.skprocess-servers

log() { printf 'servers.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
usage() {
  sed -n '2,/^set -euo/p' "$SELF" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# Runs a command, for at most $1 seconds, as the `postgres` user (PostgreSQL refuses root), from
# `/` so that it does not start in a directory postgres cannot read.
as_pg() {
  local secs=$1
  shift
  if is_root; then
    (cd / && timeout "$secs" runuser -u postgres -- "$@")
  else
    (cd / && timeout "$secs" "$@")
  fi
}

# A password: 24 random alphanumeric characters.
gen_password() {
  local s=''
  while [ "${#s}" -lt 24 ]; do
    s+=$(head -c 512 /dev/urandom | tr -dc 'A-Za-z0-9')
  done
  printf '%s' "${s:0:24}"
}

# Prints a port free on 127.0.0.1, below the kernel's ephemeral range (so that outgoing
# connections do not take it), other than the ports given as arguments.
pick_port() {
  local lo=15000 hi=60999 eph
  eph=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 0)
  if [ "$eph" -gt $((lo + 2000)) ]; then hi=$((eph - 1)); fi
  perl -MSocket -e '
    my ($lo, $hi, @ex) = @ARGV; my %ex = map { $_ => 1 } @ex;
    for (1 .. 1000) {
      my $p = $lo + int(rand($hi - $lo + 1));
      next if $ex{$p};
      socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!\n";
      if (bind($s, pack_sockaddr_in($p, inet_aton("127.0.0.1")))) { close $s; print "$p\n"; exit 0 }
      close $s;
    }
    exit 1' "$lo" "$hi" "$@" || die "found no free port on 127.0.0.1"
}

# The bin directory of the highest PostgreSQL version installed.
pg_bin_latest() {
  local v best=''
  for d in /usr/lib/postgresql/*/bin; do
    if [ ! -x "$d/initdb" ] || [ ! -x "$d/pg_ctl" ] || [ ! -x "$d/psql" ]; then continue; fi
    v=${d#/usr/lib/postgresql/}
    v=${v%/bin}
    case $v in *[!0-9]*) continue ;; esac
    if [ -z "$best" ] || [ "$v" -gt "$best" ]; then best=$v; fi
  done
  [ -n "$best" ] && printf '/usr/lib/postgresql/%s/bin' "$best"
}

# The bin directory of the version of the cluster in DIR/pg.
pg_bin_of() {
  local v
  v=$(cat "$1/pg/PG_VERSION" 2>/dev/null) || return 1
  [ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ] || return 1
  printf '/usr/lib/postgresql/%s/bin' "$v"
}

pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Prints the fields after the command name of /proc/PID/stat (state is the 1st, starttime the
# 20th), or fails if there is no such process.
proc_stat() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  printf '%s' "${s##*) }"
}
proc_starttime() {
  local f
  read -ra f <<<"$(proc_stat "$1")" || return 1
  printf '%s' "${f[19]:-}"
}
proc_cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }

# Whether PID is a live (not zombie) process started at STARTTIME (when STARTTIME is given).
pid_alive() {
  local pid=$1 start=${2:-} f
  kill -0 "$pid" 2>/dev/null || return 1
  [ -r "/proc/$pid/stat" ] || return 0
  read -ra f <<<"$(proc_stat "$pid")" || return 1
  [ "${f[0]:-}" != Z ] || return 1
  [ -z "$start" ] || [ "${f[19]:-}" = "$start" ]
}

# Waits up to $2 seconds for process $1 to exit.
wait_exit() {
  local pid=$1 end=$((SECONDS + $2))
  while pid_alive "$pid"; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.1
  done
}

# Redis processes of the system service (user redis, port 6379).
system_redis_pids() {
  local p uid
  uid=$(id -u redis 2>/dev/null) || return 0
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = redis-server ] || continue
    [ "$(stat -c %u "/proc/$p" 2>/dev/null)" = "$uid" ] || continue
    case $(proc_cmdline "$p") in *:6379*) printf '%s\n' "$p" ;; esac
  done
}

online_system_clusters() {
  command -v pg_lsclusters >/dev/null || return 0
  pg_lsclusters -h 2>/dev/null | awk '$4 ~ /^online/ { print $1 " " $2 }'
}

cmd_install() {
  local need=() before_pg='' redis_before=''
  if ! pkg_installed postgresql || [ -z "$(pg_bin_latest)" ]; then need+=(postgresql); fi
  if ! pkg_installed redis-server || ! command -v redis-server >/dev/null ||
    ! command -v redis-cli >/dev/null; then
    need+=(redis-server)
  fi
  if [ "${#need[@]}" -eq 0 ]; then
    log "install: postgresql ($(pg_bin_latest)) and redis-server already installed"
    return 0
  fi
  is_root || die "install: ${need[*]} missing and not root: cannot install"
  # Concurrent `up`s on a fresh machine must not race apt.
  local lock=/var/lock/skprocess-servers-install.lock
  [ -d /var/lock ] || lock=/tmp/skprocess-servers-install.lock
  exec 8>"$lock"
  flock -w 900 8 || die "install: timed out waiting for another install ($lock)"
  need=()
  if ! pkg_installed postgresql || [ -z "$(pg_bin_latest)" ]; then need+=(postgresql); fi
  if ! pkg_installed redis-server || ! command -v redis-server >/dev/null ||
    ! command -v redis-cli >/dev/null; then
    need+=(redis-server)
  fi
  if [ "${#need[@]}" -gt 0 ]; then
    before_pg=$(online_system_clusters)
    redis_before=$(system_redis_pids)
    log "install: apt-get update"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get -o DPkg::Lock::Timeout=300 update >&2 ||
      die "install: apt-get update failed"
    log "install: apt-get install ${need[*]}"
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get -o DPkg::Lock::Timeout=300 install -y \
      --no-install-recommends "${need[@]}" >&2 || die "install: apt-get install ${need[*]} failed"
    # The packages' postinst may have started the system cluster / redis: stop them (ours run
    # elsewhere, on their own ports).
    local c p
    while read -r c; do
      [ -n "$c" ] || continue
      grep -qxF "$c" <<<"$before_pg" && continue
      log "install: stopping the system PostgreSQL cluster $c that the package started"
      # shellcheck disable=SC2086 # "VERSION NAME"
      timeout 120 pg_ctlcluster $c stop >&2 || log "install: warning: could not stop cluster $c"
    done <<<"$(online_system_clusters)"
    for p in $(system_redis_pids); do
      grep -qxF "$p" <<<"$redis_before" && continue
      log "install: stopping the system redis-server (pid $p, port 6379) that the package started"
      if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        timeout 60 systemctl stop redis-server >&2 || true
      fi
      if pid_alive "$p"; then kill -TERM "$p" 2>/dev/null || true; fi
      wait_exit "$p" 20 || { kill -KILL "$p" 2>/dev/null || true; }
    done
  fi
  exec 8>&-
  [ -n "$(pg_bin_latest)" ] || die "install: no PostgreSQL server binaries under /usr/lib/postgresql"
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    die "install: redis-server/redis-cli not found after install"
  fi
  log "install: done ($(pg_bin_latest), $(redis-server --version | cut -d' ' -f1-3))"
}

# ---- helpers on a servers directory -----------------------------------------------------------

# Checks DIR's path and makes it absolute.
abs_dir() {
  local d
  d=$(realpath -m -- "$1")
  [[ $d =~ ^/[A-Za-z0-9._/+@-]+$ ]] || die "DIR must match [A-Za-z0-9._/+@-]: $d"
  [ "$d" != / ] || die "DIR must not be /"
  printf '%s' "$d"
}

# Locks DIR (fd 9) against concurrent up/down/restart; fails if DIR is gone meanwhile.
lock_dir() {
  exec 9<"$1" || return 1
  flock -w 120 9 || die "timed out waiting for the lock on $1"
  [ -d "$1" ] && [ "$1" -ef /dev/fd/9 ]
}

plain_val() { sed -n "s/^$2=//p" "$1/env.plain" 2>/dev/null | head -n1; }
redis_conf_val() { awk -v k="$2" '$1 == k { v = $2 } END { gsub(/"/, "", v); print v }' "$1/redis.conf" 2>/dev/null; }

pg_pid() {
  local pid
  pid=$(head -n1 "$1/pg/postmaster.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && pid_alive "$pid" || return 1
  printf '%s' "$pid"
}
redis_pid() {
  local pid
  pid=$(head -n1 "$1/redis.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && pid_alive "$pid" || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null || echo redis-server)" = redis-server ] || return 1
  printf '%s' "$pid"
}

log_tail() {
  local file=$1 from=${2:-0}
  [ -f "$file" ] || return 0
  printf '%s\n' "---- last lines of $file ----" >&2
  tail -c +"$((from + 1))" "$file" | tail -n 40 >&2
  printf '%s\n' "----" >&2
}

stop_pg() {
  local dir=$1 pid bin
  pid=$(pg_pid "$dir") || return 0
  bin=$(pg_bin_of "$dir") || bin=''
  log "stopping PostgreSQL (pid $pid)"
  if [ -n "$bin" ]; then
    as_pg 40 "$bin/pg_ctl" -D "$dir/pg" -m fast -w -t 30 stop >&2 9<&- ||
      as_pg 20 "$bin/pg_ctl" -D "$dir/pg" -m immediate -w -t 10 stop >&2 9<&- || true
  else
    kill -INT "$pid" 2>/dev/null || true
  fi
  if ! wait_exit "$pid" 15; then
    log "PostgreSQL did not stop: killing it"
    local c
    for c in /proc/[0-9]*; do
      c=${c#/proc/}
      [ "$(awk '$1 == "PPid:" { print $2 }' "/proc/$c/status" 2>/dev/null)" = "$pid" ] &&
        kill -KILL "$c" 2>/dev/null
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait_exit "$pid" 10 || log "warning: PostgreSQL (pid $pid) still alive"
  fi
}

stop_redis() {
  local dir=$1 pid port pass
  pid=$(redis_pid "$dir") || return 0
  port=$(redis_conf_val "$dir" port)
  pass=$(redis_conf_val "$dir" requirepass)
  log "stopping Redis (pid $pid)"
  REDISCLI_AUTH=$pass timeout 10 redis-cli -h 127.0.0.1 -p "$port" shutdown nosave \
    >/dev/null 2>&1 9<&- || true
  if ! wait_exit "$pid" 15; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_exit "$pid" 5; then
      kill -KILL "$pid" 2>/dev/null || true
      wait_exit "$pid" 5 || log "warning: Redis (pid $pid) still alive"
    fi
  fi
}

# psql as USER on DB with PASSWORD at PORT, running the remaining arguments.
pg_psql() {
  local port=$1 user=$2 db=$3 pass=$4
  shift 4
  PGPASSWORD=$pass PGCONNECT_TIMEOUT=5 timeout 20 "$PGBIN/psql" -h 127.0.0.1 -p "$port" \
    -U "$user" -d "$db" -X -q -A -t -v ON_ERROR_STOP=1 "$@" 9<&-
}

# Waits until USER can run a query on DB.
wait_pg() {
  local dir=$1 port=$2 user=$3 db=$4 pass=$5 end=$((SECONDS + DEADLINE))
  until [ "$(pg_psql "$port" "$user" "$db" "$pass" -c 'select 1' 2>/dev/null)" = 1 ]; do
    if [ "$SECONDS" -ge "$end" ] || ! pg_pid "$dir" >/dev/null; then
      log_tail "$dir/pg.log"
      pg_psql "$port" "$user" "$db" "$pass" -c 'select 1' || true
      die "PostgreSQL on 127.0.0.1:$port does not accept $user on $db"
    fi
    sleep 0.2
  done
}

# Starts redis from DIR/redis.conf and waits until it answers an authenticated PING. Returns 3
# when the port was taken (the caller may pick another), dies on other failures.
start_redis() {
  local dir=$1 port pass from end out
  port=$(redis_conf_val "$dir" port)
  pass=$(redis_conf_val "$dir" requirepass)
  from=$(stat -c %s "$dir/redis.log" 2>/dev/null || echo 0)
  if ! redis-server "$dir/redis.conf" </dev/null >>"$dir/redis.log" 2>&1 9<&-; then
    log_tail "$dir/redis.log" "$from"
    die "redis-server failed to start"
  fi
  end=$((SECONDS + DEADLINE))
  while :; do
    sleep 0.1
    # (Checked first: whatever holds the port may accept connections and never answer.)
    if tail -c +"$((from + 1))" "$dir/redis.log" | grep -q 'Address already in use'; then
      return 3
    fi
    out=$(REDISCLI_AUTH=$pass timeout 3 redis-cli -h 127.0.0.1 -p "$port" ping 2>&1 9<&-) || true
    [ "$out" = PONG ] && return 0
    if [ "$SECONDS" -ge "$end" ]; then
      log_tail "$dir/redis.log" "$from"
      log "last redis-cli ping: $out"
      die "Redis on 127.0.0.1:$port does not answer an authenticated PING within ${DEADLINE}s"
    fi
  done
}

write_redis_conf() {
  local dir=$1 port=$2 pass=$3
  (
    umask 077
    cat >"$dir/redis.conf" <<EOF
bind 127.0.0.1
port $port
protected-mode yes
requirepass $pass
daemonize yes
supervised no
pidfile $dir/redis.pid
logfile $dir/redis.log
dir $dir/redis
save ""
appendonly no
EOF
  )
}

# Starts the cluster in DIR/pg. Returns 3 when the port was taken, dies on other failures.
start_pg() {
  local dir=$1 from
  from=$(stat -c %s "$dir/pg.log" 2>/dev/null || echo 0)
  if as_pg 90 "$PGBIN/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w -t "$DEADLINE" start \
    </dev/null >&2 9<&-; then
    return 0
  fi
  if tail -c +"$((from + 1))" "$dir/pg.log" | grep -qE 'could not bind|Address already in use'; then
    return 3
  fi
  log_tail "$dir/pg.log" "$from"
  die "PostgreSQL failed to start"
}

# ---- commands -----------------------------------------------------------------------------------

UP_DIR=''
UP_DONE=0
# shellcheck disable=SC2317 # run by the EXIT trap
up_cleanup() {
  [ "$UP_DONE" -eq 0 ] && [ -n "$UP_DIR" ] && [ -d "$UP_DIR" ] || return 0
  log "up failed: stopping what was started; logs left in $UP_DIR"
  stop_redis "$UP_DIR" || true
  stop_pg "$UP_DIR" || true
  rm -rf "${UP_DIR:?}/pg" "$UP_DIR/redis" "$UP_DIR/env" "$UP_DIR/env.plain" || true
}

cmd_up() {
  local dir='' owner='' owner_start=''
  while [ $# -gt 0 ]; do
    case $1 in
      --owner)
        [ $# -ge 2 ] || usage
        owner=$2
        shift 2
        ;;
      --owner=*)
        owner=${1#--owner=}
        shift
        ;;
      -*) usage ;;
      *)
        [ -z "$dir" ] || usage
        dir=$1
        shift
        ;;
    esac
  done
  [ -n "$dir" ] || usage
  if [ -n "$owner" ]; then
    [[ $owner =~ ^[0-9]+$ ]] || die "--owner needs a PID, got '$owner'"
    pid_alive "$owner" || die "--owner $owner: no such process"
    owner_start=$(proc_starttime "$owner" 2>/dev/null || true)
  fi
  local t0=$SECONDS
  cmd_install
  dir=$(abs_dir "$dir")
  PGBIN=$(pg_bin_latest)

  mkdir -p "$dir"
  lock_dir "$dir" || die "$dir vanished"
  if pg_pid "$dir" >/dev/null || redis_pid "$dir" >/dev/null; then
    die "$dir holds running servers: run \`$0 down $dir\` first"
  fi
  if [ -n "$(ls -A "$dir")" ]; then
    [ -f "$dir/$MARKER" ] || die "$dir exists, is not empty and is not a servers directory"
    log "clearing the stale servers directory $dir"
    find "$dir" -mindepth 1 -delete
  fi
  UP_DIR=$dir
  trap up_cleanup EXIT
  chmod 755 "$dir"
  : >"$dir/$MARKER"
  local token
  token=$(gen_password)
  printf '%s\n' "$token" >"$dir/instance"

  # ---- PostgreSQL
  local super_pw main_pw an_pw pg_port sockdir="$dir/pgsock" tries
  super_pw=$(gen_password)
  main_pw=$(gen_password)
  an_pw=$(gen_password)
  mkdir -m 700 "$dir/pg"
  mkdir -m 755 "$sockdir"
  (umask 077 && printf '%s\n' "$super_pw" >"$dir/pg-superuser-password")
  : >"$dir/pg.log"
  if is_root; then
    chown postgres:postgres "$dir/pg" "$sockdir" "$dir/pg.log" "$dir/pg-superuser-password"
    as_pg 10 test -w "$dir/pg" ||
      die "the postgres user cannot write $dir/pg: its parent directories must be searchable by all (use a DIR under /tmp)"
  fi
  log "initdb ($PGBIN) in $dir/pg"
  as_pg 120 "$PGBIN/initdb" -D "$dir/pg" -U postgres --auth=scram-sha-256 \
    --pwfile="$dir/pg-superuser-password" -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 9<&- ||
    {
      log_tail "$dir/initdb.log"
      die "initdb failed"
    }
  # Unix socket paths are limited to 107 bytes: without room, the server listens on TCP only.
  if [ $((${#sockdir} + 16)) -gt 107 ]; then
    log "note: $sockdir is too long for a unix socket: TCP only"
    sockdir=''
  fi
  cat >>"$dir/pg/postgresql.conf" <<EOF

# ---- scripts/servers.sh
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sockdir'
password_encryption = 'scram-sha-256'
fsync = off
EOF
  pg_port=''
  for tries in 1 2 3 4 5; do
    pg_port=$(pick_port)
    printf "port = %s\n" "$pg_port" >>"$dir/pg/postgresql.conf"
    log "starting PostgreSQL on 127.0.0.1:$pg_port"
    if start_pg "$dir"; then break; else [ $? -eq 3 ] || exit 1; fi
    log "port $pg_port was taken meanwhile: retrying"
    pg_port=''
  done
  [ -n "$pg_port" ] || die "PostgreSQL: no port could be bound after $tries tries"
  wait_pg "$dir" "$pg_port" postgres postgres "$super_pw"
  pg_psql "$pg_port" postgres postgres "$super_pw" >&2 <<EOF
CREATE ROLE sk_main LOGIN PASSWORD '$main_pw';
CREATE DATABASE sk_main OWNER sk_main;
CREATE ROLE sk_analytics LOGIN PASSWORD '$an_pw';
CREATE DATABASE sk_analytics OWNER sk_analytics;
EOF
  pg_psql "$pg_port" postgres sk_main "$super_pw" \
    -c 'GRANT ALL ON SCHEMA public TO sk_main' >&2
  pg_psql "$pg_port" postgres sk_analytics "$super_pw" \
    -c 'GRANT ALL ON SCHEMA public TO sk_analytics' >&2
  wait_pg "$dir" "$pg_port" sk_main sk_main "$main_pw"
  wait_pg "$dir" "$pg_port" sk_analytics sk_analytics "$an_pw"

  # ---- Redis
  local redis_pw redis_port=''
  redis_pw=$(gen_password)
  mkdir -m 700 "$dir/redis"
  for tries in 1 2 3 4 5; do
    redis_port=$(pick_port "$pg_port")
    write_redis_conf "$dir" "$redis_port" "$redis_pw"
    log "starting Redis on 127.0.0.1:$redis_port"
    if start_redis "$dir"; then break; else [ $? -eq 3 ] || exit 1; fi
    log "port $redis_port was taken meanwhile: retrying"
    stop_redis "$dir"
    redis_port=''
  done
  [ -n "$redis_port" ] || die "Redis: no port could be bound after $tries tries"

  # ---- env files (env last: its presence means "up")
  local vars k
  vars=(
    SKPROCESS_PG_HOST=127.0.0.1
    "SKPROCESS_PG_PORT=$pg_port"
    SKPROCESS_PG_USER=sk_main
    SKPROCESS_PG_DB=sk_main
    "SKPROCESS_PG_PASSWORD=$main_pw"
    SKPROCESS_PG_ANALYTICS_USER=sk_analytics
    SKPROCESS_PG_ANALYTICS_DB=sk_analytics
    "SKPROCESS_PG_ANALYTICS_PASSWORD=$an_pw"
    SKPROCESS_REDIS_HOST=127.0.0.1
    "SKPROCESS_REDIS_PORT=$redis_port"
    "SKPROCESS_REDIS_PASSWORD=$redis_pw"
    "SKPROCESS_SERVERS_DIR=$dir"
  )
  (
    umask 077
    printf '%s\n' "${vars[@]}" >"$dir/env.plain.tmp"
    for k in "${vars[@]}"; do
      printf "export %s='%s'\n" "${k%%=*}" "$(printf '%s' "${k#*=}" | sed "s/'/'\\\\''/g")"
    done >"$dir/env.tmp"
  )
  mv "$dir/env.plain.tmp" "$dir/env.plain"
  mv "$dir/env.tmp" "$dir/env"

  if [ -n "$owner" ]; then
    # Detached: own session, no fd of the caller's (nor the lock) kept open.
    (
      cd /
      exec setsid nohup bash "$SELF" _watch "$dir" "$owner" "$owner_start" "$token" \
        </dev/null >>"$dir/watchdog.log" 2>&1 8>&- 9<&-
    ) &
    printf '%s\n' "$!" >"$dir/watchdog.pid"
    log "watchdog (pid $!) runs \`down\` once pid $owner is gone"
  fi
  UP_DONE=1
  log "up in $((SECONDS - t0))s: PostgreSQL 127.0.0.1:$pg_port, Redis 127.0.0.1:$redis_port"
  printf '%s\n' "$dir/env"
}

cmd_watch() {
  local dir=$1 owner=$2 start=$3 token=$4
  log "watchdog $$: watching pid $owner for $dir"
  while :; do
    if [ ! -f "$dir/env" ] || [ "$(cat "$dir/instance" 2>/dev/null)" != "$token" ]; then
      log "watchdog: $dir was brought down by someone else: exiting"
      exit 0
    fi
    if ! pid_alive "$owner" "$start"; then
      log "watchdog: owner $owner is gone: running down"
      SKPROCESS_SERVERS_TOKEN=$token timeout 300 bash "$SELF" down "$dir" ||
        log "watchdog: down failed"
      exit 0
    fi
    sleep 1
  done
}

cmd_down() {
  [ $# -eq 1 ] || usage
  local dir wpid
  dir=$(abs_dir "$1")
  if [ ! -d "$dir" ]; then
    log "down: $dir does not exist: nothing to do"
    return 0
  fi
  if ! lock_dir "$dir"; then
    log "down: $dir was removed meanwhile: nothing to do"
    return 0
  fi
  if [ -n "${SKPROCESS_SERVERS_TOKEN:-}" ] &&
    [ "$(cat "$dir/instance" 2>/dev/null)" != "$SKPROCESS_SERVERS_TOKEN" ]; then
    log "down: $dir now belongs to another instance: leaving it"
    return 0
  fi
  if [ -n "$(ls -A "$dir")" ] && [ ! -f "$dir/$MARKER" ]; then
    die "down: $dir is not a servers directory: not touching it"
  fi
  stop_redis "$dir"
  stop_pg "$dir"
  wpid=$(cat "$dir/watchdog.pid" 2>/dev/null || true)
  # (Not when run by the watchdog itself, which exits after this.)
  if [ -z "${SKPROCESS_SERVERS_TOKEN:-}" ] && [[ $wpid =~ ^[0-9]+$ ]] && pid_alive "$wpid" &&
    [[ $(proc_cmdline "$wpid") == *" _watch $dir "* ]]; then
    kill -TERM "$wpid" 2>/dev/null || true
  fi
  rm -rf "$dir"
  log "down: $dir removed"
}

cmd_restart() {
  [ $# -eq 2 ] || usage
  local what=$1 dir
  dir=$(abs_dir "$2")
  [ -f "$dir/env.plain" ] || die "restart: $dir is not up (no env.plain)"
  lock_dir "$dir" || die "restart: $dir vanished"
  case $what in
    postgres | postgresql | pg)
      PGBIN=$(pg_bin_of "$dir") || die "restart: no cluster in $dir/pg"
      local port pw from
      port=$(plain_val "$dir" SKPROCESS_PG_PORT)
      pw=$(plain_val "$dir" SKPROCESS_PG_PASSWORD)
      from=$(stat -c %s "$dir/pg.log")
      log "restarting PostgreSQL on 127.0.0.1:$port"
      as_pg 150 "$PGBIN/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -m fast -w \
        -t "$DEADLINE" restart </dev/null >&2 9<&- || {
        log_tail "$dir/pg.log" "$from"
        die "PostgreSQL restart failed"
      }
      wait_pg "$dir" "$port" sk_main sk_main "$pw"
      ;;
    redis)
      log "restarting Redis on 127.0.0.1:$(redis_conf_val "$dir" port)"
      stop_redis "$dir"
      local rc=0
      start_redis "$dir" || rc=$?
      [ "$rc" -eq 0 ] || die "Redis restart failed: its port was taken meanwhile"
      ;;
    *) usage ;;
  esac
  log "restart $what: done"
}

main() {
  [ $# -ge 1 ] || usage
  local cmd=$1
  shift
  case $cmd in
    install)
      [ $# -eq 0 ] || usage
      cmd_install
      ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    restart) cmd_restart "$@" ;;
    _watch) cmd_watch "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

# On one line: a running watchdog must not read a later edit of this file.
main "$@"; exit $?
