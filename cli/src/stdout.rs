//! Standard output for results. A reader that goes away (`concur-cli job 7 | head -3`) ends the
//! command quietly with exit 0, as for any Unix tool, instead of a panic.

use std::fmt;
use std::io::Write;

/// Writes `text` and a newline to standard output.
pub(crate) fn write_line(text: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    handle(writeln!(out, "{text}"));
}

/// Writes `text` as it is to standard output.
pub(crate) fn write(text: &str) {
    let mut out = std::io::stdout().lock();
    handle(out.write_all(text.as_bytes()));
}

/// Flushes standard output.
pub(crate) fn flush() {
    handle(std::io::stdout().lock().flush());
}

fn handle(result: std::io::Result<()>) {
    if let Err(e) = result {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            // Whoever read our output has what they wanted; local workers die with us
            // (PR_SET_PDEATHSIG).
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(2);
    }
}

/// `println!` for results: see the module docs.
macro_rules! outln {
    () => {
        $crate::stdout::write_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write_line(format_args!($($arg)*))
    };
}

pub(crate) use outln;
