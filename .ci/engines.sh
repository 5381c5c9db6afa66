#!/usr/bin/env bash
# pruner on real engines: the image built and run by Docker, and the systemd units run by a real
# systemd (PID 1 of a container), each against the simulated VPSBG API on 127.0.0.1, to see what
# checking the files cannot: deletions exactly as planned, health, the user it runs as, a clean
# stop, where the state goes, that the token reaches no log. Each check prints `ok: …`,
# `FAIL: …` or `skip: …` with what it saw; any FAIL fails the run.
#
# Runs as root. Installs docker.io and debootstrap when missing, and starts a dockerd of its own
# (its own data root, exec root and socket under $PRUNER_ENGINES_ROOT), which it stops at the
# end with its containers, so another Docker on the machine is never touched. No registry image
# can be pulled here: the base images are made with debootstrap, their root filesystems cached
# in $PRUNER_ENGINES_CACHE (keyed by the package list), the images kept in the data root.
# When an engine cannot start, it says so in one line and fails, unless PRUNER_SKIP_ENGINES=1.
#
#   PRUNER_SKIP_ENGINES=1   an engine that cannot start is a skip, not a failure
#   PRUNER_ENGINES_CACHE    default /var/cache/pruner-engines
#   PRUNER_ENGINES_ROOT     default /var/lib/pruner-engines-docker
#   VENV                    the project's venv, for the simulator and `pruner plan` (default .venv)
set -Eeuo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C
trap 'echo "FAIL: .ci/engines.sh line $LINENO: $BASH_COMMAND exited $?"' ERR

VENV=${VENV:-.venv}
CACHE=${PRUNER_ENGINES_CACHE:-/var/cache/pruner-engines}
ENGINE_ROOT=${PRUNER_ENGINES_ROOT:-/var/lib/pruner-engines-docker}
SOCKET=$ENGINE_ROOT/docker.sock
DOCKER_CLI=/usr/bin/docker   # docker.io's client, the same version as its dockerd
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
PYTHON_BASE=local/python:3.11-bookworm
PYTHON_PACKAGES=python3,python3-venv,python3-pip,python-is-python3,ca-certificates
SYSTEMD_BASE=local/systemd:bookworm
# python3 (and the `python` the image's venv points at) for /opt/pruner copied from the image
SYSTEMD_PACKAGES=systemd,systemd-sysv,dbus,python3,python-is-python3
IMAGE=pruner:engines
SYSTEMD_IMAGE=pruner-systemd:engines
LABEL=pruner.engines   # on every container this script starts, for the clean-up
DAEMON=pruner-engines-daemon
SYSTEMD=pruner-engines-systemd
STATE_VOLUME=pruner-engines-state

failed=0
work=""
dockerd_pid=""
simulator_pids=()

ok() { echo "ok: $*"; }
fail() {
    echo "FAIL: $*"
    failed=1
}
skip() { echo "skip: $*"; }
fatal() {   # a step the rest depends on failed
    fail "$@"
    exit 1
}
dk() { "$DOCKER_CLI" --host "unix://$SOCKET" "$@"; }
sx() { dk exec "$SYSTEMD" "$@"; }   # a command inside the systemd container
since() { awk -v start="$1" -v now="$EPOCHREALTIME" 'BEGIN { printf "%.1f", now - start }'; }
within() { awk -v limit="$1" -v took="$2" 'BEGIN { exit !(took < limit) }'; }

# `wait_until SECONDS COMMAND…`: true once COMMAND succeeds, false when the time is up.
wait_until() {
    local deadline
    deadline=$(awk -v now="$EPOCHREALTIME" -v t="$1" 'BEGIN { printf "%d", now + t }')
    shift
    until "$@" >/dev/null 2>&1; do
        [ "${EPOCHREALTIME%.*}" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

# An engine that cannot start is never a silent pass: one line, and a failure unless skipped.
engine_unavailable() {
    if [ "${PRUNER_SKIP_ENGINES:-}" = 1 ]; then
        skip "real engines: $* (PRUNER_SKIP_ENGINES=1)"
        exit "$failed"
    fi
    echo "FAIL: real engines: $* (PRUNER_SKIP_ENGINES=1 skips them)"
    exit 1
}

# --- the engine: packages, dockerd, clean-up ----------------------------------------------

install_missing() {
    [ "$(id -u)" = 0 ] || engine_unavailable "starting dockerd needs root (this is uid $(id -u))"
    local missing=()
    [ -x /usr/sbin/dockerd ] && [ -x "$DOCKER_CLI" ] || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    [ ${#missing[@]} -gt 0 ] || return 0
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null; }; then
        engine_unavailable "apt-get could not install ${missing[*]}"
    fi
}

start_dockerd() {
    local stale
    stale=$(cat "$ENGINE_ROOT/dockerd.pid" 2>/dev/null || true)
    if [ -n "$stale" ] && grep -qs "$ENGINE_ROOT" "/proc/$stale/cmdline"; then
        echo "   stopping the dockerd a previous run left (pid $stale)"
        kill "$stale" || true
        wait_until 30 sh -c "! kill -0 $stale" || true
    fi
    # No bridge and no iptables rules: the containers use the host's network, and this dockerd
    # changes nothing on the machine's network.
    /usr/sbin/dockerd --data-root "$ENGINE_ROOT/data" --exec-root "$ENGINE_ROOT/exec" \
        --pidfile "$ENGINE_ROOT/dockerd.pid" --host "unix://$SOCKET" \
        --bridge none --iptables=false --ip6tables=false >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    if ! wait_until 60 dk info; then
        engine_unavailable "dockerd did not start: $(tail -n 1 "$work/dockerd.log")"
    fi
    ok "dockerd $(dk version --format '{{.Server.Version}}') on $SOCKET"
    remove_containers   # a run that was killed may have left some
}

remove_containers() {
    local containers
    mapfile -t containers < <(dk ps -aq --filter "label=$LABEL" 2>/dev/null || true)
    [ ${#containers[@]} = 0 ] || dk rm -f "${containers[@]}" >/dev/null 2>&1 || true
    dk volume rm -f "$STATE_VOLUME" >/dev/null 2>&1 || true
}

cleanup() {
    local pid
    for pid in "${simulator_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ -n "$dockerd_pid" ]; then
        remove_containers
        dk image prune -f >/dev/null 2>&1 || true   # layers of earlier builds, untagged now
        kill "$dockerd_pid" 2>/dev/null || true
        wait "$dockerd_pid" 2>/dev/null || true
        # dockerd leaves its network namespace mounted under the exec root when it stops
        awk -v root="$ENGINE_ROOT/exec/" 'index($2, root) == 1 { print $2 }' /proc/mounts \
            | xargs -r umount 2>/dev/null || true
    fi
    [ -z "$work" ] || rm -rf "$work"
}

# --- images ---------------------------------------------------------------------------------

# `base_image TAG PACKAGES`: a Debian root filesystem as an image. The debootstrap result is
# cached as a tarball keyed by suite and packages; the host's CA bundle goes into the image (not
# the cache), so pip in the image build trusts the roots this machine trusts.
base_image() {
    local tag=$1 packages=$2 key ca tarball rootfs source started=$EPOCHREALTIME
    key=$(printf '%s %s\n' "$SUITE" "$packages" | sha256sum | cut -c1-16)
    ca=$(sha256sum </etc/ssl/certs/ca-certificates.crt | cut -c1-16)
    if [ "$(dk image inspect --format '{{index .Config.Labels "pruner.engines.base"}}' "$tag" \
        2>/dev/null)" = "$key-$ca" ]; then
        ok "base image $tag: reused from the data root"
        return 0
    fi
    tarball=$CACHE/$SUITE-$key.tar
    rootfs=$work/rootfs
    rm -rf "$rootfs"
    if [ ! -f "$tarball" ]; then
        mkdir -p "$CACHE"
        debootstrap --variant=minbase --include="$packages" "$SUITE" "$rootfs" "$MIRROR" \
            >"$work/debootstrap.log" 2>&1 \
            || fatal "base image $tag: debootstrap failed: $(tail -n 2 "$work/debootstrap.log")"
        tar -C "$rootfs" -cf "$tarball.partial" .
        mv "$tarball.partial" "$tarball"
        source="debootstrap, cached in $tarball"
    else
        mkdir -p "$rootfs"
        tar -C "$rootfs" -xf "$tarball"
        source="the cached $tarball"
    fi
    mkdir -p "$rootfs/etc/ssl/certs"
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    tar -C "$rootfs" -c . | dk import --change "LABEL pruner.engines.base=$key-$ca" - "$tag" \
        >/dev/null
    rm -rf "$rootfs"
    ok "base image $tag: made in $(since "$started") s from $source"
}

build_image() {
    local started=$EPOCHREALTIME
    # The classic builder: BuildKit would fetch the Dockerfile's syntax image from a registry.
    DOCKER_BUILDKIT=0 dk build --network host --build-arg "PYTHON_IMAGE=$PYTHON_BASE" \
        -t "$IMAGE" . >"$work/build.log" 2>&1 \
        || fatal "docker build: $(tail -n 5 "$work/build.log")"
    ok "docker build of the Dockerfile on $PYTHON_BASE: $(since "$started") s," \
        "$(dk image inspect --format '{{.Size}}' "$IMAGE" | awk '{ printf "%d MB", $1 / 1e6 }')"
}

# --- the simulated API, a config for it, and the plan a pass should carry out ------------------

# `start_simulator NAME`: a fresh fleet in $work/NAME, with a token of its own.
start_simulator() {
    local dir=$work/$1
    mkdir -p "$dir"
    "$VENV/bin/python" -c 'import secrets; print("vpsbg-" + secrets.token_urlsafe(32))' \
        >"$dir/token"
    "$VENV/bin/python" .ci/engines_sim.py serve "$dir" "$dir/token" 2>"$dir/simulator.log" &
    simulator_pids+=($!)
    echo $! >"$dir/simulator.pid"
    wait_until 20 test -s "$dir/url" \
        || fatal "$1: the simulator did not start: $(cat "$dir/simulator.log")"
}

# `stop_simulator NAME`: stops it; $work/NAME/deleted.json then lists what it deleted.
stop_simulator() {
    local pid
    pid=$(cat "$work/$1/simulator.pid")
    kill -TERM "$pid"
    wait "$pid" || fail "$1: the simulator failed: $(cat "$work/$1/simulator.log")"
}

# `write_config NAME STATE_DIR [TOKEN_FILE]`: $work/NAME/config.yaml, for its simulator. Real
# deletions, caps off (the fleet's plan deletes most backups), a daemon pass at start, no
# metrics port (containers share the host's network).
write_config() {
    local dir=$work/$1
    cat >"$dir/config.yaml" <<EOF
api:
  base_url: "$(cat "$dir/url")"
  timeout: 5s
  retries: 3
  backoff: 0.1s
  token_file: ${3:-null}
dry_run: false
state_dir: $2
schedule: {cron: "30 3 * * *", jitter: 0s, run_on_start: true}
metrics: {listen: null}
safety: {max_deletions_per_run: null, max_delete_fraction: 1.0}
policies:
  - name: databases
    match: {hostnames: ["db-*"]}
    keep_last: 3
    keep_daily: 7
    keep_weekly: 4
    protect: {names: ["*pre-upgrade*"]}
  - {name: web, match: {hostnames: ["web-*"]}, keep_daily: 14, keep_weekly: 8}
  - {name: snapshots, resource: snapshots, keep_last: 2}
  - {name: everything-else, keep_daily: 7, keep_weekly: 4}
EOF
}

# `plan NAME`: what a pass should delete, as the operator would review it (the host's CLI).
plan() {
    local dir=$work/$1
    VPSBG_API_TOKEN=$(cat "$dir/token") NO_PROXY=127.0.0.1 \
        "$VENV/bin/pruner" --config "$dir/config.yaml" plan --format json \
        >"$dir/plan.json" 2>"$dir/plan.log" || fatal "$1: pruner plan: $(tail -n 3 "$dir/plan.log")"
}

# `check_deletions NAME LAST_PLAN`: the API saw exactly the plan's deletions, and the pass's
# own record agrees. Stops NAME's simulator.
check_deletions() {
    local result
    stop_simulator "$1"
    if result=$("$VENV/bin/python" .ci/engines_sim.py compare "$work/$1/plan.json" \
        "$work/$1/deleted.json" "$2" 2>&1); then
        ok "$1: $result"
    else
        fail "$1: deletions: $result"
    fi
}

# `check_no_token NAME WHAT FILE…`: no part of NAME's token in those files.
check_no_token() {
    local name=$1 what=$2 result
    shift 2
    if result=$("$VENV/bin/python" .ci/engines_sim.py leaks "$work/$name/token" "$@" 2>&1); then
        ok "$name: the token is not in $what ($result)"
    else
        fail "$name: the token shows in $what: $result"
    fi
}

# --- Docker: the image as the README runs it ------------------------------------------------

# The README's `docker run`, plus --network host: the simulated API is on the host's 127.0.0.1.
run_daemon_container() {
    local dir=$work/docker
    start_simulator docker
    write_config docker /var/lib/pruner
    plan docker
    chown 10001:10001 "$dir/token"   # readable by the image's user
    chmod 0400 "$dir/token"
    dk volume rm -f "$STATE_VOLUME" >/dev/null
    container_started=$EPOCHREALTIME
    dk run -d --name "$DAEMON" --label "$LABEL" --network host --restart unless-stopped \
        --stop-timeout 90 --read-only --cap-drop ALL --security-opt no-new-privileges \
        -v "$dir/config.yaml:/etc/pruner/config.yaml:ro" \
        -v "$dir/token:/run/secrets/vpsbg-token:ro" \
        -v "$STATE_VOLUME:/var/lib/pruner" "$IMAGE" >/dev/null
}

pass_logged() { dk logs "$DAEMON" 2>&1 | grep -q '"event": "pass.summary"'; }

check_docker_pass() {
    if wait_until 60 pass_logged; then
        ok "docker: the daemon's first pass ended $(since "$container_started") s after start:" \
            "$(dk logs "$DAEMON" 2>&1 | grep '"event": "daemon.pass"' | tail -n 1 | cut -c1-80)"
    else
        fail "docker: no pass.summary within 60 s; state $(dk inspect --format \
            '{{.State.Status}} exit {{.State.ExitCode}}' "$DAEMON");" \
            "logs: $(dk logs --tail 5 "$DAEMON" 2>&1)"
    fi
}

health_settled() { [ "$(dk inspect --format '{{.State.Health.Status}}' "$DAEMON")" != starting ]; }

check_docker_healthy() {
    local status
    wait_until 120 health_settled || true
    status=$(dk inspect --format '{{.State.Health.Status}}' "$DAEMON")
    if [ "$status" = healthy ]; then
        ok "docker: HEALTHCHECK (pruner health) healthy $(since "$container_started") s after start"
    else
        fail "docker: HEALTHCHECK is $status: $(dk inspect --format \
            '{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}' "$DAEMON")"
    fi
}

check_docker_non_root() {
    local users
    users=$(dk top "$DAEMON" -eo pid,uid | awk 'NR > 1 { print $2 }' | sort -u | tr '\n' ' ')
    if [ "$users" = "10001 " ]; then
        ok "docker: every process runs as uid 10001: $(dk top "$DAEMON" -eo pid,args \
            | awk 'NR > 1 { $1 = ""; printf "%s;", $0 }')"
    else
        fail "docker: processes run as uid(s) $users, not only 10001"
    fi
}

check_docker_stop() {
    local started=$EPOCHREALTIME took result
    dk stop "$DAEMON" >/dev/null
    took=$(since "$started")
    result=$(dk inspect --format 'exit code {{.State.ExitCode}}, {{.RestartCount}} restarts' \
        "$DAEMON")
    # A daemon that ignored SIGTERM would be killed after --stop-timeout (90 s), exit 137.
    if [ "$result" = "exit code 0, 0 restarts" ] && within 10 "$took"; then
        ok "docker: docker stop took $took s, $result"
    else
        fail "docker: docker stop took $took s, $result"
    fi
}

check_docker_deletions() {
    dk cp "$DAEMON:/var/lib/pruner/last-plan.json" "$work/docker/last-plan.json" >/dev/null
    check_deletions docker "$work/docker/last-plan.json"
}

check_docker_token_not_logged() {
    dk logs "$DAEMON" >"$work/docker/logs.txt" 2>&1
    dk inspect "$DAEMON" >"$work/docker/inspect.json"
    check_no_token docker "docker logs or docker inspect" "$work/docker/logs.txt" \
        "$work/docker/inspect.json"
}

# A token file the image's user cannot read: a configuration error naming the file (exit 2).
check_docker_unreadable_token() {
    local dir=$work/docker output code=0
    chown 0:0 "$dir/token"
    chmod 0600 "$dir/token"
    output=$(dk run --rm --label "$LABEL" --network host --read-only --cap-drop ALL \
        -v "$dir/config.yaml:/etc/pruner/config.yaml:ro" \
        -v "$dir/token:/run/secrets/vpsbg-token:ro" -v "$STATE_VOLUME:/var/lib/pruner" \
        "$IMAGE" pruner run 2>&1) || code=$?
    if [ "$code" = 2 ] && grep -q '/run/secrets/vpsbg-token.*cannot be read' <<<"$output" \
        && ! grep -q Traceback <<<"$output"; then
        ok "docker: an unreadable token file: exit 2, $(grep -o '[^"]*cannot be read[^"]*' \
            <<<"$output" | head -n 1 | cut -c1-100)…"
    else
        fail "docker: an unreadable token file: exit $code: $(tail -n 3 <<<"$output")"
    fi
}

docker_checks() {
    run_daemon_container
    check_docker_pass
    check_docker_healthy
    check_docker_non_root
    check_docker_stop
    check_docker_deletions
    check_docker_token_not_logged
    check_docker_unreadable_token
}

# --- systemd: the shipped units, unchanged, under systemd as PID 1 ---------------------------

# The units as the README installs them, with /opt/pruner taken from the image just built.
build_systemd_image() {
    local context=$work/systemd-image
    mkdir -p "$context/units"
    cp systemd/*.service systemd/*.timer "$context/units/"
    cat >"$context/Dockerfile" <<EOF
FROM $SYSTEMD_BASE
COPY --from=$IMAGE /opt/pruner /opt/pruner
COPY units/ /etc/systemd/system/
EOF
    DOCKER_BUILDKIT=0 dk build -t "$SYSTEMD_IMAGE" "$context" >"$work/systemd-build.log" 2>&1 \
        || fatal "systemd image: $(tail -n 5 "$work/systemd-build.log")"
}

# What a host gives its systemd and docker does not: SYS_PTRACE (without it a unit with both
# PrivateUsers= and ProtectProc=invisible fails 217/USER: systemd cannot see the process it is
# setting up in /proc), and a shared root mount (systemd mounts each unit's credentials in a
# namespace of its own, and they reach /run/credentials only by propagation; systemd makes / shared
# when it boots a machine, not in a container). With both, the units run exactly as shipped.
boot_systemd() {
    local state
    dk run -d --name "$SYSTEMD" --label "$LABEL" --network host \
        --cap-add SYS_ADMIN --cap-add SYS_PTRACE --security-opt seccomp=unconfined \
        --tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
        --entrypoint /bin/sh "$SYSTEMD_IMAGE" -c 'mount --make-rshared / && exec /sbin/init' \
        >/dev/null
    wait_until 30 sx test -S /run/systemd/private || true   # systemctl's socket: systemd runs
    state=$(timeout 60 "$DOCKER_CLI" --host "unix://$SOCKET" exec "$SYSTEMD" \
        systemctl is-system-running --wait 2>&1) || true
    case $state in
    running) ok "systemd: $(sx systemctl --version | head -n 1) booted as PID 1: $state" ;;
    degraded)
        ok "systemd: booted, degraded: $(sx systemctl --failed --plain --no-legend | tr '\n' ';')"
        ;;
    *) engine_unavailable "systemd did not boot in a container: ${state:-no answer}" ;;
    esac
}

# `install_account NAME CONFIG TOKEN`: NAME's config and token into /etc/pruner, as the README
# says (the token root-only).
install_account() {
    sx install -d -m 0755 /etc/pruner
    dk cp "$work/$1/config.yaml" "$SYSTEMD:/etc/pruner/$2"
    dk cp "$work/$1/token" "$SYSTEMD:/etc/pruner/$3"
    sx chown root:root "/etc/pruner/$2" "/etc/pruner/$3"
    sx chmod 0644 "/etc/pruner/$2"
    sx chmod 0600 "/etc/pruner/$3"
}

unit_property() { sx systemctl show --property "$2" --value "$1"; }

# `state_dir_of UNIT`: where the unit's StateDirectory= is, as its config must say.
state_dir_of() { echo "/var/lib/$(unit_property "$1" StateDirectory)"; }

check_unit_ready() {
    local started=$EPOCHREALTIME output
    if ! output=$(sx systemctl start "$1" 2>&1); then
        fail "$1: systemctl start: $output; $(sx journalctl -u "$1" -o cat --no-pager | tail -n 5)"
        return 1
    fi
    ok "$1: READY after $(since "$started") s ($(unit_property "$1" ActiveState)," \
        "$(unit_property "$1" SubState), Type=$(unit_property "$1" Type))"
}

last_pass_ok() { unit_property "$1" StatusText | grep -q '^last pass: ok; next: '; }

check_unit_status() {
    if wait_until 60 last_pass_ok "$1"; then
        ok "$1: StatusText=$(unit_property "$1" StatusText)"
    else
        fail "$1: StatusText=$(unit_property "$1" StatusText); $(sx journalctl -u "$1" -o cat \
            --no-pager | tail -n 3)"
    fi
}

reload_logged() {
    sx journalctl -u "$1" -o cat --no-pager | grep -q '"event": *"config.reloaded"'
}

# `systemctl reload` once the unit has ExecReload=: the daemon stays, with the same PID, and
# logs that it read its config again (`config.reloaded`).
check_reload() {
    local unit=$1 file=$2 pid
    if [ -z "$(unit_property "$unit" ExecReload)" ]; then
        skip "reload (not implemented: ExecReload= missing in $file)"
        return 0
    fi
    pid=$(unit_property "$unit" MainPID)
    if sx systemctl reload "$unit" && [ "$(unit_property "$unit" ActiveState)" = active ] \
        && [ "$(unit_property "$unit" MainPID)" = "$pid" ] && wait_until 15 reload_logged "$unit"
    then
        ok "$unit: systemctl reload: still active, same PID $pid, config.reloaded logged"
    else
        fail "$unit: systemctl reload: $(unit_property "$unit" ActiveState)," \
            "PID $pid -> $(unit_property "$unit" MainPID);" \
            "$(sx journalctl -u "$unit" -o cat --no-pager | tail -n 2)"
    fi
}

check_unit_stop() {
    local started=$EPOCHREALTIME took result
    sx systemctl stop "$1"
    took=$(since "$started")
    result="Result=$(unit_property "$1" Result), exit status $(unit_property "$1" ExecMainStatus)"
    result+=", $(unit_property "$1" NRestarts) restarts"
    if [ "$result" = "Result=success, exit status 0, 0 restarts" ] && within 10 "$took"; then
        ok "$1: systemctl stop took $took s, $result"
    else
        fail "$1: systemctl stop took $took s, $result"
    fi
}

# `check_state_private UNIT NAME`: the state directory (under /var/lib/private, as DynamicUser=
# puts it) belongs to the unit's own user (not root), 0700, its files 0600; it holds the plan.
check_state_private() {
    local unit=$1 state private mode others
    state=$(state_dir_of "$unit")
    private=/var/lib/private/${state#/var/lib/}
    mode=$(sx stat -c '%a uid %u' "$private")
    others=$(sx find "$private" -mindepth 1 \( -type d -o ! -perm 0600 \) -printf '%m %p; ')
    if [ "${mode% uid *}" = 700 ] && [ "${mode#* uid }" != 0 ] && [ -z "$others" ]; then
        ok "$unit: state in $private, $mode, files 0600: $(sx ls "$private" | tr '\n' ' ')"
    else
        fail "$unit: state $private is $mode (want 700, not root); not 0600: ${others:-none}"
    fi
    sx cat "$private/last-plan.json" >"$work/$2/last-plan.json"
}

check_journal_token() {
    sx journalctl -o verbose --no-pager >"$work/$1/journal.txt"
    check_no_token "$1" "the journal (every unit, every field)" "$work/$1/journal.txt"
}

# `check_daemon_unit UNIT FILE NAME`: a Type=notify daemon from start to stop.
check_daemon_unit() {
    local unit=$1
    check_unit_ready "$unit" || return 0
    check_unit_status "$unit"
    check_reload "$unit" "$2"
    check_unit_stop "$unit"
    check_state_private "$unit" "$3"
    check_deletions "$3" "$work/$3/last-plan.json"
    check_journal_token "$3"
}

check_service() {
    start_simulator service
    write_config service /var/lib/pruner
    plan service
    install_account service config.yaml vpsbg-token
    check_daemon_unit pruner.service pruner.service service
}

check_template() {
    local unit=pruner@acme.service state
    state=$(state_dir_of "$unit")
    start_simulator template
    write_config template "$state"
    plan template
    install_account template acme.yaml acme.token
    check_daemon_unit "$unit" pruner@.service template
}

# The timer waits for its calendar time (03:30 UTC, up to 10 min later); its pass is
# pruner-once.service, started here as `systemctl start` does it for an operator.
check_timer() {
    local next_text next=0 expected
    sx systemctl enable --now pruner.timer >/dev/null 2>&1
    next_text=$(unit_property pruner.timer NextElapseUSecRealtime)
    [ -z "$next_text" ] || next=$(date -u -d "$next_text" +%s)
    expected=$(date -u -d 'today 03:30' +%s)
    [ "$expected" -gt "$(date +%s)" ] || expected=$((expected + 86400))
    if [ "$(unit_property pruner.timer ActiveState)" = active ] \
        && [ "$(unit_property pruner.timer Triggers)" = pruner-once.service ] \
        && [ "$(sx systemctl is-enabled pruner.timer)" = enabled ] \
        && [ "$next" -ge "$expected" ] && [ "$next" -le $((expected + 600)) ]; then
        ok "pruner.timer: enabled, $(unit_property pruner.timer SubState), next pass" \
            "$next_text, triggers pruner-once.service"
    else
        fail "pruner.timer: $(unit_property pruner.timer ActiveState), triggers" \
            "$(unit_property pruner.timer Triggers), next ${next_text:-none}" \
            "(want $(date -u -d "@$expected" '+%F %H:%M') to 10 min later)"
    fi
}

check_once() {
    local unit=pruner-once.service started=$EPOCHREALTIME
    start_simulator once
    write_config once /var/lib/pruner
    plan once
    install_account once config.yaml vpsbg-token
    sx systemctl start "$unit" || true
    if [ "$(unit_property "$unit" Result)" = success ] \
        && [ "$(unit_property "$unit" ExecMainStatus)" = 0 ]; then
        ok "$unit: one pass in $(since "$started") s, Result=success, exit status 0"
    else
        fail "$unit: Result=$(unit_property "$unit" Result), exit status" \
            "$(unit_property "$unit" ExecMainStatus):" \
            "$(sx journalctl -u "$unit" -o cat | tail -n 3)"
    fi
    check_state_private "$unit" once
    check_deletions once "$work/once/last-plan.json"
    check_journal_token once
}

# The config names the root-only token file that LoadCredential= reads: the service's user
# cannot read it, and pruner says so, naming the file (exit 2, no traceback).
check_unreadable_token() {
    local unit=pruner-once.service log
    write_config once /var/lib/pruner /etc/pruner/vpsbg-token
    install_account once config.yaml vpsbg-token
    sx systemctl start "$unit" >/dev/null 2>&1 || true
    log=$(sx journalctl -u "$unit" -o cat --no-pager \
        "_SYSTEMD_INVOCATION_ID=$(unit_property "$unit" InvocationID)")
    if [ "$(unit_property "$unit" ExecMainStatus)" = 2 ] && ! grep -q Traceback <<<"$log" \
        && grep -q 'api.token_file /etc/pruner/vpsbg-token cannot be read' <<<"$log"; then
        ok "$unit: an unreadable token file: exit 2, $(grep -o '[^"]*cannot be read[^"]*' \
            <<<"$log" | head -n 1 | cut -c1-100)…"
    else
        fail "$unit: an unreadable token file: exit $(unit_property "$unit" ExecMainStatus):" \
            "$(tail -n 3 <<<"$log")"
    fi
    sx systemctl reset-failed "$unit"
}

systemd_checks() {
    build_systemd_image
    boot_systemd
    check_service
    check_timer
    check_once
    check_unreadable_token
    check_template
}

main() {
    local started=$EPOCHREALTIME docker_started systemd_started
    install_missing
    work=$ENGINE_ROOT/work   # emptied first: a run that was killed may have left it
    rm -rf "$work"
    mkdir -p "$work"
    chmod 0755 "$ENGINE_ROOT" "$work"   # the image's user reads the config mounted from here
    export DOCKER_CONFIG=$work/docker-config   # not root's: no credential helpers, no registries
    trap cleanup EXIT
    start_dockerd
    base_image "$PYTHON_BASE" "$PYTHON_PACKAGES"
    base_image "$SYSTEMD_BASE" "$SYSTEMD_PACKAGES"
    build_image
    echo "== Docker"
    docker_started=$EPOCHREALTIME
    docker_checks
    echo "   Docker checks: $(since "$docker_started") s"
    echo "== systemd"
    systemd_started=$EPOCHREALTIME
    systemd_checks
    echo "   systemd checks: $(since "$systemd_started") s"
    local verdict=ok
    [ "$failed" = 0 ] || verdict=FAILED
    echo "== real engines: $(since "$started") s in all, $verdict"
    exit "$failed"
}

main "$@"
