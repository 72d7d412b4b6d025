//! `command`: runs a program with the message as JSON on stdin and `FOREWARN_*` variables.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::Message;
use super::render;

pub async fn send(
    argv: &[String],
    shell: bool,
    msg: &Message,
    timeout: Duration,
) -> Result<(), String> {
    let mut cmd = if shell {
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c").arg(&argv[0]);
        c
    } else {
        let mut c = tokio::process::Command::new(&argv[0]);
        c.args(&argv[1..]);
        c
    };
    let shown = if shell {
        format!("`sh -c {}`", argv[0])
    } else {
        format!("`{}`", argv[0])
    };
    for (k, v) in env(msg) {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("cannot run {shown}: no such program (give its full path, or check PATH)")
        }
        std::io::ErrorKind::PermissionDenied => {
            format!("cannot run {shown}: permission denied (is it executable?)")
        }
        _ => format!("cannot run {shown}: {e}"),
    })?;
    let body = serde_json::to_vec_pretty(&render::json(msg)).expect("JSON serialises");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let run = async move {
        // A program that does not read its input is fine: a closed pipe is not an error.
        let _ = stdin.write_all(&body).await;
        drop(stdin);
        child.wait_with_output().await
    };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => Err(format!(
            "{shown} did not finish within {} and was stopped (raise the channel's `timeout`)",
            humantime::format_duration(timeout)
        )),
        Ok(Err(e)) => Err(format!("{shown} failed: {e}")),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.trim().lines().rev().take(3).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err(format!(
                "{shown} {}{}",
                match out.status.code() {
                    Some(c) => format!("exited with status {c}"),
                    None => "was killed by a signal".to_string(),
                },
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", tail.join(" / "))
                }
            ))
        }
    }
}

/// `FOREWARN_*` variables: always the channel, title, severity, count and watches; the
/// event's own fields when the message carries one event.
fn env(msg: &Message) -> Vec<(&'static str, String)> {
    let mut watches: Vec<&str> = Vec::new();
    for (e, _) in &msg.items {
        if !watches.contains(&e.watch.as_str()) {
            watches.push(&e.watch);
        }
    }
    let mut v = vec![
        ("FOREWARN_CHANNEL", msg.channel.clone()),
        ("FOREWARN_DELIVERY_ID", msg.id.clone()),
        ("FOREWARN_TITLE", render::title(msg)),
        ("FOREWARN_SEVERITY", msg.severity().as_str().to_string()),
        ("FOREWARN_COUNT", msg.items.len().to_string()),
        ("FOREWARN_WATCHES", watches.join(",")),
    ];
    if let [(e, _)] = msg.items.as_slice() {
        v.push(("FOREWARN_EVENT", e.kind.to_string()));
        v.push(("FOREWARN_WATCH", e.watch.clone()));
        v.push(("FOREWARN_URL", e.url.clone()));
        v.push(("FOREWARN_SUMMARY", e.summary.clone()));
        v.push(("FOREWARN_AT", crate::event::rfc3339(e.at)));
        if let Some(id) = e.id {
            v.push(("FOREWARN_EVENT_ID", id.to_string()));
        }
    }
    v
}
