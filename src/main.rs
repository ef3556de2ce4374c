//! The `cqrs-bench` command line: parses arguments and dispatches; the work is in the library
//! (`cqrs_bench::cli` holds the arguments and one handler per subcommand).
//!
//! Exit codes: 0 success · 1 a check failed (verify found mismatches) · 2 bad input or an
//! unusable database (usage, scenario file, URL, connection, a schema the tool does not own) ·
//! 3 the run itself failed (a database error mid-run) · 4 `compare --fail-on-regression` could
//! test no metric · 130 interrupted (SIGINT/SIGTERM).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use cqrs_bench::cli::{dispatch, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // By default one thread drives every worker: the work is waiting on the database, and
    // hopping between runtime threads costs more CPU (context switches) than it saves on 2
    // cores. `--threads N` gives the load N.
    let threads = cli.command.threads();
    let mut builder = if threads > 1 {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let result = runtime.block_on(dispatch(cli.command));
    // Give pools a moment to close cleanly without hanging on them.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.error);
            ExitCode::from(f.code)
        }
    }
}
