//! forewarn: an early-warning crawler for third-party changes.
//!
//! The data flows one way: watchlist ([`config`]) -> [`fetch`] -> [`extract`] -> [`compare`]
//! -> [`store`] -> [`report`]. [`pipeline`] runs a pass; [`commands`] are the CLI's
//! subcommands on top of it.

pub mod cli;
pub mod commands;
pub mod compare;
pub mod config;
pub mod contract;
pub mod event;
pub mod extract;
pub mod fetch;
pub mod learned;
pub mod notify;
pub mod paths;
pub mod pipeline;
pub mod report;
pub mod schedule;
pub mod store;

/// The process exit codes, documented in the README and `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The pass completed, changes found or not.
    Ok = 0,
    /// An internal error (database, I/O).
    Internal = 1,
    /// One or more watches failed; the others ran.
    WatchesFailed = 2,
    /// Invalid watchlist or arguments; nothing was fetched.
    InvalidInput = 3,
    /// With `--fail-on-change`: changes were found.
    ChangesFound = 4,
}

/// An error in what the user asked for (exit 3), as opposed to one while doing it (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an error returned by a command.
pub fn exit_for(err: &anyhow::Error) -> Exit {
    if err.downcast_ref::<config::ConfigErrors>().is_some()
        || err.downcast_ref::<UsageError>().is_some()
    {
        Exit::InvalidInput
    } else {
        Exit::Internal
    }
}
