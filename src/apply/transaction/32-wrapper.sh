# ==== part 32-wrapper.sh: conf/wrapper-override.conf ========================
# Owns: the wrapper's properties file beside config.xml, with config.xml's
# care (30-files.sh): its folder's handle (`open_wrapper_folder`: fd 9 on
# conf/, reached through no link, on the run folder's mount), one checked
# read by name through it (`read_wrapper`), its replacement built in the
# run folder (`prepare_wrapper`: bytes, owner, mode, SELinux context, ACL,
# checked and synced) and the one rename into place (`commit_wrapper`).
# Must not: create, copy into, chmod or label anything by a path in conf/
# (the MID's user owns it); follow a link; hand the file's content to a
# command line or an environment.
# ============================================================================

wrapper_name=wrapper-override.conf
wrapper_file=
wrapper_id=
wrapper_stat=
wrapper_tmp=

# open_wrapper_folder: fd 9 on config.xml's folder's conf/ (fd 7 must be
# open): not a link, where config.xml's real folder says, on the run
# folder's file system and mount (the new file is renamed into place).
# Sets wrapper_file, or folders_reason and returns 1.
open_wrapper_folder() {
    folders_reason=wrapper-folder-missing
    [ -d "$config_dir/conf" ] || return 1
    folders_reason=wrapper-folder-symlink
    [ ! -L "$config_dir/conf" ] || return 1
    cd -- "$config_dir/conf" 2>/dev/null || return 1
    if [ "$(pwd -P)" != "${config_real%/}/conf" ]; then
        cd -- "$RUN_DIR/."
        return 1
    fi
    exec 9<.
    cd -- "$RUN_DIR/." || return 1
    folders_reason=other-file-system
    same_mount 6 9 || return 1
    wrapper_file=/proc/self/fd/9/$wrapper_name
    folders_reason=
    return 0
}

# read_wrapper: the file's bytes into RUN_DIR/current-wrapper.conf, its
# owner, group and mode into wrapper_stat, its identity into wrapper_id;
# as read_config (one link, the same file before and after, never through
# a link or a FIFO, at most 4 MiB + 1). Sets read_reason and returns 1
# when it cannot.
read_wrapper() {
    rm -f -- "$RUN_DIR/current-wrapper.conf"
    read_reason=wrapper-not-a-regular-file
    read_before=$(stat -c '%d:%i %h %u %g %a %A %z' -- "$wrapper_file" 2>/dev/null) || return 1
    # shellcheck disable=SC2086
    set -- $read_before
    case $6 in -*) ;; *) return 1 ;; esac
    read_reason=wrapper-hard-linked
    [ "$2" = 1 ] || return 1
    read_reason=wrapper-unreadable
    if [ "$have_gnu_dd" = 1 ]; then
        dd if="$wrapper_file" of="$RUN_DIR/current-wrapper.conf" iflag=nofollow,nonblock,count_bytes \
            count=4194305 bs=65536 status=none 2>/dev/null || return 1
    else
        read_held "$wrapper_file" 0 4194305 >"$RUN_DIR/current-wrapper.conf" 2>/dev/null ||
            { [ "$?" = 3 ] && read_reason="no-safe-read conf"; return 1; }
    fi
    read_reason=wrapper-not-a-regular-file
    [ "$(stat -c '%d:%i %h %u %g %a %A %z' -- "$wrapper_file" 2>/dev/null)" = "$read_before" ] || return 1
    wrapper_stat="$3 $4 $5"
    wrapper_id=$1
    read_reason=
    return 0
}

# label_wrapper FILE: FILE gets the live wrapper file's SELinux context
# and ACL, read from its inode without opening it, while the name is still
# the file read_wrapper read (none read: nothing to copy).
label_wrapper() {
    [ -n "$wrapper_id" ] || return 0
    if command -v chcon >/dev/null 2>&1 && selinux_enabled &&
        ! chcon --reference="$wrapper_file" -- "$1" 2>/dev/null; then
        prepare_reason=selinux
        return 1
    fi
    if command -v getfacl >/dev/null 2>&1 && command -v setfacl >/dev/null 2>&1 &&
        [ -n "$(getfacl --physical --absolute-names --skip-base -- "$wrapper_file" 2>/dev/null)" ]; then
        if ! getfacl --physical --absolute-names -- "$wrapper_file" >"$RUN_DIR/.acl" 2>/dev/null ||
            ! setfacl --set-file="$RUN_DIR/.acl" -- "$1"; then
            rm -f -- "$RUN_DIR/.acl"
            prepare_reason=acl
            return 1
        fi
        rm -f -- "$RUN_DIR/.acl"
    fi
    # shellcheck disable=SC2046
    set -- $(stat -c '%d:%i %h %A' -- "$wrapper_file" 2>/dev/null)
    case "$1 $2 $3" in
        "$wrapper_id 1 -"*) return 0 ;;
    esac
    prepare_reason=wrapper-not-a-regular-file
    return 1
}

# prepare_wrapper SOURCE "UID GID MODE": RUN_DIR/wrapper.new with SOURCE's
# bytes, that owner, group and mode and the live file's labels; checked
# byte for byte and synced. Sets wrapper_tmp, or prepare_reason.
prepare_wrapper() {
    wrapper_tmp=$RUN_DIR/wrapper.new
    rm -f -- "$wrapper_tmp"
    prepare_reason=disk
    if cat -- "$1" >"$wrapper_tmp"; then
        # shellcheck disable=SC2086
        set -- "$1" $2
        prepare_reason=owner
        if [ "$#" = 4 ] && chown -- "$2:$3" "$wrapper_tmp"; then
            prepare_reason=mode
            if chmod -- "$4" "$wrapper_tmp"; then
                if label_wrapper "$wrapper_tmp"; then
                    prepare_reason=disk
                    if cmp -s -- "$1" "$wrapper_tmp"; then
                        sync -- "$wrapper_tmp" 2>/dev/null || sync
                        prepare_reason=
                        return 0
                    fi
                fi
            fi
        fi
    fi
    rm -f -- "$wrapper_tmp"
    wrapper_tmp=
    return 1
}

# commit_wrapper: renames the prepared file over wrapper-override.conf.
commit_wrapper() {
    if mv -f -T -- "$wrapper_tmp" "$wrapper_file"; then
        wrapper_tmp=
        sync -- /proc/self/fd/9/. 2>/dev/null || sync
        return 0
    fi
    rm -f -- "$wrapper_tmp"
    wrapper_tmp=
    return 1
}

# wrapper_as_planned: the live file holds the bytes the plan was made
# from (RUN_DIR/wrapper-original.conf). Sets read_reason on a failed read.
wrapper_as_planned() {
    read_wrapper || return 1
    cmp -s -- "$RUN_DIR/current-wrapper.conf" "$RUN_DIR/wrapper-original.conf"
}
