# midfleet transaction: one apply, start, restart or rollback of one MID
# Server, run on the MID host itself. POSIX sh. midfleet stages RUN_DIR
# (`$MID_HOME/.midfleet/runs/$RUN`, 0700) and starts
#
#     setsid sh RUN_DIR/transaction.sh RUN_DIR   (stdin /dev/null, output RUN_DIR/out)
#
# so that a dropped connection or a killed midfleet never leaves a MID
# stopped or half-changed. RUN_DIR holds `params.sh` (shell-quoted
# assignments: RUN MID_HOME CONFIG ACTION SERVICE_KIND SERVICE_UNIT
# START_COMMAND STOP_COMMAND STATUS_COMMAND EXPECT_USER ROLLBACK_USER
# KEY_PAIR_RESET DEADLINE HEALTH_TIMEOUT STOP_TIMEOUT KEEP_BACKUPS
# RESTORE_FROM), `original.xml` (the bytes the plan was made from),
# `new.xml` (apply), `state.json` and `history.json`.
#
# Journal: one line per step, `EPOCH STEP [DETAIL]`, appended to
# `$MID_HOME/.midfleet/journal` while the lock is held (to RUN_DIR/journal
# when the lock is not ours: a live run owns .midfleet/journal), and each
# line also to RUN_DIR/progress, which the staging session follows. Never
# a secret. Steps and their details, in order:
#
#   lock | lock broken OLD_RUN | lock held OTHER_RUN (then: result locked)
#   failpoint NAME           (tests only, see `failpoint`; between steps)
#   check stale              (before the stop: config.xml already changed; the MID untouched)
#   stop | stop already-stopped | stop fail timeout|still-running|deadline
#   check ok | check stale | check stale running (ACTION=start) | check fail unreadable|not-writable
#   backup DIR | backup fail REASON
#   write | write fail disk|mktemp|owner|mode|selinux|acl
#   rename | rename fail
#   start | start fail timeout|exit-N|deadline
#   health ok | health fail could-not-authenticate|problem-while-decrypting|
#               unable-to-load-keystore|xml-parser-error|not-running|timeout|
#               deadline|interrupted
#   rollback REASON          (the failure that made it roll back)
#   restore DIR | restore fail REASON
#   state | state fail REASON
#   unlock
#   result applied|rolled_back|failed|stale|locked|error [REASON] [BACKUP_DIR]
#   end
#
# After `end` the journal moves to `.midfleet/backups/$RUN/journal` when
# this run made that backup, else to RUN_DIR/journal; RUN_DIR/result holds
# the result word; the staged new.xml and original.xml are removed; the
# lock is removed (only if it still names this run), so the next run
# never shares a journal file with this one. Only then is `end` appended
# to RUN_DIR/progress: when midfleet sees it, the host is settled.
#
# Signals. HUP, INT and TERM only raise a flag: the forward steps stop at
# the next safe point (before the rename: start the MID again, `error
# interrupted`; after it: roll back); a rollback in progress finishes.
# SIGKILL cannot be caught: nothing more runs. config.xml is then still
# whole (every write is temp file + rename), the MID may be stopped, the
# journal ends without `end` and the lock stays until its deadline; the
# next midfleet run reads that journal (facts) and breaks the lock once its
# deadline has passed (`lock broken RUN`), keeping the dead run's journal as
# `.midfleet/runs/RUN/journal`.
#
# Timing. Every wait ends at DEADLINE (the lease in the lock). The forward
# health wait also leaves room for a rollback (STOP_TIMEOUT + HEALTH_TIMEOUT
# + 5 s), and a run whose lease cannot hold its worst case is refused before
# anything is touched (`result error lease-too-short`). Only the stop and
# start commands of a recovery (putting the old state back) get at least
# 5 s even at the deadline: a stopped MID is worse than a late one. Every
# command runs apart from this script and is killed, with its process
# group, at its time (see `bounded`: GNU timeout, else a session of its own
# and a watchdog).
#
# No value from config.xml, new.xml or original.xml ever reaches the argv
# or environment of a process: files are handed to commands by name (dd,
# cat, cmp, mv), never by content. Which names, and why never a name in a
# folder the MID's user can write but for one rename: see "files" below.

umask 077
LC_ALL=C
export LC_ALL
mid_sh_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
PATH=$mid_sh_path${PATH:+:$PATH}
export PATH

RUN_DIR=${1:-}
if [ -z "$RUN_DIR" ]; then
    echo 'usage: transaction.sh RUN_DIR' >&2
    exit 64
fi
if ! cd -- "$RUN_DIR" 2>/dev/null; then
    echo "transaction.sh: $RUN_DIR: no such folder" >&2
    exit 66
fi
# Folder handles. The run folder's path runs through mid_home, a folder
# the MID's user may own and so rename entries in: after this `cd` the
# path is never used again. The run folder is this shell's working
# directory and fd 6, and every path below is /proc/self/fd/N/NAME: each
# process resolves it through its own copy of the descriptor, so a folder
# renamed or swapped for a symlink later changes nothing (Linux's /proc).
# Which folders the descriptors hold is checked once the parameters are
# read (`open_folders`). Commands run as another user get none of them.
exec 6<.
RUN_SHOWN=$(pwd -P)
RUN_DIR=/proc/self/fd/6
if [ ! -d "$RUN_DIR/." ]; then
    echo "transaction.sh: /proc/self/fd is not available: midfleet needs Linux's /proc on the MID host" >&2
    exit 69
fi
exec </dev/null >>"$RUN_DIR/out" 2>&1 || exit 73

interrupted=0
signals=0
trap 'interrupted=1; signals=$((signals + 1))' HUP INT TERM

# --- state of this run ------------------------------------------------------
journal_file=$RUN_DIR/journal   # until the lock is ours
lock_held=0
concluded=0
was_running=0
stopped_by_us=0      # the MID is down because of this run
changed=0            # config.xml (or the keystore) differs from before
config_id=           # dev:inode of the config.xml read_config last read
backup_dir=
config_tmp=
marker=$RUN_DIR/.timed-out
scratch_agent=$RUN_DIR/.agent-log
scratch_wrapper=$RUN_DIR/.wrapper-log
start_mark=$RUN_DIR/.start-mark
newline='
'

# clock: sets `now` to the host's clock in seconds. Without a process
# where the shell can read /proc/uptime: `date` once, then the uptime
# since (every wait below looks at the clock, on a host that may be
# starting a JVM); `date` each time elsewhere.
clock_start=$(date +%s)
clock_uptime=
if [ -r /proc/uptime ]; then
    read -r clock_uptime _ </proc/uptime 2>/dev/null
    clock_uptime=${clock_uptime%%.*}
fi
case $clock_uptime in '' | *[!0-9]*) clock_uptime= ;; esac
clock() {
    if [ -n "$clock_uptime" ] && read -r clock_now _ </proc/uptime 2>/dev/null; then
        now=$((clock_start + ${clock_now%%.*} - clock_uptime))
    else
        now=$(date +%s)
    fi
}

# journal STEP [DETAIL...]: one line, never a secret; also appended to
# RUN_DIR/progress, which the staging session follows.
journal() {
    clock
    journal_line="$now $*"
    printf '%s\n' "$journal_line" >>"$journal_file" 2>/dev/null
    printf '%s\n' "$journal_line" >>"$RUN_DIR/progress" 2>/dev/null
    return 0
}

# The health wait looks every 0.1 s for its first 2 s (a quick start is
# seen at once), then every 0.5 s: a real MID takes 30–120 s to come up,
# and a host running a JVM start should not also run ten processes a
# tenth of a second for midfleet. (`sleep 0.0`: does sleep take
# fractions? — without waiting.)
if sleep 0.0 2>/dev/null; then
    tick=0.1
    slow_tick=0.5
    fast_ticks=20
    ticks_per_check=5    # a status check every 0.5 s, the first 0.5 s after the start
else
    tick=1
    slow_tick=1
    fast_ticks=0
    ticks_per_check=1
fi
have_setsid=0
bounded_close=0
command -v setsid >/dev/null 2>&1 && have_setsid=1
# GNU timeout bounds a command in one process (see `bounded`). The test
# suite runs the transaction once more with this probe failing, for the
# other way.
have_timeout=0
case $(timeout --version 2>/dev/null) in *'GNU coreutils'*) have_timeout=1 ;; esac

# bounded SECONDS COMMAND [ARG...]: runs COMMAND (stdin /dev/null) apart
# from this script (a process group or session of its own) and returns its
# exit status; at SECONDS it and its group get TERM, 2 s later KILL, and
# the status is 124. No polling. With GNU timeout (`have_timeout`), that is
# `timeout`: one process. Elsewhere COMMAND runs in its own session and a
# watchdog process (in its own session too) does the killing and is killed
# itself when COMMAND ends first; every kill names the pid as well as the
# group: on a busy host a child may not have called setsid(2) yet.
bounded() {
    bounded_limit=$1
    shift
    [ "$bounded_limit" -ge 1 ] 2>/dev/null || bounded_limit=1
    if [ "$have_timeout" = 1 ]; then
        clock
        bounded_began=$now
        if [ "$bounded_close" = 1 ]; then
            timeout -k 2 "$bounded_limit" "$@" </dev/null 5<&- 6<&- 7<&- 8<&- &
        else
            timeout -k 2 "$bounded_limit" "$@" </dev/null &
        fi
        bounded_pid=$!
        bounded_wait
        # 124: TERM ended it in time; 137: it took the KILL too.
        case $bounded_status in
            124) return 124 ;;
            137)
                clock
                [ $((now - bounded_began)) -ge "$bounded_limit" ] && return 124 ;;
        esac
        return "$bounded_status"
    fi
    [ ! -e "$marker" ] || rm -f -- "$marker"
    if [ "$have_setsid" = 1 ] && [ "$bounded_close" = 1 ]; then
        setsid "$@" </dev/null 5<&- 6<&- 7<&- 8<&- &
        bounded_pid=$!
        bounded_group=-$bounded_pid
    elif [ "$have_setsid" = 1 ]; then
        setsid "$@" </dev/null &
        bounded_pid=$!
        bounded_group=-$bounded_pid
    elif [ "$bounded_close" = 1 ]; then
        "$@" </dev/null 5<&- 6<&- 7<&- 8<&- &
        bounded_pid=$!
        bounded_group=$bounded_pid
    else
        "$@" </dev/null &
        bounded_pid=$!
        bounded_group=$bounded_pid
    fi
    # shellcheck disable=SC2016 # the watchdog's own arguments
    set -- sh -c 'sleep "$1" || exit 0; : >"$4"; kill -TERM "$2" "$3" 2>/dev/null
        sleep 2; kill -KILL "$2" "$3" 2>/dev/null' midfleet-watchdog \
        "$bounded_limit" "$bounded_pid" "$bounded_group" "$marker"
    if [ "$have_setsid" = 1 ]; then
        setsid "$@" </dev/null >/dev/null 2>&1 &
    else
        "$@" </dev/null >/dev/null 2>&1 &
    fi
    bounded_watchdog=$!
    bounded_wait
    # KILL, by pid first (it may not lead its group yet), then the group
    # (its sleep): a TERM the watchdog inherited as ignored would not end it.
    kill -KILL "$bounded_watchdog" 2>/dev/null
    [ "$have_setsid" = 1 ] && kill -KILL "-$bounded_watchdog" 2>/dev/null
    wait "$bounded_watchdog" 2>/dev/null
    if [ -e "$marker" ]; then
        rm -f "$marker"
        return 124
    fi
    return "$bounded_status"
}

# bounded_wait: waits for bounded_pid and sets bounded_status. A trapped
# signal makes `wait` return early (> 128, nothing reaped): wait again.
# Only then: a pid, once reaped, may already be another process's.
bounded_wait() {
    while :; do
        bounded_signals=$signals
        wait "$bounded_pid"
        bounded_status=$?
        if [ "$signals" = "$bounded_signals" ] || [ "$bounded_status" -le 128 ] ||
            ! kill -0 "$bounded_pid" 2>/dev/null; then
            break
        fi
    done
}

# limit SECONDS [FLOOR]: sets limit_value to SECONDS, cut at the deadline,
# but at least FLOOR.
limit() {
    limit_value=$1
    clock
    limit_left=$((DEADLINE - now))
    [ "$limit_left" -lt "$limit_value" ] && limit_value=$limit_left
    [ "$limit_value" -lt "${2:-0}" ] && limit_value=$2
    return 0
}

# service start|stop|status SECONDS
service() {
    case $SERVICE_KIND in
        systemd)
            if [ "$1" = status ]; then
                bounded "$2" systemctl is-active --quiet -- "$SERVICE_UNIT"
            else
                bounded "$2" systemctl "$1" -- "$SERVICE_UNIT"
            fi ;;
        mid.sh)
            # As mid_sh_user says, without midfleet's folder descriptors,
            # with the user's own HOME, USER and LOGNAME, and the usual
            # umask (not this script's 077: the MID's files keep the
            # modes its own start gives them).
            bounded_close=1
            umask 022
            if [ -z "$mid_sh_as" ]; then
                bounded "$2" "$mid_sh" "$1"
            elif [ "$mid_sh_prefix" = su ]; then
                # shellcheck disable=SC2016 # su's shell expands them
                bounded "$2" su -s /bin/sh -c 'exec "$0" "$1"' "$mid_sh_name" "$mid_sh" "$1" \
                    >/dev/null 2>&1
            else
                # A clean environment, and no output into root's folder:
                # the MID it starts lives on with what it inherits.
                # shellcheck disable=SC2086 # the prefix is words midfleet made
                bounded "$2" $mid_sh_prefix env -i PATH="$mid_sh_path" HOME="$mid_sh_home" \
                    USER="${mid_sh_name:-$mid_sh_as}" LOGNAME="${mid_sh_name:-$mid_sh_as}" SHELL=/bin/sh \
                    ${LANG:+LANG="$LANG"} "$mid_sh" "$1" >/dev/null 2>&1
            fi
            service_status=$?
            bounded_close=0
            umask 077
            return "$service_status" ;;
        commands)
            case $1 in
                start) service_command=$START_COMMAND ;;
                stop) service_command=$STOP_COMMAND ;;
                *) service_command=$STATUS_COMMAND ;;
            esac
            bounded "$2" sh -c "$service_command" ;;
    esac
}

running() {
    service status 30 >/dev/null 2>&1
}

# stop_mid FLOOR [RUNNING]: stops a running MID within STOP_TIMEOUT (and
# the deadline), then confirms with status. RUNNING: 1 or 0 when the
# caller has just asked the service (no second status check). Journals
# `stop …`.
stop_mid() {
    case ${2:-} in
        1) stop_found=1 ;;
        0) stop_found=0 ;;
        *) if running; then stop_found=1; else stop_found=0; fi ;;
    esac
    if [ "$stop_found" = 0 ]; then
        journal stop already-stopped
        return 0
    fi
    limit "$STOP_TIMEOUT" "${1:-0}"
    stop_limit=$limit_value
    if [ "$stop_limit" -lt 1 ]; then
        stop_failure=deadline
        journal stop fail deadline
        return 1
    fi
    clock
    stop_began=$now
    service stop "$stop_limit"
    stop_status=$?
    stopped_by_us=1
    while :; do
        if ! running; then
            journal stop
            return 0
        fi
        if [ "$stop_status" = 124 ]; then
            stop_failure=timeout
            journal stop fail timeout
            return 1
        fi
        clock
        if [ $((now - stop_began)) -ge "$stop_limit" ]; then
            stop_failure=still-running
            journal stop fail still-running
            return 1
        fi
        sleep "$tick"
    done
}

# start_mid SECONDS: runs the start command. Journals `start …`.
start_mid() {
    if [ "$1" -lt 1 ]; then
        journal start fail deadline
        return 1
    fi
    service start "$1"
    start_status=$?
    case $start_status in
        0) journal start; stopped_by_us=0; return 0 ;;
        124) journal start fail timeout ;;
        *) journal start fail "exit-$start_status" ;;
    esac
    return 1
}

# recover_start: after a failure that changed nothing, start the MID again
# when this run found it running and it is not.
recover_start() {
    if [ "$was_running" = 1 ] && ! running; then
        limit "$HEALTH_TIMEOUT" 5
        start_mid "$limit_value"
    fi
    stopped_by_us=0
}

# --- health -------------------------------------------------------------------

# log_ids: sets agent_id, agent_rotated_id, wrapper_id and
# wrapper_rotated_id to "INODE SIZE" of agent0.log.0, agent0.log.1,
# wrapper.log and wrapper.log.1 ("- 0" for a file that is not there), with
# one `stat` for the four; logs_now to all four. Only regular files
# count: a link or a FIFO in their place is "not there".
log_ids() {
    agent_id='- 0' agent_rotated_id='- 0' wrapper_id='- 0' wrapper_rotated_id='- 0'
    # shellcheck disable=SC2046
    set -- $(cd -- "$AGENT/logs" 2>/dev/null &&
        stat -c '%n %i %s %A' -- agent0.log.0 agent0.log.1 wrapper.log wrapper.log.1 2>/dev/null)
    while [ "$#" -ge 4 ]; do
        case $4 in
            -*)
                case $1 in
                    agent0.log.0) agent_id="$2 $3" ;;
                    agent0.log.1) agent_rotated_id="$2 $3" ;;
                    wrapper.log) wrapper_id="$2 $3" ;;
                    wrapper.log.1) wrapper_rotated_id="$2 $3" ;;
                esac ;;
        esac
        shift 4
    done
    logs_now="$agent_id $agent_rotated_id $wrapper_id $wrapper_rotated_id"
}

# mark_logs: remembers where the two logs end, before a start.
mark_logs() {
    log_ids
    # shellcheck disable=SC2086
    set -- $agent_id $wrapper_id
    agent_inode=$1 agent_size=$2 wrapper_inode=$3 wrapper_size=$4
    : >"$start_mark"
}

# new_text FILE ROTATED INODE SIZE "FILE_INODE FILE_SIZE" "ROTATED_INODE
# ROTATED_SIZE": what FILE gained since (INODE, SIZE), given both files'
# ids now (log_ids). Rotated (another inode) or truncated (smaller): all
# of FILE, and before it the rest of ROTATED past SIZE when ROTATED is the
# old file renamed or was written since the start.
new_text() {
    new_file=$1 new_rotated=$2 new_inode=$3 new_size=$4
    # shellcheck disable=SC2086
    set -- $5 $6
    if [ "$1" != - ] && [ "$1" = "$new_inode" ] && [ "$2" -ge "$new_size" ]; then
        log_from "$new_file" "$new_size"
        return
    fi
    if [ "$new_inode" != - ] && [ "$3" != - ] && [ -f "$new_rotated" ]; then
        if [ "$3" = "$new_inode" ] ||
            [ -n "$(find "$new_rotated" -prune -newer "$start_mark" 2>/dev/null)" ]; then
            log_from "$new_rotated" "$new_size"
        fi
    fi
    [ "$1" != - ] && log_from "$new_file" 0
}

# log_from FILE OFFSET: FILE's bytes from OFFSET on, at most log_cap of
# them. The logs are in the MID user's folder: with GNU dd, never through
# a link (O_NOFOLLOW) and never waiting on a FIFO (O_NONBLOCK); elsewhere
# a regular file, checked just before. The cap: a MID logs its login
# within its first kilobytes after a start, and the MID's user can grow a
# log by any size in an instant (a sparse file) — root copies no more
# than this into its run folder, however large the log.
log_cap=1048576
have_gnu_dd=0
dd if=/dev/null iflag=nofollow,nonblock,skip_bytes,count_bytes skip=0 count=1 status=none 2>/dev/null &&
    have_gnu_dd=1
log_from() {
    if [ "$have_gnu_dd" = 1 ]; then
        dd if="$1" iflag=nofollow,nonblock,skip_bytes,count_bytes skip="$2" count="$log_cap" \
            bs=65536 status=none 2>/dev/null
    elif [ -f "$1" ] && [ ! -L "$1" ]; then
        tail -c +"$(($2 + 1))" -- "$1" | head -c "$log_cap"
    fi
}

# Health reads only lines in the shapes the MID itself writes, from the
# text its logs gained since the start (`new_text`):
#   agent0.log.0: `MM/dd/yy HH:mm:ss (mmm) THREAD MESSAGE`, THREAD the
#   MID's own startup loggers (MIDServer, StartupSequencer), and MESSAGE
#   one of the MID's login lines whole, optionally after `SEVERE *** ERROR
#   *** `;
#   wrapper.log: `LEVEL | jvm N | yyyy/MM/dd HH:mm:ss | MESSAGE`, the
#   JVM's own output, for the failures a JVM that dies at start leaves
#   only there.
# A line about another system ("Could not authenticate (bad key)" from a
# probe) or from another logger decides nothing. Success counts only from
# the agent log. Anyone who can write the MID's logs — the MID's user —
# can still write such lines: with an `instance:` section the MID's
# ecc_agent record, Up as the new user, is the proof (midfleet waits for
# it after `health ok`); docs/reliability.md says what the log proof is.
agent_line='^[0-9]{2}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} \([0-9]{3}\) (MIDServer|StartupSequencer) (SEVERE )?(\*\*\* ERROR \*\*\* )?'
wrapper_line='^(INFO|ERROR|STATUS|WARN|FATAL|DEBUG) *\| jvm [0-9]+ *\| [0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})? \| (SEVERE )?(\*\*\* ERROR \*\*\* )?'
failure_messages="(Could not authenticate user '.*' on the ServiceNow instance\\.|Unable to unsecure parameter [^ ]+: Problem while decrypting.*|Unable to load keystore.*|XML parser error.*)"
agent_messages="(MID Server started|Successfully connected to instance: .*|Setting basic authentication with user .*|$failure_messages)"

# seen_lines: the lines health decides on, one per line, as `agent:MESSAGE`
# or `wrapper:MESSAGE`, from both new texts (one sed each).
seen_lines() {
    sed -n -E "s#${agent_line}${agent_messages}\$#agent:\\4#p" -- "$scratch_agent" 2>/dev/null
    sed -n -E "s#${wrapper_line}${failure_messages}\$#wrapper:\\5#p" -- "$scratch_wrapper" 2>/dev/null
}

# failure_of SEEN: sets health_reason to the first failure in SEEN
# (seen_lines) as a word, or to nothing. No subshell: this runs each tick.
failure_of() {
    case $1 in
        *':Could not authenticate user '*) health_reason=could-not-authenticate ;;
        *':Unable to unsecure parameter '*) health_reason=problem-while-decrypting ;;
        *':Unable to load keystore'*) health_reason=unable-to-load-keystore ;;
        *':XML parser error'*) health_reason=xml-parser-error ;;
        *) health_reason= ;;
    esac
}

# started SEEN: the agent log says the MID is up.
started() {
    case "$newline$1$newline" in
        *"${newline}agent:MID Server started$newline"* | *"${newline}agent:Successfully connected to instance: "*) return 0 ;;
    esac
    return 1
}

# logged_in USER SEEN: the agent log says the MID uses USER (the whole
# name: `svc` is not `svc_mid`).
logged_in() {
    [ -z "$1" ] && return 0
    case "$newline$2$newline" in
        *"${newline}agent:Setting basic authentication with user $1$newline"*) return 0 ;;
    esac
    return 1
}

# health USER END FORWARD: waits until END (epoch) for the MID started after
# mark_logs to log in as USER. FORWARD=1: an interrupt ends the wait.
# Sets health_reason; journals `health …`. Each tick looks at the logs'
# ids (one `stat`); only when they changed does it read what is new and
# decide again from the text.
health() {
    health_user=$1 health_end=$2 health_forward=$3
    health_ticks=0 health_down=0 health_logs='' health_up=0 health_reason=''
    [ "$health_end" -gt "$DEADLINE" ] && health_end=$DEADLINE
    while :; do
        log_ids
        if [ "$logs_now" != "$health_logs" ]; then
            health_logs=$logs_now
            new_text "$AGENT/logs/agent0.log.0" "$AGENT/logs/agent0.log.1" \
                "$agent_inode" "$agent_size" "$agent_id" "$agent_rotated_id" \
                >"$scratch_agent" 2>/dev/null
            new_text "$AGENT/logs/wrapper.log" "$AGENT/logs/wrapper.log.1" \
                "$wrapper_inode" "$wrapper_size" "$wrapper_id" "$wrapper_rotated_id" \
                >"$scratch_wrapper" 2>/dev/null
            health_seen=$(seen_lines)
            failure_of "$health_seen"
            [ -n "$health_reason" ] && break
            health_up=0
            if started "$health_seen" && logged_in "$health_user" "$health_seen"; then
                health_up=1
            fi
        fi
        if [ "$health_up" = 1 ] && running; then
            journal health ok
            return 0
        fi
        if [ "$health_ticks" -ge "$fast_ticks" ] ||
            [ $(((health_ticks + 1) % ticks_per_check)) -eq 0 ]; then
            if running; then
                health_down=0
            else
                health_down=$((health_down + 1))
                if [ "$health_down" -ge 2 ]; then
                    health_reason=not-running
                    break
                fi
            fi
        fi
        if [ "$health_forward" = 1 ] && [ "$interrupted" = 1 ]; then
            health_reason=interrupted
            break
        fi
        clock
        if [ "$now" -ge "$DEADLINE" ]; then
            health_reason=deadline
            break
        fi
        if [ "$now" -ge "$health_end" ]; then
            health_reason=timeout
            break
        fi
        if [ "$health_ticks" -lt "$fast_ticks" ]; then
            sleep "$tick"
        else
            sleep "$slow_tick"
        fi
        health_ticks=$((health_ticks + 1))
    done
    journal health fail "$health_reason"
    return 1
}

# start_and_check USER END FORWARD: start, then health. Sets health_reason.
# A recovery start (FORWARD=0) gets at least 5 s, even at the deadline.
start_and_check() {
    mark_logs
    start_end=$2
    [ "$start_end" -gt "$DEADLINE" ] && start_end=$DEADLINE
    clock
    start_limit=$((start_end - now))
    if [ "$3" = 0 ] && [ "$start_limit" -lt 5 ]; then
        start_limit=5
    fi
    if ! start_mid "$start_limit"; then
        health_reason=start
        return 1
    fi
    health "$1" "$2" "$3"
}

# --- files --------------------------------------------------------------------
#
# config.xml's folder and agent/ belong to the MID's user, who may swap any
# entry in them for a link, a FIFO or another file at any moment. So:
# nothing is created, copied into, chmod'ed or labelled by a path in them.
# A new file or folder is built in the run folder (root's, 0700, the same
# file system and mount: `open_folders`), given its owner, mode, SELinux
# context and ACL there, checked, synced, and then renamed into place: one
# rename(2), which replaces the entry itself and follows no link. A live
# file is read only through one descriptor checked to be that file
# (`read_config`); folders are copied with `cp -RP` (links as links).

# shown PATH: PATH as the operator knows it (the descriptor paths are this
# script's own).
shown() {
    case $1 in
        "$MIDFLEET"/*) printf '%s\n' "$MIDFLEET_SHOWN/${1#"$MIDFLEET"/}" ;;
        *) printf '%s\n' "$1" ;;
    esac
}

# read_config: config.xml's bytes into RUN_DIR/current.xml, its owner,
# group and mode into config_stat ("UID GID MODE") and its identity into
# config_id. The name must be a regular file with one link (not a link, a
# FIFO, a device or another file's hard link) before and after the read,
# the same file both times; with GNU dd the read itself opens it
# O_NOFOLLOW|O_NONBLOCK, so root never opens what a link or a FIFO put in
# its place leads to (a device's open alone can act: a watchdog arms).
# Past 4 MiB it stops reading (such a file is never the planned one). Sets
# read_reason and returns 1 when it cannot.
read_config() {
    rm -f -- "$RUN_DIR/current.xml"
    read_reason=config-not-a-regular-file
    # %z (change time): a rename of the file away and back changes it.
    read_before=$(stat -c '%d:%i %h %u %g %a %A %z' -- "$CONFIG" 2>/dev/null) || return 1
    # shellcheck disable=SC2086
    set -- $read_before
    case $6 in -*) ;; *) return 1 ;; esac
    read_reason=config-hard-linked
    [ "$2" = 1 ] || return 1
    read_reason=unreadable
    if [ "$have_gnu_dd" = 1 ]; then
        dd if="$CONFIG" of="$RUN_DIR/current.xml" iflag=nofollow,nonblock,count_bytes \
            count=4194305 bs=65536 status=none 2>/dev/null || return 1
    else
        head -c 4194305 -- "$CONFIG" >"$RUN_DIR/current.xml" 2>/dev/null || return 1
    fi
    read_reason=config-not-a-regular-file
    [ "$(stat -c '%d:%i %h %u %g %a %A %z' -- "$CONFIG" 2>/dev/null)" = "$read_before" ] || return 1
    config_stat="$3 $4 $5"
    config_id=$1
    read_reason=
    return 0
}

# label_config FILE: FILE (in the run folder) gets the live config.xml's
# SELinux context and ACL (one beyond the mode bits), read from its inode
# without opening it (getfilecon, getxattr: nothing a device's open could
# set off), and only while the name is still the file read_config read
# (config_id; none: nothing to copy). Sets prepare_reason.
label_config() {
    [ -n "$config_id" ] || return 0
    if command -v chcon >/dev/null 2>&1 && selinux_enabled &&
        ! chcon --reference="$CONFIG" -- "$1" 2>/dev/null; then
        prepare_reason=selinux
        return 1
    fi
    if command -v getfacl >/dev/null 2>&1 && command -v setfacl >/dev/null 2>&1 &&
        [ -n "$(getfacl --physical --absolute-names --skip-base -- "$CONFIG" 2>/dev/null)" ]; then
        if ! getfacl --physical --absolute-names -- "$CONFIG" >"$RUN_DIR/.acl" 2>/dev/null ||
            ! setfacl --set-file="$RUN_DIR/.acl" -- "$1"; then
            rm -f -- "$RUN_DIR/.acl"
            prepare_reason=acl
            return 1
        fi
        rm -f -- "$RUN_DIR/.acl"
    fi
    # shellcheck disable=SC2046
    set -- $(stat -c '%d:%i %h %A' -- "$CONFIG" 2>/dev/null)
    case "$1 $2 $3" in
        "$config_id 1 -"*) return 0 ;;
    esac
    prepare_reason=config-not-a-regular-file
    return 1
}

# prepare_config SOURCE "UID GID MODE": RUN_DIR/config.new with SOURCE's
# bytes, that owner, group and mode, and the live config.xml's context and
# ACL; checked byte for byte and synced. Sets config_tmp, or prepare_reason
# (and removes the file).
prepare_config() {
    config_tmp=$RUN_DIR/config.new
    rm -f -- "$config_tmp"
    if ! cat -- "$1" >"$config_tmp"; then
        prepare_failed disk
        return 1
    fi
    # shellcheck disable=SC2086
    set -- "$1" $2
    if [ "$#" != 4 ] || ! chown -- "$2:$3" "$config_tmp"; then
        prepare_failed owner
        return 1
    fi
    if ! chmod -- "$4" "$config_tmp"; then
        prepare_failed mode
        return 1
    fi
    if ! label_config "$config_tmp"; then
        prepare_failed "$prepare_reason"
        return 1
    fi
    # A full disk or a short write shows here, before anything changed.
    if ! cmp -s -- "$1" "$config_tmp"; then
        prepare_failed disk
        return 1
    fi
    sync -- "$config_tmp" 2>/dev/null || sync
    return 0
}

prepare_failed() {
    prepare_reason=$1
    rm -f -- "$config_tmp"
    config_tmp=
}

selinux_enabled() {
    if command -v selinuxenabled >/dev/null 2>&1; then
        selinuxenabled
    else
        [ -e /sys/fs/selinux/enforce ]
    fi
}

# commit_config: renames the prepared file over config.xml (-T: never
# into a folder someone put there).
commit_config() {
    if mv -f -T -- "$config_tmp" "$CONFIG"; then
        config_tmp=
        sync -- "$config_dir/." 2>/dev/null || sync
        return 0
    fi
    rm -f -- "$config_tmp"
    config_tmp=
    return 1
}

keystore_folders='security keystore'

# present NAME: an entry NAME is in agent/ (a dangling link too).
present() {
    [ -e "$AGENT/$1" ] || [ -L "$AGENT/$1" ]
}

# make_backup DIR WITH_KEYSTORE: config.xml (the bytes read_config read,
# with its owner, group and mode) and, when asked, the keystore folders
# (`folders` lists which were present, so that a restore also removes one
# the MID created since). On failure sets backup_reason and removes what
# it made.
make_backup() {
    if { [ ! -d "$MIDFLEET/backups" ] && ! mkdir -m 700 -- "$MIDFLEET/backups"; } ||
        ! mkdir -m 700 -- "$1"; then
        backup_reason='mkdir'
        return 1
    fi
    if ! read_config; then
        backup_reason=$read_reason
        rm -rf -- "$1"
        return 1
    fi
    # shellcheck disable=SC2086
    set -- "$1" "$2" $config_stat
    if ! cp -- "$RUN_DIR/current.xml" "$1/config.xml" ||
        ! cmp -s -- "$RUN_DIR/current.xml" "$1/config.xml" ||
        ! chown -- "$3:$4" "$1/config.xml" || ! chmod -- "$5" "$1/config.xml"; then
        backup_failed "$1"
        return 1
    fi
    if [ "$2" = 1 ]; then
        : >"$1/folders" || { backup_failed "$1"; return 1; }
        for folder in $keystore_folders; do
            if present "$folder"; then
                if ! copy_tree "$agent_real/$folder" "$1/$folder"; then
                    backup_failed "$1"
                    return 1
                fi
                echo "$folder present" >>"$1/folders"
            else
                echo "$folder absent" >>"$1/folders"
            fi
        done
    fi
    sync 2>/dev/null
    return 0
}

# copy_tree FROM TO: copies the MID's folder FROM (its real path) to TO,
# in midfleet's own folders, without following a link anywhere: every
# folder is entered by `cd` and must then be where its path says (`pwd
# -P`), so a folder swapped for a link is refused rather than walked into;
# files are read O_NOFOLLOW|O_NONBLOCK (GNU dd; elsewhere a regular file
# checked just before), must have one link and keep their size; links are copied as links; anything else (FIFOs,
# sockets, devices) is refused. Owner, group and mode kept.
copy_tree() (
    cd -- "$1" 2>/dev/null && [ "$(pwd -P)" = "$1" ] || exit 1
    mkdir -m 700 -- "$2" || exit 1
    for copy_entry in * .[!.]* ..?*; do
        [ -e "$copy_entry" ] || [ -L "$copy_entry" ] || continue
        # Within the forward part of the lease (the MID is stopped).
        clock
        [ "$now" -lt "$((DEADLINE - rollback_reserve))" ] || exit 1
        # shellcheck disable=SC2046
        set -- "$1" "$2" $(stat -c '%u %g %a %h %s %A' -- "$copy_entry") || exit 1
        [ "$#" = 8 ] || exit 1
        case $8 in
            l*)
                ln -s -- "$(readlink -- "$copy_entry")" "$2/$copy_entry" &&
                    chown -h -- "$3:$4" "$2/$copy_entry" || exit 1 ;;
            -*)
                [ "$6" = 1 ] || exit 1
                # The same file before and after the read (a rename away
                # and back changes its change time).
                copy_id=$(stat -c '%i %h %s %z' -- "$copy_entry") || exit 1
                if [ "$have_gnu_dd" = 1 ]; then
                    dd if="$copy_entry" of="$2/$copy_entry" iflag=nofollow,nonblock bs=65536 \
                        status=none 2>/dev/null || exit 1
                else
                    [ -f "$copy_entry" ] && [ ! -L "$copy_entry" ] &&
                        cat -- "$copy_entry" >"$2/$copy_entry" || exit 1
                fi
                [ "$(stat -c '%i %h %s %z' -- "$copy_entry")" = "$copy_id" ] || exit 1
                [ "$(stat -c %s -- "$2/$copy_entry")" = "$7" ] || exit 1
                chown -- "$3:$4" "$2/$copy_entry" && chmod -- "$5" "$2/$copy_entry" || exit 1 ;;
            d*)
                copy_tree "$1/$copy_entry" "$2/$copy_entry" || exit 1
                chown -- "$3:$4" "$2/$copy_entry" && chmod -- "$5" "$2/$copy_entry" || exit 1 ;;
            *) exit 1 ;;
        esac
    done
    # shellcheck disable=SC2046
    set -- "$1" "$2" $(stat -c '%u %g %a' -- .) || exit 1
    chown -- "$3:$4" "$2" && chmod -- "$5" "$2"
)

backup_failed() {
    backup_reason=disk
    rm -rf -- "$1"
}

# same_tree A B: the two trees hold the same entries and bytes; links are
# compared as links, never followed (GNU diff), else as far as cp -R got.
diff_no_dereference=0
diff --no-dereference /dev/null /dev/null >/dev/null 2>&1 && diff_no_dereference=1
same_tree() {
    if [ "$diff_no_dereference" = 1 ]; then
        diff -r --no-dereference -- "$1" "$2" >/dev/null 2>&1
    else
        return 0
    fi
}

# take_backup WITH_KEYSTORE: backs config.xml (and the keystore folders
# when WITH_KEYSTORE=1) up into backups/$RUN and journals `backup DIR`; on
# failure starts the MID again and concludes `error`, returning 1.
take_backup() {
    backup_dir=$MIDFLEET/backups/$RUN
    if ! make_backup "$backup_dir" "$1"; then
        journal backup fail "$backup_reason"
        backup_dir=
        recover_start
        conclude error "backup-$backup_reason"
        return 1
    fi
    journal backup "$(shown "$backup_dir")"
    prune_backups
}

# prune_backups: keeps the newest KEEP_BACKUPS backup folders (names sort
# by time), never this run's nor the one a rollback restores.
prune_backups() {
    prune_count=0
    for prune_folder in "$MIDFLEET/backups"/*/; do
        [ -d "$prune_folder" ] && prune_count=$((prune_count + 1))
    done
    prune_excess=$((prune_count - KEEP_BACKUPS))
    for prune_folder in "$MIDFLEET/backups"/*/; do
        [ "$prune_excess" -gt 0 ] || break
        [ -d "$prune_folder" ] || continue
        prune_folder=${prune_folder%/}
        case ${prune_folder##*/} in
            "$RUN" | "$RESTORE_FROM") continue ;;
        esac
        rm -rf -- "$prune_folder" && prune_excess=$((prune_excess - 1))
    done
}

# restore_from DIR: config.xml (built in the run folder, renamed into
# place) and the keystore folders DIR holds, byte for byte. Journals
# `restore …`.
restore_from() {
    if [ ! -f "$1/config.xml" ]; then
        journal restore fail no-config-in-backup
        return 1
    fi
    config_id=
    if ! read_config || ! cmp -s -- "$1/config.xml" "$RUN_DIR/current.xml"; then
        # (config.xml not the regular file it should be: no labels are
        # copied from it; the backup's owner and mode still are.)
        [ -n "$read_reason" ] && config_id=
        if ! restore_stat=$(stat -c '%u %g %a' -- "$1/config.xml") ||
            ! prepare_config "$1/config.xml" "$restore_stat"; then
            journal restore fail "${prepare_reason:-owner}"
            return 1
        fi
        if ! commit_config; then
            journal restore fail rename
            return 1
        fi
    fi
    if [ -f "$1/folders" ]; then
        while read -r restore_folder restore_presence; do
            case $restore_folder in security | keystore) ;; *) continue ;; esac
            if [ "$restore_presence" = present ]; then
                replace_folder "$1/$restore_folder" "$restore_folder" || {
                    journal restore fail "$restore_folder"
                    return 1
                }
            elif present "$restore_folder"; then
                remove_folder "$restore_folder" || {
                    journal restore fail "$restore_folder"
                    return 1
                }
            fi
        done <"$1/folders"
    fi
    sync 2>/dev/null
    journal restore "$(shown "$1")"
    return 0
}

# replace_folder SOURCE NAME: agent/NAME becomes a copy of SOURCE. The copy
# is made and checked in the run folder, the live folder is renamed into
# the run folder, the copy renamed into its place; then the old one is
# removed inside the run folder.
replace_folder() {
    replace_new=$RUN_DIR/$2.new
    replace_old=$RUN_DIR/$2.old
    rm -rf -- "$replace_new" "$replace_old"
    if ! cp -RPp -- "$1" "$replace_new" || ! same_tree "$1" "$replace_new"; then
        rm -rf -- "$replace_new"
        return 1
    fi
    if present "$2" && ! mv -f -T -- "$AGENT/$2" "$replace_old"; then
        rm -rf -- "$replace_new"
        return 1
    fi
    if ! mv -T -- "$replace_new" "$AGENT/$2"; then
        rm -rf -- "$replace_new"
        if [ -e "$replace_old" ] || [ -L "$replace_old" ]; then
            mv -T -- "$replace_old" "$AGENT/$2"
        fi
        return 1
    fi
    rm -rf -- "$replace_old"
    return 0
}

# remove_folder NAME: agent/NAME leaves agent/ by one rename into the run
# folder, and is removed there.
remove_folder() {
    rm -rf -- "$RUN_DIR/$1.old"
    mv -f -T -- "$AGENT/$1" "$RUN_DIR/$1.old" || return 1
    rm -rf -- "$RUN_DIR/$1.old"
}

# record_state: config.xml as the healthy MID left it, and state.json; both
# 0600, both temp + rename inside .midfleet. Journals `state …`.
record_state() {
    # When midfleet wrote plaintext the MID encrypts (EXPECT_REWRITE=1),
    # wait (up to 30 s) for the MID to rewrite config.xml: config.after
    # must hold its encrypted: values, never midfleet's plaintext. If it
    # does not rewrite in time, no config.after is kept (the next plan then
    # rewrites once instead of trusting a plaintext copy).
    if [ "${EXPECT_REWRITE:-0}" = 1 ] && [ -f "$RUN_DIR/new.xml" ]; then
        clock
        rewrite_end=$((now + 30))
        while ! read_config || cmp -s -- "$RUN_DIR/current.xml" "$RUN_DIR/new.xml"; do
            clock
            if [ "$now" -ge "$rewrite_end" ]; then
                rm -f -- "$MIDFLEET/config.after" "$RUN_DIR/current.xml"
                if [ -f "$RUN_DIR/state.json" ] && ! install_file "$RUN_DIR/state.json" "$MIDFLEET/state.json"; then
                    journal state fail state-json
                    return 1
                fi
                journal state no-rewrite
                return 0
            fi
            sleep "$tick"
        done
    elif ! read_config; then
        journal state fail config-after
        return 1
    fi
    if ! install_file "$RUN_DIR/current.xml" "$MIDFLEET/config.after"; then
        rm -f -- "$RUN_DIR/current.xml"
        journal state fail config-after
        return 1
    fi
    rm -f -- "$RUN_DIR/current.xml"
    if [ -f "$RUN_DIR/state.json" ] && ! install_file "$RUN_DIR/state.json" "$MIDFLEET/state.json"; then
        journal state fail state-json
        return 1
    fi
    journal state
    return 0
}

# install_file SOURCE TARGET: TARGET (0600) gets SOURCE's bytes atomically.
install_file() {
    install_tmp=$(mktemp "$MIDFLEET/.install.XXXXXX") || return 1
    if cat -- "$1" >"$install_tmp" && cmp -s -- "$1" "$install_tmp" &&
        mv -f -- "$install_tmp" "$2"; then
        return 0
    fi
    rm -f -- "$install_tmp"
    return 1
}

# --- lock -------------------------------------------------------------------------

# take_lock: `.midfleet/lock` holds "RUN DEADLINE", created by link(2)
# (atomic, and whole from its first instant). Returns 1 when another run
# holds it (result concluded).
take_lock() {
    printf '%s %s\n' "$RUN" "$DEADLINE" >"$RUN_DIR/lock" || {
        conclude error lock
        return 1
    }
    lock_attempts=0
    while [ "$lock_attempts" -lt 3 ]; do
        lock_attempts=$((lock_attempts + 1))
        if ln -- "$RUN_DIR/lock" "$LOCK" 2>/dev/null; then
            lock_taken
            journal lock
            return 0
        fi
        if [ ! -e "$LOCK" ]; then
            # No hard links here: an exclusive create (noclobber) instead.
            if (set -C; cat -- "$RUN_DIR/lock" >"$LOCK") 2>/dev/null; then
                lock_taken
                journal lock
                return 0
            fi
            [ -e "$LOCK" ] || { conclude error lock; return 1; }
        fi
        held_run='' held_deadline=''
        read -r held_run held_deadline <"$LOCK" 2>/dev/null
        case $held_deadline in '' | *[!0-9]*) held_deadline=0 ;; esac
        clock
        if [ "$now" -le "$held_deadline" ] || holder_alive "$held_run"; then
            journal lock held "$held_run"
            conclude locked "$held_run"
            return 1
        fi
        # Expired: take it away by rename, then make sure it was the lock
        # we read (another run may have broken it and taken it meanwhile).
        mv -f -- "$LOCK" "$RUN_DIR/lock.broken" 2>/dev/null || continue
        broken_run='' broken_deadline=''
        read -r broken_run broken_deadline <"$RUN_DIR/lock.broken" 2>/dev/null
        case $broken_deadline in '' | *[!0-9]*) broken_deadline=0 ;; esac
        if [ "$broken_run" != "$held_run" ] || [ "$broken_deadline" != "$held_deadline" ]; then
            ln -- "$RUN_DIR/lock.broken" "$LOCK" 2>/dev/null
            rm -f -- "$RUN_DIR/lock.broken"
            continue
        fi
        rm -f -- "$RUN_DIR/lock.broken"
        if ln -- "$RUN_DIR/lock" "$LOCK" 2>/dev/null; then
            lock_taken "$held_run"
            journal lock broken "$held_run"
            return 0
        fi
    done
    held_run=
    read -r held_run held_deadline <"$LOCK" 2>/dev/null
    journal lock held "$held_run"
    conclude locked "$held_run"
    return 1
}

# holder_alive RUN: the transaction of run RUN still runs (its pid, from
# its run folder, is alive in this boot and a transaction.sh): its lock is
# never broken, lease or not — two runs must never work on one MID.
holder_alive() {
    case $1 in '' | *[!A-Za-z0-9._-]* | .*) return 1 ;; esac
    [ "$1" != "$RUN" ] || return 1
    holder_pid=
    read -r holder_pid <"$MIDFLEET/runs/$1/pid" 2>/dev/null || return 1
    case $holder_pid in '' | *[!0-9]*) return 1 ;; esac
    holder_boot='' boot_now=''
    if read -r holder_boot <"$MIDFLEET/runs/$1/boot" 2>/dev/null &&
        read -r boot_now </proc/sys/kernel/random/boot_id 2>/dev/null &&
        [ "$holder_boot" != "$boot_now" ]; then
        return 1
    fi
    kill -0 "$holder_pid" 2>/dev/null || return 1
    case $(tr '\0' ' ' <"/proc/$holder_pid/cmdline" 2>/dev/null) in
        *transaction.sh*) return 0 ;;
    esac
    return 1
}

# lock_taken [OLD_RUN]: the journal is now .midfleet/journal. A journal
# left there belongs to a run that died without `end`: it is kept as that
# run's journal (or this run's previous-journal when its owner is unknown).
lock_taken() {
    lock_held=1
    if [ -e "$MIDFLEET/journal" ]; then
        leftover=$RUN_DIR/previous-journal
        if [ -n "${1:-}" ] && [ -d "$MIDFLEET/runs/$1" ] && [ ! -e "$MIDFLEET/runs/$1/journal" ]; then
            leftover=$MIDFLEET/runs/$1/journal
        fi
        mv -f -- "$MIDFLEET/journal" "$leftover" 2>/dev/null || rm -f -- "$MIDFLEET/journal"
    fi
    journal_file=$MIDFLEET/journal
}

release_lock() {
    released_run=''
    read -r released_run _ <"$LOCK" 2>/dev/null
    [ "$released_run" = "$RUN" ] && rm -f -- "$LOCK"
    lock_held=0
}

# --- the end ------------------------------------------------------------------------

# conclude RESULT [REASON...]: unlock, result, history, end; then move the
# journal, remove the staged files and release the lock.
conclude() {
    [ "$concluded" = 1 ] && return 0
    concluded=1
    result=$1
    [ "$lock_held" = 1 ] && journal unlock
    journal result "$@"
    printf '%s\n' "$result" >"$RUN_DIR/result.tmp" && mv -f -- "$RUN_DIR/result.tmp" "$RUN_DIR/result"
    if [ -f "$RUN_DIR/history.json" ] && [ -n "${MIDFLEET:-}" ] && [ -d "$MIDFLEET" ]; then
        history_head=
        IFS= read -r history_head <"$RUN_DIR/history.json"
        clock
        history_line="$history_head,\"result\":\"$result\",\"finished\":$now}"
        printf '%s\n' "$history_line" >>"$MIDFLEET/history.jsonl"
    fi
    # `end` goes to the journal now, but to progress (what the staging
    # session follows) only once everything below is done: midfleet
    # reports the host when it reads `end`, and a next run must find the
    # lock released and the staged files gone.
    clock
    end_line="$now end"
    printf '%s\n' "$end_line" >>"$journal_file" 2>/dev/null
    if [ "$lock_held" = 1 ]; then
        journal_target=$RUN_DIR/journal
        [ -n "$backup_dir" ] && [ -d "$backup_dir" ] && journal_target=$backup_dir/journal
        mv -f -- "$journal_file" "$journal_target"
        journal_file=$journal_target
    fi
    rm -f -- "$RUN_DIR/new.xml" "$RUN_DIR/original.xml" "$RUN_DIR/current.xml" \
        "$RUN_DIR/current.xml.stat" "$RUN_DIR/config.new" "$RUN_DIR/.acl" \
        "$scratch_agent" "$scratch_wrapper" "$start_mark" "$marker"
    rm -rf -- "$RUN_DIR/security.new" "$RUN_DIR/security.old" "$RUN_DIR/keystore.new" \
        "$RUN_DIR/keystore.old"
    [ "$lock_held" = 1 ] && release_lock
    printf '%s\n' "$end_line" >>"$RUN_DIR/progress" 2>/dev/null
    return 0
}

# The last resort, should the shell exit anywhere else (it should not).
on_exit() {
    [ "$concluded" = 1 ] && return
    if [ "$changed" = 1 ] && [ "$ACTION" = rollback ]; then
        put_back_current script-exit
    elif [ "$changed" = 1 ]; then
        roll_back script-exit
    else
        [ -n "$config_tmp" ] && rm -f -- "$config_tmp"
        [ "$stopped_by_us" = 1 ] && recover_start
        conclude error script-exit
    fi
}
trap on_exit EXIT

# --- folders and the user mid.sh runs as ----------------------------------------

# open_folders: opens fd 5 (.midfleet), 7 (config.xml's folder) and 8
# (agent/) and checks what they are. The run folder (fd 6) and .midfleet
# must be this user's own, 0700, and where mid_home says (a renamed or
# linked .midfleet is refused); agent/ and a config folder inside
# mid_home must be reached without a symlink below mid_home; the run
# folder must be on config.xml's and agent/'s file system and mount, so
# that every file is built in the run folder and renamed into place, never
# copied. Sets folders_reason and returns 1 when one does not hold.
open_folders() {
    folders_reason=mid-home-missing
    home_real=$(cd -P -- "$MID_HOME" 2>/dev/null && pwd -P) || return 1
    home_real=${home_real%/}
    folders_reason=run-folder-moved
    [ "$RUN_SHOWN" = "$home_real/.midfleet/runs/$RUN" ] || return 1
    exec 5<"$RUN_DIR/../.."
    folders_reason=midfleet-folder-moved
    [ "$(readlink "/proc/$$/fd/5")" = "$home_real/.midfleet" ] || return 1
    folders_me=$(id -u)
    folders_reason=midfleet-folder-owner
    [ "$(stat -c '%u %a' -- "$RUN_DIR/." /proc/self/fd/5/. 2>/dev/null | tr '\n' ' ')" = "$folders_me 700 $folders_me 700 " ] ||
        return 1
    folders_reason=agent-folder-missing
    cd -- "$MID_HOME/agent" 2>/dev/null || return 1
    agent_real=$(pwd -P)
    folders_reason=agent-folder-symlink
    [ "$agent_real" = "$home_real/agent" ] || return 1
    exec 8<.
    folders_reason=config-folder-missing
    cd -- "$config_path" 2>/dev/null || return 1
    config_real=$(pwd -P)
    case $config_path in
        "$MID_HOME"/*)
            folders_reason=config-folder-symlink
            [ "$config_real" = "$home_real/${config_path#"$MID_HOME"/}" ] || return 1 ;;
    esac
    exec 7<.
    cd -- "$RUN_DIR/." || return 1
    folders_reason=other-file-system
    folders_where=$(stat -c '%d %m' -- "$RUN_DIR/." /proc/self/fd/7/. /proc/self/fd/8/. 2>/dev/null | tr '\n' ' ')
    set -- $folders_where
    [ "$#" -ge 6 ] && [ "$1 $2" = "$3 $4" ] && [ "$1 $2" = "$5 $6" ] || return 1
    folders_reason=
    return 0
}

# mid_sh_user: who runs agent/bin/mid.sh (SERVICE_KIND=mid.sh). Whoever
# can change what it runs — mid.sh, what it sources (mid.shconf*), the
# wrapper and its configuration, a folder on the way — runs code as
# whoever runs it. So it runs as the user who owns mid_home or anything
# under agent/ when that is not root (one such user; two or more:
# `mid-sh-owners`), and as root only when root owns mid_home and all of
# agent/, nothing there but links is writable by group or others, and no
# folder from / down to mid_home is writable by anyone but root (sticky
# folders aside): then no one else can change a byte or a name on the way
# (`mid-sh-writable-by-others` otherwise). A find or stat that fails
# refuses too. The drop goes through setpriv, else runuser, else su;
# without one, nothing runs (`mid-sh-no-setpriv`). A login that is not
# root runs it only when it is that user (or root owns it all):
# `mid-sh-other-user` otherwise. Sets mid_sh_as (empty: this login runs
# it) and mid_sh_prefix, or mid_sh_reason and returns 1.
mid_sh_user() {
    mid_sh_as='' mid_sh_prefix='' mid_sh_reason=''
    [ "$SERVICE_KIND" = mid.sh ] || return 0
    mid_sh=$agent_real/bin/mid.sh
    if [ ! -f "$AGENT/bin/mid.sh" ] || [ -L "$AGENT/bin/mid.sh" ]; then
        mid_sh_reason=mid-sh-missing
        return 1
    fi
    mid_sh_reason=mid-sh-unreadable
    mid_sh_owners=$({ stat -c '%u' -- "$home_real/." &&
        find "$AGENT/." ! -user 0 -exec stat -c '%u' -- {} +; } 2>/dev/null) || return 1
    mid_sh_owners=$(printf '%s\n' "$mid_sh_owners" | sort -u | sed '/^0$/d; /^$/d')
    case $mid_sh_owners in
        '')
            # Root's alone: and nobody else may write on the way.
            mid_sh_open=$(find "$AGENT/." ! -type l -perm /022 -print -quit 2>/dev/null) || return 1
            mid_sh_reason=mid-sh-writable-by-others
            [ -z "$mid_sh_open" ] || return 1
            # No mount below mid_home (a FUSE mount can say anything of
            # its owners): the owners found are the files' own.
            mid_sh_reason=mid-sh-mount-inside
            ! awk -v home="$home_real/" 'index($5, home) == 1 { found = 1 } END { exit !found }' \
                /proc/self/mountinfo 2>/dev/null || return 1
            mid_sh_reason=mid-sh-writable-by-others
            mid_sh_dir=$home_real
            while :; do
                # shellcheck disable=SC2046
                set -- $(stat -c '%u %a' -- "$mid_sh_dir/." 2>/dev/null)
                [ "$#" = 2 ] && [ "$1" = 0 ] || return 1
                case $2 in
                    *[2367][0-7] | *[2367])
                        # Writable by others: only a sticky folder
                        # (they cannot rename root's entries in it).
                        [ -k "$mid_sh_dir/." ] && [ "$mid_sh_dir" != "$home_real" ] || return 1 ;;
                esac
                [ -z "$mid_sh_dir" ] && break
                mid_sh_dir=${mid_sh_dir%/*}
            done
            mid_sh_reason=
            return 0 ;;
        *[!0-9]*)
            mid_sh_reason=mid-sh-owners
            return 1 ;;
    esac
    mid_sh_uid=$mid_sh_owners
    mid_sh_reason=
    # Already that user (a login without become): nothing to drop. Another
    # login that is not root cannot switch, and running that user's
    # script as this one would hand this login to it.
    [ "$mid_sh_uid" = "$folders_me" ] && return 0
    if [ "$folders_me" != 0 ]; then
        mid_sh_reason=mid-sh-other-user
        return 1
    fi
    mid_sh_as=$mid_sh_uid
    mid_sh_name=$(getent passwd "$mid_sh_uid" 2>/dev/null | cut -d: -f1)
    mid_sh_home=$(getent passwd "$mid_sh_uid" 2>/dev/null | cut -d: -f6)
    mid_sh_primary=$(getent passwd "$mid_sh_uid" 2>/dev/null | cut -d: -f4)
    # The user's own groups only: without a passwd entry there is no group
    # of its own to give it (a file's group may be root's).
    if [ -z "$mid_sh_name" ] || [ -z "$mid_sh_primary" ]; then
        mid_sh_reason=mid-sh-user-unknown
        return 1
    fi
    mid_sh_gid=$mid_sh_primary
    [ -n "$mid_sh_home" ] || mid_sh_home=/
    if command -v setpriv >/dev/null 2>&1; then
        mid_sh_prefix="setpriv --reuid=$mid_sh_uid --regid=$mid_sh_gid --init-groups --"
    elif command -v runuser >/dev/null 2>&1; then
        mid_sh_prefix="runuser -u $mid_sh_name --"
    elif command -v su >/dev/null 2>&1; then
        mid_sh_prefix=su
    else
        mid_sh_reason=mid-sh-no-setpriv
        return 1
    fi
    case $mid_sh_name in *[!A-Za-z0-9._-]*) mid_sh_reason=mid-sh-user-name; return 1 ;; esac
    return 0
}

# --- parameters -----------------------------------------------------------------

fail_early() {
    conclude error "$1"
    exit 1
}

[ -r "$RUN_DIR/params.sh" ] || fail_early params-missing
sh -n "$RUN_DIR/params.sh" 2>/dev/null || fail_early params-syntax
# shellcheck disable=SC1091
. "$RUN_DIR/params.sh"
RUN=${RUN:-} MID_HOME=${MID_HOME:-} CONFIG=${CONFIG:-} ACTION=${ACTION:-}
SERVICE_KIND=${SERVICE_KIND:-} SERVICE_UNIT=${SERVICE_UNIT:-}
START_COMMAND=${START_COMMAND:-} STOP_COMMAND=${STOP_COMMAND:-} STATUS_COMMAND=${STATUS_COMMAND:-}
EXPECT_USER=${EXPECT_USER:-} ROLLBACK_USER=${ROLLBACK_USER:-} KEY_PAIR_RESET=${KEY_PAIR_RESET:-0}
DEADLINE=${DEADLINE:-} HEALTH_TIMEOUT=${HEALTH_TIMEOUT:-} STOP_TIMEOUT=${STOP_TIMEOUT:-}
KEEP_BACKUPS=${KEEP_BACKUPS:-5} RESTORE_FROM=${RESTORE_FROM:-}

case $RUN in '' | *[!A-Za-z0-9._-]* | .*) fail_early params-run ;; esac
for absolute in "$MID_HOME" "$CONFIG"; do
    case $absolute in /*) ;; *) fail_early params-path ;; esac
    case $absolute in *"$newline"*) fail_early params-path ;; esac
done
for number in "$DEADLINE" "$HEALTH_TIMEOUT" "$STOP_TIMEOUT" "$KEEP_BACKUPS"; do
    case $number in '' | *[!0-9]*) fail_early params-number ;; esac
done
[ "$KEEP_BACKUPS" -ge 1 ] || fail_early params-number
case $KEY_PAIR_RESET in 0 | 1) ;; *) fail_early params-key-pair-reset ;; esac
case $ACTION in apply | start | restart | rollback) ;; *) fail_early params-action ;; esac
case $SERVICE_KIND in
    systemd) [ -n "$SERVICE_UNIT" ] || fail_early params-service ;;
    mid.sh) ;;
    commands)
        if [ -z "$START_COMMAND" ] || [ -z "$STOP_COMMAND" ] || [ -z "$STATUS_COMMAND" ]; then
            fail_early params-service
        fi ;;
    *) fail_early params-service ;;
esac
MIDFLEET_SHOWN=$MID_HOME/.midfleet
config_name=${CONFIG##*/}
config_path=${CONFIG%/*}
[ -n "$config_path" ] || config_path=/
case $config_name in '' | . | ..) fail_early params-path ;; esac
open_folders || fail_early "$folders_reason"
MIDFLEET=/proc/self/fd/5
LOCK=$MIDFLEET/lock
AGENT=/proc/self/fd/8
config_dir=/proc/self/fd/7
CONFIG=$config_dir/$config_name
case $ACTION in
    apply)
        if [ ! -s "$RUN_DIR/new.xml" ] || [ ! -f "$RUN_DIR/original.xml" ]; then
            fail_early staged-files-missing
        fi ;;
    rollback)
        case $RESTORE_FROM in '' | *[!A-Za-z0-9._-]* | .*) fail_early no-backup ;; esac
        [ -f "$MIDFLEET/backups/$RESTORE_FROM/config.xml" ] || fail_early no-backup ;;
esac
case $ACTION in
    apply | rollback)
        # Refused before anything reads it (a FIFO would block a reader,
        # a link would lead it elsewhere); read_config checks again
        # through the descriptor it reads from.
        if [ ! -f "$CONFIG" ] || [ -L "$CONFIG" ]; then
            fail_early config-not-a-regular-file
        fi ;;
esac
mid_sh_user || fail_early "$mid_sh_reason"

# The lease must hold the worst case: the forward stop and health, and a
# rollback's stop and health after them.
rollback_reserve=$((STOP_TIMEOUT + HEALTH_TIMEOUT + 5))
case $ACTION in
    apply | rollback) lease_needed=$((STOP_TIMEOUT + HEALTH_TIMEOUT + rollback_reserve)) ;;
    restart) lease_needed=$((STOP_TIMEOUT + HEALTH_TIMEOUT)); rollback_reserve=0 ;;
    start) lease_needed=$HEALTH_TIMEOUT; rollback_reserve=0 ;;
esac
clock
[ $((DEADLINE - now)) -ge "$lease_needed" ] || fail_early lease-too-short

# --- the transaction ------------------------------------------------------------

# failpoint NAME: a test hook, as etcd's gofail and TiKV's fail-rs have.
# When `.midfleet/failpoints/NAME` exists — .midfleet is the runner's own
# 0700 folder, so only the runner or root can make one — the transaction
# journals `failpoint NAME` and pauses for the seconds the file holds (at
# most 120; an interrupt ends the pause). Without that file: nothing. Points:
# backup (the MID stopped, nothing written), write (the backup made, the
# temp file not yet written), rename (the temp file written and checked),
# start (config.xml replaced, the MID not started yet).
failpoint() {
    [ -f "$MIDFLEET/failpoints/$1" ] || return 0
    # Digits only, at most three, no leading zero (sh reads 08 as octal).
    failpoint_seconds=$(head -c 8 -- "$MIDFLEET/failpoints/$1" | tr -cd '0-9' | sed 's/^0*//' | cut -c1-3)
    [ -n "$failpoint_seconds" ] || failpoint_seconds=0
    [ "$failpoint_seconds" -le 120 ] || failpoint_seconds=120
    journal failpoint "$1"
    while [ "$failpoint_seconds" -gt 0 ] && [ "$interrupted" = 0 ]; do
        sleep 1
        failpoint_seconds=$((failpoint_seconds - 1))
    done
}

# check_plan: config.xml still holds the bytes the plan was made from.
# Journals `check …`; concludes on a mismatch. (The MID is stopped, or was
# found stopped, so the file is stable.)
check_plan() {
    if [ "$ACTION" = start ] && running; then
        journal check stale running
        conclude stale running
        return 1
    fi
    if [ -f "$RUN_DIR/original.xml" ]; then
        if ! read_config; then
            journal check fail "$read_reason"
            recover_start
            conclude error "$read_reason"
            return 1
        fi
        if ! cmp -s -- "$RUN_DIR/current.xml" "$RUN_DIR/original.xml"; then
            journal check stale
            recover_start
            conclude stale
            return 1
        fi
    fi
    journal check ok
    return 0
}

# stale_before_stop: config.xml already differs from the bytes the plan
# was made from, before the MID is touched: `check stale`, and the MID is
# left as it is. (check_plan still compares after the stop: the file may
# change until the MID is down.) Returns 0 when it concluded.
stale_before_stop() {
    [ -f "$RUN_DIR/original.xml" ] || return 1
    read_config || return 1
    ! cmp -s -- "$RUN_DIR/current.xml" "$RUN_DIR/original.xml" || return 1
    journal check stale
    conclude stale
    return 0
}

# interrupted_before_change: an interrupt before the first change ends the
# run with nothing changed.
interrupted_before_change() {
    [ "$interrupted" = 1 ] || return 1
    [ -n "$config_tmp" ] && rm -f -- "$config_tmp" && config_tmp=
    recover_start
    conclude error interrupted
    return 0
}

stop_or_conclude() {
    running && was_running=1
    if ! stop_mid 0 "$was_running"; then
        # Nothing changed: the MID runs on as it was, or is started again.
        recover_start
        conclude error "stop-$stop_failure"
        return 1
    fi
    return 0
}

# roll_back REASON: after a failure past the first change.
roll_back() {
    journal rollback "$1"
    stop_mid 5
    if ! restore_from "$backup_dir"; then
        clock
        start_and_check "$ROLLBACK_USER" $((now + HEALTH_TIMEOUT)) 0
        conclude failed restore "$(shown "$backup_dir")"
        return
    fi
    changed=0
    clock
    if start_and_check "$ROLLBACK_USER" $((now + HEALTH_TIMEOUT)) 0; then
        conclude rolled_back "$1"
    else
        conclude failed "rollback-$health_reason" "$(shown "$backup_dir")"
    fi
}

# forward_end: sets forward_end_value to when the forward health wait
# ends: HEALTH_TIMEOUT from now, leaving the rollback its reserve.
forward_end() {
    clock
    forward_end_value=$((now + HEALTH_TIMEOUT))
    forward_limit=$((DEADLINE - rollback_reserve))
    [ "$forward_end_value" -gt "$forward_limit" ] && forward_end_value=$forward_limit
    return 0
}

# writable_or_conclude: before the MID is stopped, a real file created
# (and removed) in the run folder — on config.xml's mount, so a read-only
# mount shows here — and config.xml's folder writable by this login: else
# the run ends here, with nothing changed. (`test -w` alone is not enough:
# busybox answers it from the mode bits, yes to root.)
writable_or_conclude() {
    if [ -w "$config_dir/." ] && probe=$(mktemp "$RUN_DIR/.probe.XXXXXX" 2>/dev/null); then
        rm -f -- "$probe"
        return 0
    fi
    journal check fail not-writable
    conclude error config-folder-not-writable
    return 1
}

# keystore_small_or_conclude WITH_KEYSTORE: before the MID is stopped,
# the keystore folders hold at most keystore_limit entries (a MID's hold a
# handful): the MID's user may fill them, and their backup must end well
# within the lease.
keystore_limit=1000
keystore_small_or_conclude() {
    [ "$1" = 1 ] || return 0
    keystore_count=$(find "$AGENT/security/." "$AGENT/keystore/." 2>/dev/null |
        head -n "$((keystore_limit + 1))" | wc -l)
    [ "$keystore_count" -le "$keystore_limit" ] && return 0
    journal check fail keystore-too-large
    conclude error keystore-too-large
    return 1
}

run_apply() {
    take_lock || return
    interrupted_before_change && return
    stale_before_stop && return
    writable_or_conclude || return
    keystore_small_or_conclude "$KEY_PAIR_RESET" || return
    stop_or_conclude || return
    check_plan || return
    interrupted_before_change && return
    failpoint backup
    take_backup "$KEY_PAIR_RESET" || return
    failpoint write
    if ! prepare_config "$RUN_DIR/new.xml" "$config_stat"; then
        journal write fail "$prepare_reason"
        recover_start
        conclude error "$prepare_reason"
        return
    fi
    journal write
    failpoint rename
    interrupted_before_change && return
    if ! commit_config; then
        journal rename fail
        recover_start
        conclude error rename
        return
    fi
    changed=1
    journal rename
    failpoint start
    forward_end
    if start_and_check "$EXPECT_USER" "$forward_end_value" 1; then
        changed=0
        if record_state; then
            conclude applied
        else
            conclude applied state-not-recorded
        fi
    else
        roll_back "$health_reason"
    fi
}

run_start() {
    take_lock || return
    interrupted_before_change && return
    check_plan || return
    forward_end
    if start_and_check "$EXPECT_USER" "$forward_end_value" 1; then
        if record_state; then conclude applied; else conclude applied state-not-recorded; fi
    else
        conclude failed "$health_reason"
    fi
}

run_restart() {
    take_lock || return
    interrupted_before_change && return
    stale_before_stop && return
    stop_or_conclude || return
    check_plan || return
    interrupted_before_change && return
    forward_end
    if start_and_check "$EXPECT_USER" "$forward_end_value" 1; then
        if record_state; then conclude applied; else conclude applied state-not-recorded; fi
    else
        conclude failed "$health_reason"
    fi
}

# ACTION=rollback: the current files are saved first, then the named backup
# is restored; when the MID does not come up on it, the saved files go back.
run_rollback() {
    take_lock || return
    interrupted_before_change && return
    stale_before_stop && return
    writable_or_conclude || return
    source_dir=$MIDFLEET/backups/$RESTORE_FROM
    with_keystore=$KEY_PAIR_RESET
    [ -f "$source_dir/folders" ] && with_keystore=1
    keystore_small_or_conclude "$with_keystore" || return
    stop_or_conclude || return
    check_plan || return
    interrupted_before_change && return
    take_backup "$with_keystore" || return
    changed=1
    if ! restore_from "$source_dir"; then
        put_back_current restore
        return
    fi
    forward_end
    if start_and_check "$ROLLBACK_USER" "$forward_end_value" 1; then
        changed=0
        if record_state; then conclude applied; else conclude applied state-not-recorded; fi
        return
    fi
    put_back_current "$health_reason"
}

# put_back_current REASON: ACTION=rollback failed; the files saved before
# it go back and the MID is started on them. Always `failed`.
put_back_current() {
    journal rollback "$1"
    stop_mid 5
    restore_from "$backup_dir" && changed=0
    limit "$HEALTH_TIMEOUT" 5
    start_mid "$limit_value"
    conclude failed "$1" "$(shown "$backup_dir")"
}

case $ACTION in
    apply) run_apply ;;
    start) run_start ;;
    restart) run_restart ;;
    rollback) run_rollback ;;
esac
[ "$concluded" = 1 ] || conclude error script-exit
trap - EXIT
[ "$result" = applied ]
