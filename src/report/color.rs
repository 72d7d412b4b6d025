//! Colour on a terminal, as `git diff` does: removed lines red, added green, hunk headers
//! cyan, event headings bold. `--color auto` (the default) colours only a terminal, and never
//! when `NO_COLOR` is set or `TERM=dumb`: never under cron, never in a pipe or a file.

use std::io::IsTerminal;
use std::sync::OnceLock;

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

static CHOICE: OnceLock<ColorChoice> = OnceLock::new();

/// Set once, from the command line.
pub fn set(choice: ColorChoice) {
    let _ = CHOICE.set(choice);
}

/// Whether what goes to stdout is coloured.
pub fn on_stdout() -> bool {
    decide(
        CHOICE.get().copied().unwrap_or_default(),
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        std::env::var("TERM").is_ok_and(|t| t == "dumb"),
    )
}

fn decide(choice: ColorChoice, terminal: bool, no_color: bool, dumb: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && !no_color && !dumb,
    }
}

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// `text` (a report as `check`, `report` and `diff` print it) coloured for stdout, when
/// stdout takes colour; else as it is.
pub fn for_stdout(text: String) -> String {
    if on_stdout() { paint(&text) } else { text }
}

/// Colours a report: a diff's `-` and `+` lines (indented or not, not the `---`/`+++`
/// headers), its `@@` hunk headers, and each event's heading line.
pub fn paint(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let code = style_of(body);
        match code {
            Some(c) => {
                out.push_str(c);
                out.push_str(body);
                out.push_str(RESET);
            }
            None => out.push_str(body),
        }
        out.push_str(nl);
    }
    out
}

fn style_of(line: &str) -> Option<&'static str> {
    let t = line.trim_start_matches(' ');
    if t.starts_with("+++") || t.starts_with("---") {
        return Some(BOLD);
    }
    if t.starts_with("@@") {
        return Some(CYAN);
    }
    if t.starts_with('+') {
        return Some(GREEN);
    }
    if t.starts_with('-') {
        return Some(RED);
    }
    let heading = !line.starts_with(' ')
        && crate::event::EventKind::ALL
            .iter()
            .any(|k| line.starts_with(k.heading()) && line[k.heading().len()..].starts_with(' '));
    heading.then_some(BOLD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_colours_only_a_terminal_without_no_color() {
        assert!(decide(ColorChoice::Auto, true, false, false));
        assert!(
            !decide(ColorChoice::Auto, false, false, false),
            "a pipe, cron"
        );
        assert!(!decide(ColorChoice::Auto, true, true, false), "NO_COLOR");
        assert!(!decide(ColorChoice::Auto, true, false, true), "TERM=dumb");
        assert!(decide(ColorChoice::Always, false, true, false));
        assert!(!decide(ColorChoice::Never, true, false, false));
    }

    #[test]
    fn diff_lines_and_headings_are_painted() {
        let heading = crate::event::EventKind::Changed.heading();
        let text = format!(
            "{heading} docs (http://x/)\n  1 line changed\n  -old\n  +new\n  @@ -1 +1 @@\n"
        );
        let p = paint(&text);
        assert!(p.starts_with(&format!("{BOLD}{heading} docs")), "{p:?}");
        assert!(p.contains(&format!("{RED}  -old{RESET}\n")), "{p:?}");
        assert!(p.contains(&format!("{GREEN}  +new{RESET}\n")), "{p:?}");
        assert!(p.contains(&format!("{CYAN}  @@ -1 +1 @@{RESET}")), "{p:?}");
        assert!(p.contains("\n  1 line changed\n"), "{p:?}");
    }
}
