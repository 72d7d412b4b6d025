//! Issue 7: the HTML report, in a real browser (Debian's chromium, headless).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Page, Server, TestEnv, one_watch};

fn chromium() -> PathBuf {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(c).exists() {
            return PathBuf::from(c);
        }
    }
    panic!(
        "the HTML report test needs Debian's chromium: apt-get install chromium (.ci/run installs it)"
    );
}

fn headless(profile: &Path) -> Command {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

#[test]
fn html_report_in_a_real_browser_is_inert_and_shows_the_diff() {
    let srv = Server::start();
    srv.set(
        "/p",
        Page::html("<p>Send now please</p><p>stable one</p><p>stable two</p>"),
    );
    let env = TestEnv::new().watchlist(&one_watch(
        "vendor",
        &srv.url("/p"),
        "confirm_refetch = false",
    ));
    env.run(&["check"]);
    // A hostile page: its text carries markup that must render as text.
    srv.set(
        "/p",
        Page::html("<p>Send later please</p><p>stable one</p><p>stable two</p><pre>&lt;script&gt;document.title='pwned'&lt;/script&gt; &lt;img src=x onerror=\"document.title='pwned'\"&gt;</pre>"),
    );
    env.run(&["check"]);
    let out = env.path().join("report.html");
    let run = env.run(&["report", "--format", "html", "-o", out.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(!html.contains("<script"), "no script at all");
    for attr in ["src=\"http", "href=\"http", "src=\"//", "href=\"//", "url("] {
        assert!(!html.contains(attr), "no remote resource ({attr})");
    }

    let profile = tempfile::tempdir().unwrap();
    let dom = headless(profile.path())
        .arg("--dump-dom")
        .arg(format!("file://{}", out.display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("<title>forewarn report"),
        "the title is ours: {dom}"
    );
    assert!(!dom.contains("pwned</title>"), "no script ran");
    assert_eq!(dom.matches("<ins>").count(), 1, "{dom}");
    assert_eq!(dom.matches("<del>").count(), 1, "{dom}");
    assert!(
        dom.contains("<del>now</del>") && dom.contains("<ins>later</ins>"),
        "{dom}"
    );
    assert!(
        !dom.contains("<img src=\"x\""),
        "the page's <img> is text, not an element"
    );

    // A screenshot to look at: target/forewarn-report.png.
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/forewarn-report.png");
    let status = headless(profile.path())
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1100,800")
        .arg(format!("file://{}", out.display()))
        .output()
        .expect("run chromium");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 5_000,
        "a real picture"
    );
}
