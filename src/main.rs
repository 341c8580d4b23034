//! The `midfleet` binary: everything happens in [`midfleet::cli`].

fn main() -> std::process::ExitCode {
    // Before anything reads a secret: no core dump, no same-user ptrace.
    if let Err(error) = midfleet::secret::protect_process() {
        eprintln!(
            "warning: cannot keep secrets out of core dumps (setrlimit RLIMIT_CORE / prctl PR_SET_DUMPABLE): {error}"
        );
    }
    midfleet::cli::run(std::env::args_os())
}
