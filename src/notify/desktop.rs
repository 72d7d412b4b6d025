//! `desktop`: a freedesktop notification over the D-Bus session bus (notify-rust, pure Rust).

use std::sync::atomic::{AtomicBool, Ordering};

use notify_rust::{Notification, Urgency};

use super::Message;
use super::render;
use crate::event::Severity;

/// Diff lines in a desktop notification's body: a glance, not a review.
const DESKTOP_DIFF_LINES: usize = 4;

/// Set by `forewarn watch`: a long-lived process can wait for a click and open the page.
pub static KEEP_ACTIONS: AtomicBool = AtomicBool::new(false);

pub async fn send(msg: &Message) -> Result<(), String> {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none()
        && std::env::var_os("XDG_RUNTIME_DIR")
            .is_none_or(|d| !std::path::Path::new(&d).join("bus").exists())
    {
        return Err("no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set and there is no $XDG_RUNTIME_DIR/bus (run forewarn inside a desktop session, or use another channel type for a server)".into());
    }
    let url = match msg.items.as_slice() {
        [(e, _)] => Some(e.url.clone()),
        _ => None,
    };
    let mut n = Notification::new();
    n.appname("forewarn")
        .summary(&render::title(msg))
        .body(&render::text(msg, DESKTOP_DIFF_LINES))
        .urgency(match msg.severity() {
            Severity::Info => Urgency::Low,
            Severity::Warning => Urgency::Normal,
            Severity::Critical => Urgency::Critical,
        });
    if url.is_some() {
        // The default action (a click on the notification) opens the page, where the
        // notification server supports actions.
        n.action("default", "Open page");
    }
    let handle = n.show_async().await.map_err(|e| {
        let s = e.to_string();
        if s.contains("ServiceUnknown") || s.contains("org.freedesktop.Notifications") {
            format!("no notification server on the session bus (nothing owns org.freedesktop.Notifications: start one such as dunst, or use another channel type): {s}")
        } else if s.contains("connect") || s.contains("No such file") || s.contains("Address") {
            format!("cannot reach the D-Bus session bus: {s}")
        } else {
            format!("desktop notification failed: {s}")
        }
    })?;
    if let Some(url) = url
        && KEEP_ACTIONS.load(Ordering::Relaxed)
    {
        tokio::spawn(async move {
            let wait = handle.wait_for_action_async(|response| {
                if matches!(response, notify_rust::NotificationResponse::Default) {
                    let _ = std::process::Command::new("xdg-open")
                        .arg(&url)
                        .stdin(std::process::Stdio::null())
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn();
                }
            });
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3600), wait).await;
        });
    }
    Ok(())
}
