# ==== part 30-files.sh: config.xml ==========================================
# Owns: reading config.xml (`read_config`: one checked read by name
# through the folder's descriptor), building its replacement in the run
# folder (`prepare_config`, `label_config`: bytes, owner, mode, SELinux
# context, ACL, checked and synced) and the one rename into place
# (`commit_config`); `shown` (a path as the operator knows it).
# Must not: create, copy into, chmod or label anything by a path in a
# folder the MID's user owns; follow a link; hand a file's content to a
# command line or an environment.
# ============================================================================

# --- files --------------------------------------------------------------------
#
# config.xml's folder and agent/ belong to the MID's user, who may swap any
# entry in them for a link, a FIFO or another file at any moment. So:
# nothing is created, copied into, chmod'ed or labelled by a path in them.
# A new file or folder is built in the run folder (root's, 0700, the same
# file system and mount: `open_folders`), given its owner, mode, SELinux
# context and ACL there, checked, synced, and then renamed into place: one
# rename(2), which replaces the entry itself and follows no link. A live
# file is read only by a read that follows no link and waits on no FIFO,
# between two stats that must agree (`read_config`); the MID's folders are
# copied by `copy_tree` (each folder entered and checked, links as links).

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
        read_held "$CONFIG" 0 4194305 >"$RUN_DIR/current.xml" 2>/dev/null ||
            { [ "$?" = 3 ] && read_reason="no-safe-read config"; return 1; }
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

