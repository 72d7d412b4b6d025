//! One forewarn at a time per database: an advisory lock on `<db>.lock`, holding a line that
//! says who holds it, so that the one that waits can say what it is waiting for.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Held while checking; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DbLock {
    _file: Option<File>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the database {db} is in use by {holder}; waited {waited}s. Stop it, or let it do the checking (`forewarn watch` checks on every watch's schedule)"
    )]
    Busy {
        db: PathBuf,
        holder: String,
        waited: u64,
    },
    #[error("cannot create the lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Takes the lock for `db`, waiting up to `wait` for another process to release it.
/// On PostgreSQL there is no file to lock: several workers share the database, and leases
/// keep them from checking one watch twice.
pub fn acquire(db: &Path, what: &str, wait: Duration) -> Result<DbLock, LockError> {
    if db.to_str().is_some_and(super::pg::is_url) {
        return Ok(DbLock { _file: None });
    }
    let mut os = db.as_os_str().to_owned();
    os.push(".lock");
    let path = PathBuf::from(os);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if start.elapsed() < wait => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Busy {
                    db: db.to_path_buf(),
                    holder: if holder.is_empty() {
                        "another forewarn process".into()
                    } else {
                        holder.to_string()
                    },
                    waited: start.elapsed().as_secs(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    // Ours now: say who holds it.
    let _ = file.set_len(0);
    let _ = file.seek(SeekFrom::Start(0));
    let _ = writeln!(
        file,
        "`forewarn {what}` (pid {}, since {})",
        std::process::id(),
        crate::event::rfc3339(chrono::Utc::now())
    );
    let _ = file.flush();
    Ok(DbLock { _file: Some(file) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("f.db");
        let first = acquire(&db, "watch", Duration::ZERO).unwrap();
        let err = acquire(&db, "check", Duration::from_millis(250)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`forewarn watch` (pid"), "{msg}");
        drop(first);
        acquire(&db, "check", Duration::ZERO).unwrap();
    }
}
