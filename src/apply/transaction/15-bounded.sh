# ==== part 15-bounded.sh: waits and bounded commands ========================
# Owns: the ticks of every wait (tick, slow_tick, fast_ticks,
# ticks_per_check); the probes have_setsid and have_timeout (tests/
# transaction.rs replaces the `timeout --version` line to run without GNU
# timeout: keep its text); `bounded` (every command that may hang runs
# through it), `bounded_wait`, and `limit` (a time cut at DEADLINE).
# Must not: know what a MID, a service or a file is; return while the
# command, its group or its watchdog still runs.
# ============================================================================

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

