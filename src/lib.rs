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

/// Tunes glibc's allocator for a pass's threads: the runtime's workers, the database writer
/// and the blocking threads that judge large pages all allocate and free.
///
/// - Arenas: two per core. glibc's default (eight per core) let the peak grow with the threads
///   rather than with the work (a cold pass over 10,000 pages: 77 MB, against 65 MB with one
///   arena per core). With one per core, the threads queued on the arenas' locks: a warm
///   pass's profile spent 5 % of its CPU in futex waits inside malloc and free; two per core
///   made the benchmark's warm and changed passes 5-8 % faster (alternating replays) for
///   about 1 MB more resident memory.
/// - Blocks of 1 MiB or more are mapped, and unmapped when freed, always. By default glibc
///   raises that threshold to the size of the largest block freed (up to 32 MiB), after which
///   a huge page's buffers stay in the arenas: a 10 MB page that moves on every request
///   (`CHURN=1 benches/memory.sh`) peaked at 71-81 MB, 53 MB with the fixed threshold; no
///   page of the benchmark's (50 KB on average) is near it.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // SAFETY: mallopt only sets tunables; it is called before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, (cores * 2).max(2) as libc::c_int);
            libc::mallopt(libc::M_MMAP_THRESHOLD, MAP_FROM as libc::c_int);
        }
    }
}

/// Allocations this large are mapped on their own, and given back when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MAP_FROM: usize = 1 << 20;

/// Returns freed memory to the system: the daemon calls it after each pass, so that its
/// resident size between passes is what it holds, not the last pass's peak.
pub fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

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
