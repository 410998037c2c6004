//! `concur-cli`: see the library crate for the commands.

fn main() -> std::process::ExitCode {
    concur_cli::main()
}
