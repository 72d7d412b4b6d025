use std::process::ExitCode;

use clap::Parser;
use forewarn::cli::Cli;
use forewarn::{Exit, exit_for};

fn main() -> ExitCode {
    forewarn::tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Usage errors are exit 3 (clap's own default would be 2, which means "watches failed").
            return ExitCode::from(if e.use_stderr() {
                Exit::InvalidInput as u8
            } else {
                Exit::Ok as u8
            });
        }
    };
    match forewarn::commands::run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            if err.is::<forewarn::config::ConfigErrors>() {
                eprintln!("{err}");
            } else {
                eprintln!("error: {err:#}");
            }
            ExitCode::from(exit_for(&err) as u8)
        }
    }
}
