# midfleet facts: one read of a MID host. POSIX sh; the assignments at the
# top of what is sent (MID_HOME, CONFIG, SERVICE_KIND, SERVICE_UNIT,
# STATUS_COMMAND, MAX_CONFIG) are written by midfleet, shell-quoted, and
# src/apply/transaction/22-swap-proof.sh comes between them and this.
# Reads only; writes only in its own temporary folder, which it removes. Runs nothing from the MID's folders
# (the MID's user may write them; this may run as root): the service state
# of a mid.sh MID comes from its pid file, not from `mid.sh status`.
#
# Processes. Each costs the host a fork and an exec, on every host of
# every plan, so the read runs few: the lines are printed by the shell
# itself; the files' bytes are kept in one private folder and sent
# together at the end (`send_blobs`: one `wc`, one `cat`); one `stat`
# reads the type, owner and mode of config.xml and wrapper-override.conf;
# the uid is the shell's own, from /proc/self/status. A mid.sh MID found
# by `mid_service: auto` on a host with GNU coreutils costs 13 (mktemp,
# readlink ×2 for the folders held, dd ×2, stat, dd and sed for
# APP_NAME, dd of the pid file, date, wc, cat, rm), one more with a
# .midfleet folder, and one more per file of midfleet's sent and per
# backup compared.
set -u
umask 077
LC_ALL=C
export LC_ALL
scratch_dir=$(mktemp -d "${TMPDIR:-/tmp}/midfleet-facts.XXXXXX") || exit 70
# Absolute: `send_blobs` works inside it, and the traps remove it from
# there too (a relative TMPDIR would leave it, with its copies, behind).
case $scratch_dir in /*) ;; *) scratch_dir=$PWD/$scratch_dir ;; esac
trap 'rm -rf -- "$scratch_dir"' EXIT
trap 'rm -rf -- "$scratch_dir"; exit 1' HUP INT TERM PIPE

printf 'midfleet-facts 1\n'

# This shell's effective uid, as `id -u` says it (Linux: the third field
# of /proc/self/status's Uid line, read by the shell itself).
uid=
if [ -r /proc/self/status ]; then
    while read -r key _ effective _; do
        if [ "$key" = Uid: ]; then
            uid=$effective
            break
        fi
    done </proc/self/status
fi
case $uid in '' | *[!0-9]*) uid=$(id -u) ;; esac
printf 'uid %s\n' "$uid"
proof_me=$uid

# read_file FILE [COUNT]: the file's bytes, read once, at most COUNT
# (default MAX_CONFIG + 1: a file the MID's user swaps for a huge one is
# cut there, and then refused for its size); with GNU dd never through a
# link and never waiting on a FIFO. Whether dd is GNU's is asked only
# when a read fails (GNU, busybox, BSD and toybox dd all refuse flags they
# do not know before they open the file), so a host with it runs one dd a
# file; the answer holds for the rest of this shell (a subshell that asks
# again keeps its answer to itself).
#
# Any other dd cannot refuse a link or a FIFO in the open itself, and a
# check before the open can be raced: the file's folder's owner swaps a
# link to a device in between (whose open alone can act: a watchdog
# arms) or to a file only root may read. So without GNU dd a file is
# read only in its folder, held, where no user but root and this login
# can swap it (`read_held`, in src/apply/transaction/22-swap-proof.sh,
# which is sent before this script); else the read fails with exit 3
# (any other failure is exit 1).
gnu_dd=
read_file() {
    if [ "$gnu_dd" != 0 ]; then
        dd if="$1" iflag=nofollow,nonblock,count_bytes count="${2:-$((MAX_CONFIG + 1))}" \
            bs=65536 status=none 2>/dev/null && return 0
        if [ -z "$gnu_dd" ]; then
            gnu_dd=0
            dd if=/dev/null iflag=nofollow,nonblock,count_bytes count=1 status=none 2>/dev/null &&
                gnu_dd=1
        fi
        [ "$gnu_dd" = 1 ] && return 1
    fi
    read_held "$1" 0 "${2:-$((MAX_CONFIG + 1))}" && return 0
    [ "$?" = 3 ] && return 3
    return 1
}

# blob NAME FILE: FILE's bytes (read_file) kept as $scratch_dir/NAME, to
# be sent at the end (`send_blobs`); `unkeep NAME` drops one. A file of
# midfleet's own (NAME other than config or wrapper) that is still there
# but cannot be read or kept (a full TMPDIR) ends the read: its lock or
# journal must not go unsaid. One gone since it was seen is not sent.
# A failed one leaves read_file's exit in blob_status (3: not read safely).
blobs=
blob() {
    read_file "$2" >"$scratch_dir/$1"
    blob_status=$?
    if [ "$blob_status" = 0 ]; then
        blobs="$blobs $1"
        return 0
    fi
    case $1 in
        config | wrapper) ;;
        *) if [ "$blob_status" = 3 ]; then
               echo "cannot read $MID_HOME/.midfleet/${2#"$midfleet_at"/} safely: this host's dd is not GNU's, and a user other than root and this login can change its folder (midfleet makes its folders 0700: chmod 700 that folder, or install GNU coreutils)" >&2
               exit 70
           elif [ -e "$2" ]; then
               echo "cannot read $2 or keep a copy in ${TMPDIR:-/tmp} (is it full?)" >&2
               exit 70
           fi ;;
    esac
    return 1
}
unkeep() {
    unkept=
    for kept in $blobs; do
        [ "$kept" = "$1" ] || unkept="$unkept $kept"
    done
    blobs=$unkept
}

# read_config NAME FILE: config.xml or wrapper-override.conf (NAME config
# or wrapper), whose folder the caller has checked: NAME-symlink TARGET,
# NAME-missing, NAME-not-a-file, NAME-unreadable (also when the read
# fails: a link or FIFO swapped in), NAME-unsafe (no GNU dd, and a user
# other than root and this login can swap it: `read_file`), or its bytes
# kept as blob NAME, and
# NAME listed in `stated` for `stat_files` (which stats it as $NAME_at:
# $config_at, $wrapper_at).
stated=
read_config() {
    if [ -L "$2" ]; then
        printf '%s-symlink %s\n' "$1" "$(readlink -- "$2" | tr '\n' ' ')"
    elif [ ! -e "$2" ]; then
        printf '%s-missing\n' "$1"
    elif [ ! -f "$2" ]; then
        printf '%s-not-a-file\n' "$1"
    elif [ ! -r "$2" ]; then
        printf '%s-unreadable\n' "$1"
    elif blob "$1" "$2"; then
        stated="$stated $1"
    elif [ "$blob_status" = 3 ]; then
        printf '%s-unsafe\n' "$1"
    else
        printf '%s-unreadable\n' "$1"
    fi
}

# stat_files: one stat of each file in `stated`, after its read: NAME_size
# and NAME_stat (owner, group, mode and their names), one line a file,
# the names last and unsplit (a name with a space, which the reply cannot
# carry, is refused by midfleet as before). A file gone since its read,
# or no longer a regular file (a FIFO swapped in reads as empty), is
# unreadable and its blob dropped; which one, a stat of each says.
stat_files() {
    [ -n "$stated" ] || return 0
    set --
    for name in $stated; do
        eval "set -- \"\$@\" \"\$${name}_at\""
    done
    files=$#
    # %f: the raw mode in hex, whose type bits say a regular file.
    stat_format='%f %s %u %g %a %U %G'
    stat_all=$(stat -c "$stat_format" -- "$@" 2>/dev/null) || stat_all=
    lines=0
    while IFS= read -r line; do
        [ -n "$line" ] && lines=$((lines + 1))
    done <<EOF
$stat_all
EOF
    if [ "$lines" != "$files" ]; then
        # One of them is gone: each alone, to know which.
        stat_all=
        for name in $stated; do
            eval "file=\$${name}_at"
            line=$(stat -c "$stat_format" -- "$file" 2>/dev/null) || line=
            stat_all="$stat_all${line:-gone}
"
        done
    fi
    names=$stated
    while read -r raw size rest; do
        [ -n "$raw" ] || continue
        name=${names# }
        name=${name%% *}
        names=${names#*"$name"}
        case $raw in
            gone | *[!0-9a-f]* | '') regular=0 ;;
            *) [ $((0x$raw & 0xF000)) = $((0x8000)) ] && regular=1 || regular=0 ;;
        esac
        if [ "$regular" = 1 ]; then
            eval "${name}_size=\$size ${name}_stat=\$rest"
        else
            # Gone, or swapped for another kind of file, since its read.
            unkeep "$name"
            printf '%s-unreadable\n' "$name"
        fi
    done <<EOF
$stat_all
EOF
}

# send_blobs: every kept blob, framed as `blob NAME LENGTH`, the bytes and
# a newline: their lengths from one `wc -c`, the frames' lines written as
# files beside them, and all of it in one `cat`. (The names are this
# script's own words, and the files its own, in its own folder: nothing
# there changes while it counts.) config or wrapper comes with its
# NAME-stat line, or, when longer than MAX_CONFIG (grown or swapped since
# it was first seen: its read stopped at MAX_CONFIG + 1), NAME-too-large
# and the larger of its two sizes instead.
send_blobs() {
    [ -n "$blobs" ] || return 0
    cd -- "$scratch_dir" || exit 70
    # shellcheck disable=SC2086
    set -- $(wc -c -- $blobs)
    # Every frame whole, or no reply: a frame that failed to be written
    # (a full TMPDIR) would let a file's bytes be read as reply lines.
    printf '\n' >.newline || exit 70
    parts=
    while [ "$#" -ge 2 ]; do
        case $2 in
            config | wrapper)
                if [ "$1" -gt "$MAX_CONFIG" ]; then
                    eval "size=\$${2}_size"
                    [ "$size" -gt "$1" ] || size=$1
                    printf '%s-too-large %s\n' "$2" "$size"
                    shift 2
                    continue
                fi
                eval "printf '%s-stat %s\n' \"\$2\" \"\$${2}_stat\"" ;;
            total) break ;;
        esac
        printf 'blob %s %s\n' "$2" "$1" >".frame-$2" || exit 70
        parts="$parts .frame-$2 $2 .newline"
        shift 2
    done
    # shellcheck disable=SC2086
    [ -z "$parts" ] || cat -- $parts || exit 70
}

# mid_home's real path (links above it are the operator's), once.
home_real=$(cd -P -- "$MID_HOME" 2>/dev/null && pwd -P)

# config.xml's folder, when inside mid_home, is reached through no link
# below mid_home (the transaction refuses such a folder too). The MID's
# user owns that folder's parent and may swap it for a link at any
# moment, so the shell enters it once, holds it as fd 7 (conf/ as fd 8),
# asks the kernel where the folder it holds is (`hold`: the descriptor's
# path; bash's $PWD after `cd -P` is built from the path's text, which a
# swap between its readlink and its chdir can make lie), and reads
# config.xml and the wrapper file as /proc/self/fd/N/NAME, never by their
# paths again. (Without /proc, by their paths, as before.)
config_dir=${CONFIG%/*}
linked_folder=
folder_real=
config_at=$CONFIG
config_folder_at=$config_dir
# hold N: holds the folder this shell is in as fd N (7, 8 or 9), and sets
# held_path to where the kernel says that folder is (the descriptor's
# path; empty without /proc). Returns 1, holding nothing, when the folder
# cannot be opened (a login that may enter it but not read it).
hold() {
    held_path=
    eval "{ command exec $1<.; } 2>/dev/null" || return 1
    if [ -d "/proc/self/fd/$1/." ]; then
        held_path=$(readlink "/proc/self/fd/$1" 2>/dev/null)
    fi
    return 0
}
if cd -P -- "${config_dir:-/}" 2>/dev/null; then
    folder_real=$PWD
    hold 7 && [ -n "$held_path" ] && folder_real=$held_path
    case $config_dir in
        "$MID_HOME"/*)
            [ "$folder_real" != "${home_real%/}/${config_dir#"$MID_HOME"/}" ] &&
                linked_folder=$folder_real ;;
    esac
    if [ -z "$linked_folder" ] && [ -n "$held_path" ]; then
        config_folder_at=/proc/self/fd/7
        config_at=/proc/self/fd/7/${CONFIG##*/}
    fi
    cd / || exit 70
fi
if [ -n "$linked_folder" ]; then
    printf 'config-symlink %s\n' "$(printf '%s/%s' "$linked_folder" "${CONFIG##*/}" | tr '\n' ' ')"
else
    read_config config "$config_at"
fi

# conf/wrapper-override.conf beside config.xml (the wrapper's properties:
# heap, JVM arguments), read with config.xml's care: conf/ reached through
# no link, the file a regular one and no link, at most MAX_CONFIG bytes.
wrapper_file=$config_dir/conf/wrapper-override.conf
wrapper_at=$wrapper_file
if [ -z "$linked_folder" ] && [ -d "$config_folder_at/conf" ] && [ ! -L "$config_folder_at/conf" ]; then
    config_real=${folder_real:-$(cd -P -- "$config_dir" 2>/dev/null && pwd -P)}
    wrapper_real=
    if cd -P -- "$config_folder_at/conf" 2>/dev/null; then
        wrapper_real=$PWD
        if [ "$config_folder_at" != "$config_dir" ] && hold 8 && [ -n "$held_path" ]; then
            wrapper_real=$held_path
            wrapper_at=/proc/self/fd/8/wrapper-override.conf
        fi
        cd / || exit 70
    fi
    if [ "$wrapper_real" != "${config_real%/}/conf" ]; then
        printf 'wrapper-symlink %s\n' "$(printf '%s' "$wrapper_real" | tr '\n' ' ')"
    else
        read_config wrapper "$wrapper_at"
    fi
elif [ -L "$config_folder_at/conf" ]; then
    printf 'wrapper-symlink %s\n' "$(readlink -- "$config_folder_at/conf" | tr '\n' ' ')"
else
    printf 'wrapper-missing\n'
fi
stat_files
# The folders' descriptors are not needed past this point: closed before
# anything else runs (a status command, systemctl).
exec 7<&- 8<&-
# The bytes the backups are compared with below: those read (a copy cut
# at MAX_CONFIG + 1 never equals a backup, as no copy at all would not).
config_copy= wrapper_copy=
for kept in $blobs; do
    case $kept in
        config) config_copy=$scratch_dir/config ;;
        wrapper) wrapper_copy=$scratch_dir/wrapper ;;
    esac
done

# The service: what the inventory says, else (mid_service: auto) the
# systemd unit named by APP_NAME in mid.shconf_override or mid.shconf when
# systemd knows it and the unit itself (root's) runs this MID's agent
# folder — APP_NAME is in a file the MID's user may write, and must never
# pick another service for root to stop — else agent/bin/mid.sh.
kind=$SERVICE_KIND
unit=$SERVICE_UNIT
shconf_unsafe=
agent=$MID_HOME/agent
if [ "$kind" = auto ]; then
    kind=mid.sh
    app=
    for shconf in "$agent/bin/mid.shconf_override" "$agent/bin/mid.shconf"; do
        if [ -z "$app" ] && [ -f "$shconf" ] && [ ! -L "$shconf" ]; then
            # The last APP_NAME line's value (sed keeps the last match
            # and prints it at the end; an empty line when there is none).
            # The bytes kept in the scratch folder by this shell, so that a
            # read refused (exit 3) is known here; then one sed.
            if read_file "$shconf" >"$scratch_dir/shconf"; then
                app=$(sed -n -e 's/^[[:space:]]*APP_NAME[[:space:]]*=[[:space:]]*["'\'']*\([A-Za-z0-9_.@:-]*\).*/\1/' \
                    -e 't match' -e '$!d' -e 'x' -e 'p' -e 'q' -e ':match' -e 'h' -e '$p' \
                    -- "$scratch_dir/shconf")
            elif [ "$?" = 3 ]; then
                shconf_unsafe=1
            fi
        fi
    done
    if [ -n "$app" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 \
        && systemctl cat -- "$app.service" >/dev/null 2>&1; then
        # The program the unit starts or stops (`path=`) is in this
        # agent/, or the unit works in it: not a unit that merely names
        # a file there (a log shipper's `tail -F …/agent0.log.0`), and
        # `/srv/opt/…` is not `/opt/…`.
        unit_text="
$(systemctl show -p ExecStart -p ExecStop -p WorkingDirectory -- "$app.service" 2>/dev/null)
"
        for agent_path in "$MID_HOME/agent" "${home_real:-$MID_HOME}/agent"; do
            case $unit_text in
                *"{ path=$agent_path/"* | *"WorkingDirectory=$agent_path
"* | *"WorkingDirectory=$agent_path/"*)
                    kind=systemd
                    unit=$app ;;
            esac
        done
    fi
fi
case $kind in
    systemd)
        if systemctl is-active --quiet -- "$unit" 2>/dev/null; then state=running
        elif systemctl cat -- "$unit" >/dev/null 2>&1; then state=stopped
        else state=missing; fi ;;
    mid.sh)
        # The wrapper's pid file (agent/work/APP_NAME.pid): running when
        # it names a live process that is not a zombie.
        if [ ! -f "$agent/bin/mid.sh" ]; then state=missing
        else
            state=stopped
            pid=
            pid_file=$agent/work/${app:-mid}.pid
            [ -f "$pid_file" ] || pid_file=$agent/work/mid.pid
            # Its first 32 bytes: the first run of digits in them.
            [ -f "$pid_file" ] && { pid=$(read_file "$pid_file" 32) || { [ "$?" = 3 ] && state=unsafe; }; }
            pid=${pid#"${pid%%[0-9]*}"}
            pid=${pid%%[!0-9]*}
            if [ "$state" != unsafe ] && [ -n "$pid" ] && [ "$pid" -gt 1 ] 2>/dev/null && [ -d "/proc/$pid" ]; then
                proc_state=
                read -r proc_stat </proc/"$pid"/stat 2>/dev/null && proc_state=${proc_stat##*) } && proc_state=${proc_state%% *}
                [ "$proc_state" != Z ] && state=running
            fi
        fi ;;
    commands)
        if sh -c "$STATUS_COMMAND" >/dev/null 2>&1 </dev/null; then state=running; else state=stopped; fi ;;
esac
# Without GNU dd, a pid file or mid.shconf the read could not safely
# read leaves the service unknown: `unsafe`, never a guess.
[ -n "$shconf_unsafe" ] && state=unsafe
printf 'service %s %s %s\n' "$kind" "${unit:--}" "$state"

# The kind of MID: markers in config.xml's folder (the agent folder) —
# names only: no link followed, nothing opened or run. `.container` and
# `.initialized` are the container recipe's; a non-empty
# work/upgrade_temp/ is the MID's upgrader at work.
if [ -z "$linked_folder" ] && [ -d "$config_dir" ] && [ ! -L "$config_dir" ]; then
    for marker in container initialized; do
        if [ -e "$config_dir/.$marker" ] || [ -L "$config_dir/.$marker" ]; then
            printf 'marker %s\n' "$marker"
        fi
    done
    upgrade_temp=$config_dir/work/upgrade_temp
    if [ -d "$config_dir/work" ] && [ ! -L "$config_dir/work" ] && [ -d "$upgrade_temp" ] \
        && [ ! -L "$upgrade_temp" ] && [ -n "$(ls -A -- "$upgrade_temp" 2>/dev/null | head -c 1)" ]; then
        printf 'marker upgrade-temp\n'
    fi
fi

# midfleet's own state on the host: its record, the lock and journal of a
# run, and the backups (newest last), with the newest one's config.xml for
# `midfleet rollback`.
printf 'time %s\n' "$(date +%s)"
M="$MID_HOME/.midfleet"
# .midfleet is read only when it is this user's own folder where mid_home
# says (not a link the MID's user planted, not a folder of its own), and
# only through a descriptor of the folder that was checked: the MID's
# user owns mid_home and may swap the name for a folder of its own at any
# moment (its own lock, state.json or backups would then be read as
# midfleet's). So the shell enters it, holds it as fd 9, checks whose it
# is and where the kernel says the folder it holds is (`hold`), and every
# file is read as /proc/self/fd/9/NAME (each process through its own copy
# of the descriptor), never by the name again. Without /proc, by the
# name, as before, once the same checks held on $PWD.
trusted=0
midfleet_at=
if [ -d "$M" ] && [ ! -L "$M" ] && [ -O "$M" ] && cd -P -- "$M" 2>/dev/null; then
    if [ -O . ] && hold 9; then
        if [ -n "$held_path" ]; then
            [ "$held_path" = "${home_real%/}/.midfleet" ] && trusted=1 midfleet_at=/proc/self/fd/9
        elif [ "$PWD" = "${home_real%/}/.midfleet" ]; then
            trusted=1 midfleet_at=$M
        fi
    fi
    cd / || exit 70
fi
# Where a change writes: .midfleet (made in mid_home when missing) and
# config.xml's folder. `test -w` is access(2) in dash and bash: it also
# says no on a read-only file system, even to root (busybox answers from
# the mode bits; the transaction probes with a real file before it stops
# the MID, so such a host is still refused before anything changes).
if [ -d "$M" ]; then
    [ -w "$M" ] || printf 'not-writable midfleet-folder\n'
else
    [ -w "$MID_HOME" ] || printf 'not-writable midfleet-folder\n'
fi
[ -w "${config_dir:-/}" ] || printf 'not-writable config-folder\n'
if [ "$trusted" = 1 ]; then
    M=$midfleet_at
else
    M=/nonexistent/midfleet-untrusted
fi
[ -f "$M/state.json" ] && blob state "$M/state.json"
[ -f "$M/config.after" ] && blob after "$M/config.after"
[ -f "$M/lock" ] && blob lock "$M/lock"
[ -f "$M/journal" ] && blob journal "$M/journal"
# Test failpoints left on the host (transaction.sh `failpoint`): every run
# would pause there.
for failpoint in backup write rename start; do
    [ -f "$M/failpoints/$failpoint" ] && printf 'failpoint %s\n' "$failpoint"
done
if [ -d "$M/backups" ]; then
    # `rollback` restores the newest backup that differs from config.xml,
    # or whose wrapper-override.conf differs from the current one
    # (a run that rolled back leaves a backup equal to the current files):
    # compared newest first, and only until one differs. (Names are run
    # ids; another name can never be restored, and is neither listed nor
    # compared.)
    chosen=
    newest_first=
    for backup in "$M/backups"/*; do
        [ -f "$backup/config.xml" ] || continue
        case ${backup##*/} in
            *[!A-Za-z0-9._-]* | .*) ;;
            *)
                printf 'backup %s\n' "${backup##*/}"
                newest_first="${backup##*/} $newest_first" ;;
        esac
    done
    for backup in $newest_first; do
        if [ -z "$config_copy" ] || ! cmp -s -- "$M/backups/$backup/config.xml" "$config_copy"; then
            chosen=$backup
            break
        fi
        if [ -f "$M/backups/$backup/wrapper-override.conf" ] &&
            { [ -z "$wrapper_copy" ] || ! cmp -s -- "$M/backups/$backup/wrapper-override.conf" "$wrapper_copy"; }; then
            chosen=$backup
            break
        fi
    done
    if [ -n "$chosen" ]; then
        printf 'backup-chosen %s\n' "$chosen"
        blob backup-config "$M/backups/$chosen/config.xml"
        [ -f "$M/backups/$chosen/wrapper-override.conf" ] &&
            blob backup-wrapper "$M/backups/$chosen/wrapper-override.conf"
    fi
fi
send_blobs
printf 'end\n'
