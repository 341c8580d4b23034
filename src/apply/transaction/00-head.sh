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
# RESTORE_FROM WRAPPER), `original.xml` (the bytes the plan was made from),
# `new.xml` (apply; empty when only wrapper-override.conf changes), with
# WRAPPER=1 `wrapper-original.conf` and `wrapper-new.conf` (the same for
# conf/wrapper-override.conf, 32-wrapper.sh), `state.json` and
# `history.json`.
#
# Journal: one line per step, `EPOCH STEP [DETAIL]`, appended to
# `$MID_HOME/.midfleet/journal` while the lock is held (to RUN_DIR/journal
# when the lock is not ours: a live run owns .midfleet/journal), and each
# line also to RUN_DIR/progress, which the staging session follows. Never
# a secret. Steps and their details, in order:
#
#   lock | lock broken OLD_RUN | lock held OTHER_RUN (then: result locked)
#   failpoint NAME           (tests only, see `failpoint`; between steps)
#   check stale [wrapper]    (before the stop: config.xml, or wrapper-override.conf, already changed; the MID untouched)
#   stop | stop already-stopped | stop fail timeout|still-running|deadline
#   check ok | check stale [wrapper] | check stale running (ACTION=start) | check fail unreadable|not-writable|no-safe-read config|logs|conf|keystore
#   backup DIR | backup fail REASON
#   write | write fail [wrapper-]disk|mktemp|owner|mode|selinux|acl
#   rename | rename fail     (config.xml; none when only wrapper-override.conf changes)
#   rename wrapper | rename fail wrapper
#   start | start fail timeout|exit-N|deadline
#   health ok | health fail could-not-authenticate|problem-while-decrypting|
#               unable-to-load-keystore|xml-parser-error|jvm-heap|jvm-not-created|
#               jvm-exited|jvm-gave-up|not-running|timeout|deadline|interrupted
#   rollback REASON          (the failure that made it roll back)
#   restore DIR | restore fail REASON   (security|keystore[-not-put-back][-no-rename]: a keystore folder not moved; not-put-back: the live one left out; no-rename: no rename-only tool)
#   state | state fail REASON
#   unlock
#   result applied|rolled_back|failed|stale|locked|error [REASON] [BACKUP_DIR]
#                            (failed recover-HEALTH_REASON REASON: an error after
#                            which the MID this run stopped did not start again)
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
# folder the MID's user can write but for one rename: see "files" below
# (30-files.sh).
#
# Source. This one file is assembled at build time from parts, one concern
# a part, in src/apply/transaction/ of midfleet's source (stage.rs lists
# them in order); each opens with a `# ==== part NAME` header saying what
# it owns and must not do. The host runs the parts' bytes one after
# another, nothing added: edit the parts, never a staged copy.

# ==== part 00-head.sh: the prologue =========================================
# Owns: the contract above; umask 077, LC_ALL=C and PATH (mid_sh_path);
# the RUN_DIR argument, the run folder as fd 6 (RUN_DIR=/proc/self/fd/6)
# and this script's output into RUN_DIR/out; the signal flag (`interrupted`,
# `signals`) and the run's state variables every later part reads.
# Must not: call a function (none is defined yet), read params.sh, touch
# anything outside the run folder, or use the path it was given after the
# `cd`.
# ============================================================================

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
recover_failed=      # recover_start could not bring the MID back: why
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

