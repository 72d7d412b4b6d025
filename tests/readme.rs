//! The README's examples run as written: the shell blocks marked `<!-- readme-test -->` run
//! in order, in one shell, against a local server only. Two things are swapped so that runs
//! cannot collide: the try folder (`/tmp/forewarn-try`) becomes a temporary folder, and the
//! port 8000 a free one.

use std::process::Command;

/// The marked `sh` blocks of the README, in order.
fn marked_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if !line.starts_with("<!-- readme-test") {
            continue;
        }
        assert_eq!(
            lines.next(),
            Some("```sh"),
            "a marked block is a ```sh fence"
        );
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        blocks.push(body.join("\n"));
    }
    blocks
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn readme_examples_run_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let blocks = marked_blocks(&readme);
    assert!(
        blocks.len() >= 3,
        "the quick start and the history blocks are marked"
    );
    let dir = tempfile::tempdir().unwrap();
    let try_dir = dir.path().join("try");
    let script = format!("set -euo pipefail\n{}\n", blocks.join("\n"))
        .replace("/tmp/forewarn-try", &try_dir.display().to_string())
        .replace("8000", &free_port().to_string());
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_forewarn"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .output()
        .expect("bash");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the README's blocks failed:\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    for said in [
        "added watch `vendor-inbox`",
        "CHANGED vendor-inbox",
        "+Send now",
        "send-btn",
        "disabled watch `vendor-inbox`",
        "removed watch `vendor-inbox`",
        "NAME ",
        "snapshots #1 -> #2",
    ] {
        assert!(
            stdout.contains(said),
            "the README's blocks did not say {said:?}:\n{stdout}\n--- stderr\n{stderr}"
        );
    }
    assert!(try_dir.join("report.html").is_file());
}
