//! Standard output of the commands. A reader that stops early (`cqrs-bench run … | head -1`)
//! closes the pipe; that ends the output, not the command: the rest is dropped quietly and
//! the command exits with its own code. `println!` would panic there (exit 101 with a
//! backtrace), and resetting SIGPIPE would kill the command before it cleans up.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write failed: nothing more is written.
static ENDED: AtomicBool = AtomicBool::new(false);

/// Writes `args` to standard output and flushes; after a closed pipe (or any other failed
/// write) it writes nothing more.
pub fn write(args: fmt::Arguments) {
    if ENDED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        ENDED.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("warning: cannot write to standard output ({e}); the rest is not shown");
        }
    }
}

/// `println!` through [`write`].
macro_rules! outln {
    () => {
        $crate::cli::output::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` through [`write`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write(format_args!($($arg)*))
    };
}
