//! `forewarn init [DIR]`, `forewarn completions SHELL` and `forewarn man`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory;

use crate::Exit;
use crate::cli::{Cli, InitArgs};

/// The starter watchlist: one watch of each kind, every URL a placeholder, every watch
/// disabled until its URL is made real, so nothing is fetched by accident.
const STARTER: &str = r##"# forewarn's starter watchlist. Each watch below is an example of one kind, pointing at a
# placeholder (example.com, example.org, owner/name): replace the URL (or package) with the
# page you depend on, then delete `enabled = false`. `forewarn test NAME` shows what a watch
# would compare, without storing anything; `forewarn check` checks every enabled watch.
# All keys: see the README ("Watchlists").

[defaults]
every = "15m"                 # or schedule = "*/15 * * * *" (cron)
notify = ["desktop"]          # the channel forewarn.toml declares

# A page, or the part of it your integration reads (CSS selectors).
[[watch]]
name = "vendor-page"
url = "https://app.example.com/inbox"            # PLACEHOLDER: the page you depend on
select = "#toolbar"
expect.selectors = ["#toolbar .send-button"]     # the element your code clicks must exist
enabled = false

# A JSON API: its structure (fields, types) and values, apart.
[[watch]]
name = "vendor-api"
url = "https://api.example.com/v1/items.json"    # PLACEHOLDER
kind = "json"
ignore_paths = ["$.generated_at"]                # a field that changes on every request
enabled = false

# A release feed (RSS, Atom or JSON Feed): each new entry is told once.
[[watch]]
name = "vendor-changelog"
url = "https://example.org/changelog.xml"        # PLACEHOLDER
kind = "feed"
enabled = false

# A library's new versions (github, crates, npm, pypi; or regex / json on any page).
[[watch]]
name = "vendor-sdk"
kind = "version"
source = "github"
repo = "owner/name"                              # PLACEHOLDER: the repository
enabled = false

# A JavaScript app, read after its scripts ran, in headless Chromium.
[[watch]]
name = "vendor-app"
url = "https://app.example.com/"                 # PLACEHOLDER
browser = true
wait_for = "#app .ready"
enabled = false
"##;

/// Channels shared by every watchlist in `watchlists/`.
const FOREWARN_TOML: &str = r##"# Notification channels, shared by the watchlists beside this file (README: "Notifications").

[channels.desktop]
type = "desktop"

# [channels.team-chat]
# type = "slack"
# url = "${SLACK_WEBHOOK_URL}"    # secrets as ${VAR}: read when sending, never stored
# min_severity = "warning"
"##;

pub fn run(args: InitArgs) -> anyhow::Result<Exit> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
    let watchlist = dir.join("watchlists").join("starter.toml");
    let channels = dir.join("forewarn.toml");
    for f in [&watchlist, &channels] {
        if f.exists() {
            return Err(crate::UsageError(format!(
                "{} exists already: `forewarn init` writes only new files (move it away, or edit it)",
                f.display()
            ))
            .into());
        }
    }
    std::fs::create_dir_all(dir.join("watchlists"))
        .with_context(|| format!("cannot create {}", dir.join("watchlists").display()))?;
    write(&watchlist, STARTER)?;
    write(&channels, FOREWARN_TOML)?;
    println!(
        "wrote {} (five example watches, disabled until their URLs are yours) and {} (a desktop channel)",
        watchlist.display(),
        channels.display()
    );
    println!(
        "next: edit a watch's url, delete its `enabled = false`, then `forewarn test NAME` and `forewarn check`{}",
        if dir == Path::new(".") {
            String::new()
        } else {
            format!(" in {}", dir.display())
        }
    );
    println!(
        "the database goes to {} (`--db` or FOREWARN_DB to put it elsewhere)",
        crate::pipeline::default_db_path().display()
    );
    Ok(Exit::Ok)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A completion script for `shell` on standard output.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<Exit> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "forewarn", &mut std::io::stdout());
    Ok(Exit::Ok)
}

/// The manual page, from the same definitions as `--help`.
pub fn man() -> anyhow::Result<Exit> {
    let cmd = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    // Each command's own section, as `--help` shows it.
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("forewarn {}", sub.get_name());
        out.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub.clone()).render_options_section(&mut page)?;
        if let Some(about) = sub.get_about() {
            out.extend_from_slice(format!("{about}\n").as_bytes());
        }
        out.extend_from_slice(&page);
    }
    use std::io::Write;
    std::io::stdout().write_all(&out)?;
    Ok(Exit::Ok)
}
