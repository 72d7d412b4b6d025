//! forewarn: an early-warning crawler for third-party changes.
//!
//! The data flows one way: watchlist ([`config`]) -> [`fetch`] -> [`extract`] -> [`compare`]
//! -> [`store`] -> [`report`]. [`pipeline`] runs a pass; [`commands`] are the CLI's
//! subcommands on top of it.

pub mod cli;
pub mod codec;
pub mod commands;
pub mod compare;
pub mod config;
pub mod event;
pub mod extract;
pub mod fetch;
pub mod judge;
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
/// Fewer malloc arenas. glibc gives every thread that allocates its own arena, up to eight per
/// core, and keeps what is freed in each: a pass's judging threads each free a page's body and
/// text per check, so the peak grew with the threads rather than with the work (a cold pass
/// over 10,000 pages: 77 MB with glibc's default, 65 MB with one arena per core, no slower).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // SAFETY: mallopt only sets a tunable; it is called before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, cores.max(2) as libc::c_int);
        }
    }
}

/// Returns freed memory to the system: the daemon calls it after each pass, so that its
/// resident size between passes is what it holds, not the last pass's peak.
pub fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

pub fn exit_for(err: &anyhow::Error) -> Exit {
    if err.downcast_ref::<config::ConfigErrors>().is_some()
        || err.downcast_ref::<UsageError>().is_some()
    {
        Exit::InvalidInput
    } else {
        Exit::Internal
    }
}
