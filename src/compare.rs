//! Content -> change: hashes that decide "changed", and readable unified diffs.

use std::time::{Duration, Instant};

use similar::{Algorithm, DiffTag, TextDiff};

/// A 32-byte BLAKE3 hash.
pub type Hash = [u8; 32];

pub fn hash(bytes: &[u8]) -> Hash {
    *blake3::hash(bytes).as_bytes()
}

/// Longest a diff may take before similar falls back to a coarser answer.
const DIFF_DEADLINE: Duration = Duration::from_secs(2);

/// A line diff between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub unified: String,
    pub added: usize,
    pub removed: usize,
}

/// A unified diff (Patience, three lines of context) with `a` and `b` as header labels.
pub fn diff(old: &str, new: &str, old_label: &str, new_label: &str) -> Diff {
    let d = line_diff(old, new);
    let (added, removed) = counts(&d);
    let unified = d
        .unified_diff()
        .context_radius(3)
        .header(old_label, new_label)
        .to_string();
    Diff {
        unified,
        added,
        removed,
    }
}

/// Lines added and removed from `old` to `new`, without the unified text.
pub fn count_lines(old: &str, new: &str) -> (usize, usize) {
    counts(&line_diff(old, new))
}

/// The line diff every comparison uses: Patience, with a deadline for pathological inputs.
fn line_diff<'a>(old: &'a str, new: &'a str) -> TextDiff<'a, 'a, str> {
    TextDiff::configure()
        .algorithm(Algorithm::Patience)
        .deadline(Instant::now() + DIFF_DEADLINE)
        .diff_lines(old, new)
}

/// (added, removed) lines of a diff.
fn counts(d: &TextDiff<'_, '_, str>) -> (usize, usize) {
    let (mut added, mut removed) = (0, 0);
    for op in d.ops() {
        let (tag, old_range, new_range) = op.as_tag_tuple();
        if tag != DiffTag::Equal {
            removed += old_range.len();
            added += new_range.len();
        }
    }
    (added, removed)
}

/// "+3 -1 lines in #toolbar": what a change amounts to, on one line.
pub fn summary(diff: &Diff, select: &[String]) -> String {
    let plural = |n: usize| if n == 1 { "line" } else { "lines" };
    let mut s = match (diff.added, diff.removed) {
        (a, 0) => format!("+{a} {}", plural(a)),
        (0, r) => format!("-{r} {}", plural(r)),
        (a, r) => format!("+{a} -{r} {}", plural(a.max(r))),
    };
    if !select.is_empty() {
        s.push_str(" in ");
        s.push_str(&select.join(", "));
    }
    s
}

/// At most `max_lines` lines of a diff, with a note saying how many were left out.
pub fn truncate_lines(text: &str, max_lines: usize) -> String {
    let total = text.lines().count();
    if total <= max_lines {
        return text.to_string();
    }
    let mut out: String = text
        .lines()
        .take(max_lines)
        .flat_map(|l| [l, "\n"])
        .collect();
    out.push_str(&format!("... {} more lines\n", total - max_lines));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_summary() {
        let d = diff("a\nb\nc\n", "a\nB\nc\nd\n", "old", "new");
        assert_eq!((d.added, d.removed), (2, 1));
        assert!(d.unified.starts_with("--- old\n+++ new\n"), "{}", d.unified);
        assert!(d.unified.contains("-b\n+B\n"), "{}", d.unified);
        assert_eq!(summary(&d, &["#toolbar".into()]), "+2 -1 lines in #toolbar");
        let one = diff("a\n", "a\nb\n", "o", "n");
        assert_eq!(summary(&one, &[]), "+1 line");
    }

    #[test]
    fn truncation_notes_the_rest() {
        let t = truncate_lines("1\n2\n3\n4\n", 2);
        assert_eq!(t, "1\n2\n... 2 more lines\n");
    }
}
