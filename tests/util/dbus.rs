//! A private D-Bus session bus (a real `dbus-daemon`) with a small notification server that
//! owns `org.freedesktop.Notifications` and records what it is sent.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use zbus::OwnedVariant;

/// One `Notify` call as the server received it.
#[derive(Debug, Clone)]
pub struct Notified {
    pub app_name: String,
    pub summary: String,
    pub body: String,
    pub actions: Vec<String>,
    /// The `urgency` hint: 0 low, 1 normal, 2 critical.
    pub urgency: Option<u8>,
}

struct Notifications {
    seen: Arc<Mutex<Vec<Notified>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Notifications {
    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, OwnedVariant>,
        _expire_timeout: i32,
    ) -> u32 {
        let urgency = hints.get("urgency").and_then(|v| u8::try_from(v).ok());
        let mut seen = self.seen.lock().unwrap();
        seen.push(Notified {
            app_name,
            summary,
            body,
            actions,
            urgency,
        });
        seen.len() as u32
    }

    async fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    async fn get_server_information(&self) -> (String, String, String, String) {
        (
            "forewarn-test".into(),
            "forewarn".into(),
            "1".into(),
            "1.2".into(),
        )
    }

    async fn close_notification(&self, _id: u32) {}
}

/// A session bus; with [`SessionBus::with_server`], a notification server on it.
pub struct SessionBus {
    daemon: Child,
    pub address: String,
    seen: Arc<Mutex<Vec<Notified>>>,
    _dir: tempfile::TempDir,
    _conn: Option<zbus::Connection>,
}

impl SessionBus {
    /// Starts `dbus-daemon --session` on a socket of its own.
    pub fn start() -> SessionBus {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .arg(format!("--address=unix:path={}", dir.path().join("bus").display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon is needed for the desktop tests: apt-get install dbus-daemon (.ci/run does)");
        let mut line = String::new();
        BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        SessionBus {
            daemon,
            address: line.trim().to_string(),
            seen: Arc::default(),
            _dir: dir,
            _conn: None,
        }
    }

    /// Starts the bus and a notification server on it.
    pub fn with_server() -> SessionBus {
        let mut bus = SessionBus::start();
        let server = Notifications {
            seen: bus.seen.clone(),
        };
        let address = bus.address.clone();
        let conn = zbus::block_on(async move {
            zbus::connection::Builder::address(address.as_str())
                .name("org.freedesktop.Notifications")
                .serve_at("/org/freedesktop/Notifications", server)
                .build()
                .await
        })
        .expect("serve org.freedesktop.Notifications");
        bus._conn = Some(conn);
        bus
    }

    pub fn notified(&self) -> Vec<Notified> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}
