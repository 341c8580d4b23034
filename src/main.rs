//! The `midfleet` binary: everything happens in [`midfleet::cli`].

fn main() -> std::process::ExitCode {
    midfleet::cli::run(std::env::args_os())
}
