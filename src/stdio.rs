//! The command line's standard output and error: every line the CLI prints
//! goes through [`outln!`](crate::outln) or [`errln!`](crate::errln) (the
//! crate denies `println!`/`eprintln!`, which panic when a write fails).
//!
//! A closed pipe — `shipgate check secrets | head -1` once `head` has its
//! line — ends the process at once and quietly with status 141
//! ([`CLOSED_PIPE`]), 128 + SIGPIPE, the status a shell reports for a program
//! that a closed pipe killed, so `set -o pipefail` never sees a pass. Any
//! other write error (a full disk, `> /dev/full`) prints one line to stderr,
//! if it can, and exits with 1 ([`WRITE_FAILED`]): output that could not be
//! written is never a pass either.

use std::fmt;
use std::io::{self, Write};

/// Exit status when stdout or stderr is a pipe whose reader has gone.
pub const CLOSED_PIPE: u8 = 141;
/// Exit status when writing to stdout or stderr fails otherwise.
pub const WRITE_FAILED: u8 = 1;

#[derive(Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Writes one line to stdout; a failed write ends the process (see the module).
pub fn out_line(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let r = writeln!(out, "{args}").and_then(|()| out.flush());
    check(Stream::Stdout, r);
}

/// Writes one line to stderr; a failed write ends the process (see the module).
pub fn err_line(args: fmt::Arguments<'_>) {
    let r = writeln!(io::stderr().lock(), "{args}");
    check(Stream::Stderr, r);
}

/// Ends the process as the module describes if `result` is an error of a
/// write to `stream` (for writers the CLI does not own, such as clap's help).
pub fn check(stream: Stream, result: io::Result<()>) {
    if let Err(e) = result {
        std::process::exit(exit_status(stream, &e).into());
    }
}

/// The exit status for a failed write; prints the one-line error, if any.
fn exit_status(stream: Stream, e: &io::Error) -> u8 {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return CLOSED_PIPE;
    }
    if let Stream::Stdout = stream {
        // stderr may be broken too: then there is no one to tell.
        let _ = writeln!(io::stderr(), "shipgate: cannot write to stdout: {e}");
    }
    WRITE_FAILED
}

/// `println!` that ends the process quietly on a closed pipe instead of panicking.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::stdio::out_line(::std::format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::stdio::out_line(::std::format_args!($($arg)*))
    };
}

/// `eprintln!` that ends the process quietly on a closed pipe instead of panicking.
#[macro_export]
macro_rules! errln {
    () => {
        $crate::stdio::err_line(::std::format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::stdio::err_line(::std::format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_141_and_other_errors_are_1() {
        let pipe = io::Error::from(io::ErrorKind::BrokenPipe);
        assert_eq!(exit_status(Stream::Stdout, &pipe), 141);
        assert_eq!(exit_status(Stream::Stderr, &pipe), 141);
        let full = io::Error::from_raw_os_error(28); // ENOSPC
        assert_eq!(exit_status(Stream::Stderr, &full), 1);
    }
}
