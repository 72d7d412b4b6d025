//! `verify`: after a pass stored a change, the watch's own test of the integration runs
//! against it, with the new body, both texts and the diff in files. Its verdict goes into
//! the events (a failure makes them critical) and releases their notifications, held until
//! then; a process that dies mid-verify leaves them to the next run, which marks them
//! interrupted and sends them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::config::{Verify, VerifyCommand, Watch};
use crate::event::EventKind;
use crate::store::{Store, StoreError, VerifyInputs};

/// Verifies run at once at most.
const AT_ONCE: usize = 2;
/// Lines of output an event keeps.
const OUTPUT_LINES: usize = 40;
/// Output read from a verify at most (its end is kept).
const OUTPUT_BYTES: usize = 256 * 1024;

/// One check's events to verify, with the body it fetched.
#[derive(Debug)]
pub struct Job {
    pub position: usize,
    pub events: Vec<(i64, EventKind)>,
    pub body: Option<Vec<u8>>,
}

/// A verify's verdict, for the command's output.
#[derive(Debug, Clone)]
pub struct Verified {
    pub watch: String,
    pub events: Vec<i64>,
    pub verdict: Value,
}

impl Verified {
    pub fn passed(&self) -> bool {
        self.verdict["passed"] == json!(true)
    }
}

/// Runs the pass's verifies, [`AT_ONCE`] at a time, and writes each verdict as it comes.
pub async fn run(
    watches: &[Watch],
    jobs: Vec<Job>,
    store: &mut Store,
) -> Result<Vec<Verified>, StoreError> {
    let mut prepared = Vec::new();
    for job in jobs {
        let w = &watches[job.position];
        let Some(verify) = w.settings.verify.clone() else {
            continue;
        };
        let inputs = store.verify_inputs(job.events[0].0)?;
        prepared.push((job, verify, inputs));
    }
    let mut runs = futures_util::stream::iter(prepared.into_iter().map(|(job, verify, inputs)| {
        let w = &watches[job.position];
        async move {
            let verdict = run_one(w, &verify, &job, inputs).await;
            (job, verdict)
        }
    }))
    .buffer_unordered(AT_ONCE);
    let mut done = Vec::new();
    while let Some((job, verdict)) = runs.next().await {
        let w = &watches[job.position];
        let ids: Vec<i64> = job.events.iter().map(|e| e.0).collect();
        store.finish_verify(&ids, &verdict, &w.settings.alert)?;
        done.push(Verified {
            watch: w.name().to_string(),
            events: ids,
            verdict,
        });
    }
    Ok(done)
}

static RUNS: AtomicU64 = AtomicU64::new(0);

/// Runs one verify in a private folder of input files; its verdict as the event keeps it.
async fn run_one(w: &Watch, verify: &Verify, job: &Job, inputs: VerifyInputs) -> Value {
    let dir = std::env::temp_dir().join(format!(
        "forewarn-verify-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let verdict = match write_inputs(&dir, job, &inputs) {
        Ok(files) => execute(w, verify, job, &files).await,
        Err(e) => json!({
            "state": "failed", "passed": false, "exit": null, "duration_ms": 0,
            "output": format!("forewarn could not write the verify's files in {}: {e}", dir.display()),
        }),
    };
    let _ = std::fs::remove_dir_all(&dir);
    verdict
}

/// The files a verify reads, by environment variable.
fn write_inputs(
    dir: &Path,
    job: &Job,
    inputs: &VerifyInputs,
) -> std::io::Result<Vec<(&'static str, PathBuf)>> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    let files = [
        (
            "FOREWARN_BODY",
            "body",
            job.body.as_deref().unwrap_or_default(),
        ),
        (
            "FOREWARN_SNAPSHOT",
            "snapshot.txt",
            inputs.snapshot.as_bytes(),
        ),
        (
            "FOREWARN_PREVIOUS",
            "previous.txt",
            inputs.previous.as_bytes(),
        ),
        ("FOREWARN_DIFF", "diff.txt", inputs.diff.as_bytes()),
    ];
    files
        .into_iter()
        .map(|(var, name, bytes)| {
            let path = dir.join(name);
            std::fs::write(&path, bytes)?;
            Ok((var, path))
        })
        .collect()
}

/// Starts the command in the watchlist's folder and waits for it, at most its timeout
/// (then kills it, and whatever it started).
async fn execute(
    w: &Watch,
    verify: &Verify,
    job: &Job,
    files: &[(&'static str, PathBuf)],
) -> Value {
    let mut cmd = command(w, verify, job, files);
    let started = Instant::now();
    let (reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return failure(started, None, format!("cannot make a pipe: {e}")),
    };
    let out = match writer.try_clone() {
        Ok(o) => o,
        Err(e) => return failure(started, None, format!("cannot make a pipe: {e}")),
    };
    cmd.stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(writer)
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            drop(cmd);
            return failure(
                started,
                None,
                format!("cannot start the verify command: {e}"),
            );
        }
    };
    // The pipe's write ends live in the child only now: reading ends when it (and what it
    // started) closed them.
    drop(cmd);
    let output = tokio::task::spawn_blocking(move || read_tail(reader));
    let waited = tokio::time::timeout(verify.timeout, child.wait()).await;
    let (state, exit) = match waited {
        Ok(Ok(status)) => {
            let passed = status.success();
            (if passed { "passed" } else { "failed" }, status.code())
        }
        Ok(Err(e)) => return failure(started, None, format!("lost the verify command: {e}")),
        Err(_) => {
            kill_group(&child);
            let _ = child.wait().await;
            ("timed_out", None)
        }
    };
    // Whatever the command left running keeps the pipe open: it goes with the group.
    kill_group(&child);
    let text = tokio::time::timeout(Duration::from_secs(5), output)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let mut output = last_lines(&redact(w, &text), OUTPUT_LINES);
    if state == "timed_out" {
        output.push_str(&format!(
            "\n(killed: still running after `verify_timeout` {})",
            humantime::format_duration(verify.timeout)
        ));
    }
    json!({
        "state": state,
        "passed": state == "passed",
        "exit": exit,
        "duration_ms": started.elapsed().as_millis() as u64,
        "output": output,
    })
}

/// The verify's command, in the watchlist's folder, with the watch, the event and the files
/// in its environment.
fn command(
    w: &Watch,
    verify: &Verify,
    job: &Job,
    files: &[(&'static str, PathBuf)],
) -> tokio::process::Command {
    let mut cmd = match &verify.command {
        VerifyCommand::Shell(s) => {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c").arg(s);
            c
        }
        VerifyCommand::Argv(argv) => {
            let mut c = tokio::process::Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    };
    if let Some(dir) = w
        .settings
        .file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        cmd.current_dir(dir);
    }
    cmd.env("FOREWARN_WATCH", w.name())
        .env("FOREWARN_URL", w.url_display())
        .env("FOREWARN_EVENT", job.events[0].1.as_str())
        .env("FOREWARN_EVENT_ID", job.events[0].0.to_string());
    for (var, path) in files {
        cmd.env(var, path);
    }
    cmd
}

fn failure(started: Instant, exit: Option<i32>, why: String) -> Value {
    json!({
        "state": "failed", "passed": false, "exit": exit,
        "duration_ms": started.elapsed().as_millis() as u64, "output": why,
    })
}

fn kill_group(child: &tokio::process::Child) {
    if let Some(pid) = child.id() {
        // SAFETY: a plain signal to the process group this verify started.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
    }
}

/// The end of what the command printed, at most [`OUTPUT_BYTES`].
fn read_tail(mut r: std::io::PipeReader) -> String {
    use std::io::Read;
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * OUTPUT_BYTES {
            kept.drain(..kept.len() - OUTPUT_BYTES);
        }
    }
    if kept.len() > OUTPUT_BYTES {
        kept.drain(..kept.len() - OUTPUT_BYTES);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The output with secrets replaced: the values of the `${VAR}`s the watch uses, and of the
/// environment's variables named like secrets (`TOKEN`, `SECRET`, `PASSWORD`, `KEY`...).
fn redact(w: &Watch, text: &str) -> String {
    let mut names = crate::config::types::var_names(w.url());
    for (_, v) in &w.settings.headers {
        names.extend(crate::config::types::var_names(v));
    }
    if let Some(b) = &w.settings.browser {
        for s in &b.steps {
            if let crate::config::Step::Fill { value, .. } | crate::config::Step::Goto(value) = s {
                names.extend(crate::config::types::var_names(value));
            }
        }
    }
    let secretish = |n: &str| {
        let n = n.to_ascii_uppercase();
        ["TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL"]
            .iter()
            .any(|s| n.contains(s))
    };
    let mut values: Vec<String> = std::env::vars()
        .filter(|(n, _)| names.contains(n) || secretish(n))
        .map(|(_, v)| v)
        .filter(|v| v.len() >= 4)
        .collect();
    // The longest first: a secret that contains another is replaced whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut out = text.to_string();
    for v in values {
        out = out.replace(&v, "[redacted]");
    }
    out
}
