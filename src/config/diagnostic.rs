//! Watchlist errors that point at the file, line and column, with a caret and a hint.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in one watchlist file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    /// The offending source line and the caret's extent on it.
    pub snippet: Option<(String, usize, usize)>,
    pub hint: Option<String>,
}

impl ConfigError {
    pub fn at(file: &Path, source: &str, span: Option<Range<usize>>, message: String) -> Self {
        let mut err = ConfigError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            message,
            snippet: None,
            hint: None,
        };
        if let Some(span) = span {
            let start = span.start.min(source.len());
            let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
            let line_end = source[start..]
                .find('\n')
                .map_or(source.len(), |i| start + i);
            let line_no = source[..start].matches('\n').count() + 1;
            let col = source[line_start..start].chars().count() + 1;
            let text = source[line_start..line_end]
                .trim_end_matches('\r')
                .to_string();
            let width = source[start..span.end.min(line_end).max(start)]
                .chars()
                .count()
                .max(1);
            err.line = Some(line_no);
            err.column = Some(col);
            err.snippet = Some((text, col, width));
        }
        err.hint = did_you_mean(&err.message);
        shorten_unknown_key(&mut err);
        err
    }

    pub fn whole_file(file: &Path, message: String, hint: Option<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            message,
            snippet: None,
            hint,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        writeln!(f, ": {}", self.message)?;
        if let (Some((text, col, width)), Some(line)) = (&self.snippet, self.line) {
            let gutter = line.to_string().len();
            writeln!(f, "{:gutter$} |", "")?;
            writeln!(f, "{line} | {text}")?;
            writeln!(
                f,
                "{:gutter$} | {}{}",
                "",
                " ".repeat(col - 1),
                "^".repeat(*width)
            )?;
        }
        if let Some(h) = &self.hint {
            writeln!(f, "  = hint: {h}")?;
        }
        Ok(())
    }
}

/// All problems found while loading the watchlists.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {e}")?;
        }
        let n = self.0.len();
        write!(
            f,
            "\n{n} problem{} in the watchlists; nothing was fetched. Fix {} and run again.",
            if n == 1 { "" } else { "s" },
            if n == 1 { "it" } else { "them" }
        )
    }
}

impl std::error::Error for ConfigErrors {}

/// serde's "unknown field `selct`, expected one of `name`, `url`, ... (40 keys)" becomes
/// "unknown key `selct`": the hint says which key was meant, or, with no near one, lists them.
fn shorten_unknown_key(err: &mut ConfigError) {
    let Some(rest) = err.message.strip_prefix("unknown field `") else {
        return;
    };
    let Some(end) = rest.find('`') else {
        return;
    };
    let key = &rest[..end];
    let known: Vec<&str> = rest[end..].split('`').skip(2).step_by(2).collect();
    if err.hint.is_none() && !known.is_empty() {
        err.hint = Some(format!("the keys here are {}", known.join(", ")));
    }
    err.message = format!("unknown key `{key}`");
}

/// Turns serde's "unknown field `selct`, expected one of `name`, `select`" into a suggestion.
fn did_you_mean(message: &str) -> Option<String> {
    let (what, rest) = ["unknown field `", "unknown variant `"]
        .iter()
        .find_map(|p| message.find(p).map(|i| (*p, &message[i + p.len()..])))?;
    let end = rest.find('`')?;
    let typo = &rest[..end];
    let expected: Vec<&str> = rest[end..]
        .split('`')
        .skip(2)
        .step_by(2)
        .filter(|s| !s.is_empty())
        .collect();
    let best = closest(typo, expected.iter().copied())?;
    let noun = if what.contains("field") {
        "key"
    } else {
        "value"
    };
    Some(format!("did you mean the {noun} `{best}`?"))
}

/// The candidate nearest to `typo`, if it is near enough to be a typo.
pub fn closest<'a>(typo: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = typo.to_ascii_lowercase();
    candidates
        .map(|c| {
            (
                strsim::damerau_levenshtein(&lower, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_key() {
        let m = "unknown field `selct`, expected one of `name`, `url`, `select`, `remove`";
        assert_eq!(
            did_you_mean(m).as_deref(),
            Some("did you mean the key `select`?")
        );
        let far = "unknown field `zzzzzzzz`, expected one of `name`, `url`";
        assert_eq!(did_you_mean(far), None);
    }

    #[test]
    fn points_at_line_and_column() {
        let src = "[[watch]]\nname = \"a\"\nselct = \"#x\"\n";
        let start = src.find("selct").unwrap();
        let e = ConfigError::at(
            Path::new("w.toml"),
            src,
            Some(start..start + 5),
            "unknown field `selct`, expected one of `select`".into(),
        );
        assert_eq!((e.line, e.column), (Some(3), Some(1)));
        let shown = e.to_string();
        assert!(
            shown.contains("w.toml:3:1: unknown key `selct`\n"),
            "{shown}"
        );
        assert!(shown.contains("^^^^^"), "{shown}");
        assert!(shown.contains("did you mean the key `select`?"), "{shown}");
    }
}
