# ==== part 35-backup.sh: backup and restore =================================
# Owns: `.midfleet/backups/RUN` (config.xml with its owner and mode, and
# the keystore folders when asked): make_backup, take_backup, copy_tree,
# same_tree (probe diff_no_dereference), prune_backups; putting a backup
# back: restore_from, replace_folder, put_back_folder, remove_folder,
# rename_only (probe rename_tool); the journal steps `backup` and
# `restore`.
# Must not: walk a link or copy a FIFO or a device out of agent/; copy
# past the forward part of the lease (DEADLINE - rollback_reserve); prune
# this run's backup or the one being restored; change agent/ but by
# rename.
# ============================================================================

keystore_folders='security keystore'

# present NAME: an entry NAME is in agent/ (a dangling link too).
present() {
    [ -e "$AGENT/$1" ] || [ -L "$AGENT/$1" ]
}

# make_backup DIR WITH_KEYSTORE: config.xml (the bytes read_config read,
# with its owner, group and mode: check_plan's read once the MID stopped,
# the very bytes it compared with the plan; read now when there was none)
# and, when asked, the keystore folders
# (`folders` lists which were present, so that a restore also removes one
# the MID created since). On failure sets backup_reason and removes what
# it made.
make_backup() {
    if { [ ! -d "$MIDFLEET/backups" ] && ! mkdir -m 700 -- "$MIDFLEET/backups"; } ||
        ! mkdir -m 700 -- "$1"; then
        backup_reason='mkdir'
        return 1
    fi
    if [ ! -f "$RUN_DIR/current.xml" ] && ! read_config; then
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
    # conf/wrapper-override.conf beside it, with its owner and mode (the
    # bytes check_plan compared with the plan, or read now).
    if [ "$with_wrapper" = 1 ]; then
        if [ ! -f "$RUN_DIR/current-wrapper.conf" ] && ! read_wrapper; then
            backup_reason=$read_reason
            rm -rf -- "$1"
            return 1
        fi
        # shellcheck disable=SC2086
        set -- "$1" "$2" $wrapper_stat
        if ! cp -- "$RUN_DIR/current-wrapper.conf" "$1/$wrapper_name" ||
            ! cmp -s -- "$RUN_DIR/current-wrapper.conf" "$1/$wrapper_name" ||
            ! chown -- "$3:$4" "$1/$wrapper_name" || ! chmod -- "$5" "$1/$wrapper_name"; then
            backup_failed "$1"
            return 1
        fi
    fi
    if [ "$2" = 1 ]; then
        : >"$1/folders" || { backup_failed "$1"; return 1; }
        for folder in $keystore_folders; do
            if present "$folder"; then
                copy_tree "$agent_real/$folder" "$1/$folder" || {
                    copy_status=$?
                    backup_failed "$1"
                    # A folder another user could change, met without GNU
                    # dd (a subfolder swapped in since the check).
                    [ "$copy_status" = 3 ] && backup_reason="no-safe-read keystore"
                    return 1
                }
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
# checked just before, in this folder, which only root and this login may
# change: `read_held`), must have one link and keep their size; links are copied as links; anything else (FIFOs,
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
                    read_held "$copy_entry" >"$2/$copy_entry" || exit "$?"
                fi
                [ "$(stat -c '%i %h %s %z' -- "$copy_entry")" = "$copy_id" ] || exit 1
                [ "$(stat -c %s -- "$2/$copy_entry")" = "$7" ] || exit 1
                chown -- "$3:$4" "$2/$copy_entry" && chmod -- "$5" "$2/$copy_entry" || exit 1 ;;
            d*)
                copy_tree "$1/$copy_entry" "$2/$copy_entry" || exit "$?"
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
    # The wrapper file the backup holds goes back with config.xml.
    if [ -f "$1/$wrapper_name" ]; then
        if [ -z "$wrapper_file" ]; then
            journal restore fail wrapper-folder
            return 1
        fi
        wrapper_id=
        if ! read_wrapper || ! cmp -s -- "$1/$wrapper_name" "$RUN_DIR/current-wrapper.conf"; then
            [ -n "$read_reason" ] && wrapper_id=
            if ! restore_stat=$(stat -c '%u %g %a' -- "$1/$wrapper_name") ||
                ! prepare_wrapper "$1/$wrapper_name" "$restore_stat"; then
                journal restore fail "wrapper-${prepare_reason:-owner}"
                return 1
            fi
            if ! commit_wrapper; then
                journal restore fail wrapper-rename
                return 1
            fi
        fi
    fi
    if [ -f "$1/folders" ]; then
        while read -r restore_folder restore_presence; do
            case $restore_folder in security | keystore) ;; *) continue ;; esac
            if [ "$restore_presence" = present ]; then
                replace_folder "$1/$restore_folder" "$restore_folder" || {
                    # -not-put-back: agent/NAME was moved away and could
                    # not be renamed back (it is left out, never copied).
                    [ "$replace_lost" = 1 ] && restore_folder="$restore_folder-not-put-back"
                    journal restore fail "$restore_folder$(no_rename_tool)"
                    return 1
                }
            elif present "$restore_folder"; then
                remove_folder "$restore_folder" || {
                    journal restore fail "$restore_folder$(no_rename_tool)"
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
# removed inside the run folder. Folders move by rename_only. When a move
# fails, the live folder goes back where it was; when that fails too
# (replace_lost=1), agent/NAME is left without it rather than copied.
replace_folder() {
    replace_new=$RUN_DIR/$2.new
    replace_old=$RUN_DIR/$2.old
    replace_lost=0
    rm -rf -- "$replace_new" "$replace_old"
    if ! cp -RPp -- "$1" "$replace_new" || ! same_tree "$1" "$replace_new"; then
        rm -rf -- "$replace_new"
        return 1
    fi
    if present "$2" && ! rename_only "$AGENT/$2" "$replace_old"; then
        rm -rf -- "$replace_new"
        put_back_folder "$2"
        return 1
    fi
    if ! rename_only "$replace_new" "$AGENT/$2"; then
        rm -rf -- "$replace_new"
        put_back_folder "$2"
        return 1
    fi
    rm -rf -- "$replace_old"
    return 0
}

# put_back_folder NAME: the live folder, moved into the run folder, goes
# back to agent/NAME; replace_lost=1 when it was moved and cannot go back.
put_back_folder() {
    if [ -e "$replace_old" ] || [ -L "$replace_old" ]; then
        rename_only "$replace_old" "$AGENT/$1" || replace_lost=1
    fi
    return 0
}

# remove_folder NAME: agent/NAME leaves agent/ by one rename into the run
# folder, and is removed there.
remove_folder() {
    rm -rf -- "$RUN_DIR/$1.old"
    rename_only "$AGENT/$1" "$RUN_DIR/$1.old" || return 1
    rm -rf -- "$RUN_DIR/$1.old"
}

# rename_only FROM TO: one rename(2) of FROM to TO (TO not there), never a
# copy. mv copies when a rename fails with EXDEV, and that happens on one
# mount too: XFS and ext4 refuse a rename into a folder whose project id is
# inherited and differs from the entry's, which the folder's owner may set.
# A folder copied into agent/ is built by path, entry by entry, and the
# MID's user, who owns agent/, can swap the new folder for a link to
# anywhere before its entries are written (the attack review of stop 28:
# root wrote the backup's files, names and bytes the MID's user chose,
# into a root-only folder). So a folder moves by util-linux's `rename`
# (`rename.ul` on Debian), which only renames, or by `mv --no-copy`
# (coreutils 9.2 and later); a host with neither moves none
# (rename_tool=none). The tool is probed once, when a folder first moves.
rename_tool=
rename_only() {
    if [ -z "$rename_tool" ]; then
        rename_tool=none
        for rename_candidate in rename rename.ul; do
            case $("$rename_candidate" --version 2>/dev/null) in
                *util-linux*) rename_tool=$rename_candidate; break ;;
            esac
        done
        if [ "$rename_tool" = none ] && mv --no-copy --help >/dev/null 2>&1; then
            rename_tool=mv
        fi
    fi
    case $rename_tool in
        none) return 1 ;;
        mv) mv --no-copy -T -- "$1" "$2" || return 1 ;;
        # FROM, whole, is the text replaced in FROM's name: the new name is TO.
        *) "$rename_tool" -- "$1" "$2" "$1" || return 1 ;;
    esac
    # Whatever a tool's version says of its exit status: FROM is gone, TO is there.
    { [ ! -e "$1" ] && [ ! -L "$1" ]; } && { [ -e "$2" ] || [ -L "$2" ]; }
}

# no_rename_tool: `-no-rename` when rename_only found no tool (the journal's
# `restore fail keystore-no-rename`), else nothing.
no_rename_tool() {
    [ "$rename_tool" = none ] && printf '%s' -no-rename
    return 0
}

