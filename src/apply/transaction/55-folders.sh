# ==== part 55-folders.sh: folders and the user mid.sh runs as ===============
# Owns: `open_folders` (fds 5, 7 and 8, and what they must be), with
# `same_mount` (held folders on one file system and mount; 32-wrapper.sh
# asks it too), and `mid_sh_user` (who runs mid.sh, and through setpriv,
# runuser or su), with `mounts_near_home`. Only defines them:
# 60-parameters.sh calls them.
# Must not: run mid.sh or anything the MID's user can change; use a path
# below mid_home once its descriptor is open.
# ============================================================================

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
    same_mount 6 7 8 || return 1
    folders_reason=
    return 0
}

# same_mount FD...: the held folders FD... are on one file system and one
# mount: the same device and mount point (one `stat` for all, its lines
# compared whole: a mount point may hold a blank), and the same mount id
# (mnt_id in /proc/self/fdinfo/FD). `stat %m` finds a mount point by
# walking up while the device stays the same, so it names the same one for
# two bind mounts of one file system, across which a rename fails (EXDEV)
# and mv copies instead. A kernel that gives no mount id (before 3.15)
# gives none for any: the device and mount point decide alone.
same_mount() {
    same_mount_paths=
    for same_mount_fd in "$@"; do
        same_mount_paths="$same_mount_paths /proc/self/fd/$same_mount_fd/."
    done
    # shellcheck disable=SC2086 # the descriptors' paths hold no blank
    same_mount_where=$(stat -c '%d %m' -- $same_mount_paths 2>/dev/null) || return 1
    same_mount_line=${same_mount_where%%"$newline"*}
    one_mount "$1"
    same_mount_id=$mount_of
    same_mount_expected=$same_mount_line
    shift
    for same_mount_fd in "$@"; do
        same_mount_expected="$same_mount_expected$newline$same_mount_line"
        one_mount "$same_mount_fd"
        [ "$mount_of" = "$same_mount_id" ] || return 1
    done
    [ "$same_mount_where" = "$same_mount_expected" ]
}
one_mount() {
    mount_of=''
    { while read -r mount_key mount_value; do
        case $mount_key in mnt_id:) mount_of=$mount_value; return 0 ;; esac
    done <"/proc/self/fdinfo/$1"; } 2>/dev/null
    return 0
}

# mounts_near_home HOME/ [MOUNTINFO]: prints `clear` when MOUNTINFO
# (/proc/self/mountinfo) shows no mount below HOME (which ends with a
# slash) and no FUSE mount at or above it, else `inside`; nothing when it
# cannot be read. A FUSE mount can say anything of its owners, so the
# owners found there would not be the files' own; a mount at mid_home of
# another kind (a volume for /opt) is root's doing. mountinfo writes a
# blank, tab, newline and backslash in a mount point as \040, \011,
# \012 and \134: HOME is compared so written, taken from the
# environment (`awk -v` would read its backslashes as escapes). Fields
# are split on single blanks only (busybox awk's default also splits on
# \r, \v and \f, which the kernel does not escape); the type is the
# field after the ` - ` that ends the optional fields.
mounts_near_home() {
    midfleet_home=$1 awk 'BEGIN {
            FS = "[ ]"
            h = ENVIRON["midfleet_home"]
            for (i = 1; i <= length(h); i++) {
                c = substr(h, i, 1)
                if (c == " ") c = "\\040"
                else if (c == "\t") c = "\\011"
                else if (c == "\n") c = "\\012"
                else if (c == "\\") c = "\\134"
                home = home c
            }
        }
        {
            seen = 1
            point = $5
            if (point != "/") point = point "/"
            type = ""
            for (i = 7; i < NF; i++) if ($i == "-") { type = $(i + 1); break }
            if (index(point, home) == 1 && point != home) found = 1
            else if (index(home, point) == 1 && type ~ /^fuse/) found = 1
        }
        END { print (seen && !found) ? "clear" : "inside" }' <"${2:-/proc/self/mountinfo}" 2>/dev/null
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
            # No mount below mid_home, nor FUSE at or above it: the
            # owners found are the files' own. An answer other than
            # `clear` (awk missing or failing) refuses too.
            mid_sh_reason=mid-sh-mount-inside
            [ "$(mounts_near_home "$home_real/")" = clear ] || return 1
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

