//! Content -> change: hashes that decide "changed", and readable unified diffs.

use std::ops::Range;
use std::time::{Duration, Instant};

use similar::{Algorithm, DiffOp, DiffTag};

mod windowed;

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

/// Texts longer than this together are diffed a window at a time ([`windowed`]): one
/// Patience over two 50 MB pages takes more memory than the pages.
const WHOLE_DIFF_BYTES: usize = 4 << 20;

/// A unified diff (Patience, three lines of context) with `a` and `b` as header labels.
pub fn diff(old: &str, new: &str, old_label: &str, new_label: &str) -> Diff {
    if old.len() + new.len() > WHOLE_DIFF_BYTES {
        return large_diff(old, new, old_label, new_label);
    }
    let (a, b) = (lines(old), lines(new));
    let ops = trimmed_ops(&a, &b, Instant::now() + DIFF_DEADLINE);
    unified_from_ops(&a, &b, ops, old_label, new_label)
}

/// Patience ops from lines `a` to lines `b`. The lines both start with and both end with are
/// equal whatever is found between them: only the middle is diffed (a change is mostly a few
/// lines of a page, and hashing every line of both was most of the work).
fn trimmed_ops(a: &[&str], b: &[&str], deadline: Instant) -> Vec<DiffOp> {
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a_rest, b_rest) = (&a[head..], &b[head..]);
    let tail = a_rest
        .iter()
        .rev()
        .zip(b_rest.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a_mid, b_mid) = (
        &a_rest[..a_rest.len() - tail],
        &b_rest[..b_rest.len() - tail],
    );
    let mut ops = Vec::new();
    if head > 0 {
        ops.push(DiffOp::Equal {
            old_index: 0,
            new_index: 0,
            len: head,
        });
    }
    let middle =
        similar::capture_diff_slices_deadline(Algorithm::Patience, a_mid, b_mid, Some(deadline));
    ops.extend(middle.into_iter().map(|op| shifted(op, head)));
    if tail > 0 {
        ops.push(DiffOp::Equal {
            old_index: a.len() - tail,
            new_index: b.len() - tail,
            len: tail,
        });
    }
    ops
}

/// An op of a middle that starts `by` lines into both texts, in the whole texts' lines.
fn shifted(op: DiffOp, by: usize) -> DiffOp {
    match op {
        DiffOp::Equal {
            old_index,
            new_index,
            len,
        } => DiffOp::Equal {
            old_index: old_index + by,
            new_index: new_index + by,
            len,
        },
        DiffOp::Delete {
            old_index,
            old_len,
            new_index,
        } => DiffOp::Delete {
            old_index: old_index + by,
            old_len,
            new_index: new_index + by,
        },
        DiffOp::Insert {
            old_index,
            new_index,
            new_len,
        } => DiffOp::Insert {
            old_index: old_index + by,
            new_index: new_index + by,
            new_len,
        },
        DiffOp::Replace {
            old_index,
            old_len,
            new_index,
            new_len,
        } => DiffOp::Replace {
            old_index: old_index + by,
            old_len,
            new_index: new_index + by,
            new_len,
        },
    }
}

/// Each text without the whole lines both begin and end with: the lines where they differ
/// (empty, both, for equal texts). Compared a block at a time, so a page that changed in one
/// place costs a `memcmp` of its bytes.
pub fn differing_lines<'a>(old: &'a str, new: &'a str) -> (&'a str, &'a str) {
    let (a, b) = differing_ranges(old, new);
    (&old[a], &new[b])
}

/// Where [`differing_lines`] are, as byte ranges of `old` and `new`.
pub fn differing_ranges(old: &str, new: &str) -> (Range<usize>, Range<usize>) {
    let (a, b) = (old.as_bytes(), new.as_bytes());
    let same = common_len(a.chunks(BLOCK), b.chunks(BLOCK), |x, y| {
        x.iter().zip(y).take_while(|(x, y)| x == y).count()
    });
    if same == a.len() && same == b.len() {
        return (0..0, 0..0);
    }
    let start = a[..same]
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |i| i + 1);
    let room = a.len().min(b.len()) - start;
    let tail = common_len(a.rchunks(BLOCK), b.rchunks(BLOCK), |x, y| {
        x.iter()
            .rev()
            .zip(y.iter().rev())
            .take_while(|(x, y)| x == y)
            .count()
    })
    .min(room);
    // The common tail from the line after its first newline: the line that newline ends may
    // differ, and keeps it (a line is compared with its newline, as the diff splits lines).
    let tail = a[a.len() - tail..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(0, |i| tail - i - 1);
    (start..a.len() - tail, start..b.len() - tail)
}

const BLOCK: usize = 64;

/// The length of the common run of two sequences of blocks: whole equal blocks, then what
/// `within` finds in the first pair that differs.
fn common_len<'a>(
    a: impl Iterator<Item = &'a [u8]>,
    b: impl Iterator<Item = &'a [u8]>,
    within: impl Fn(&[u8], &[u8]) -> usize,
) -> usize {
    let mut n = 0;
    for (x, y) in a.zip(b) {
        if x == y {
            n += x.len();
        } else {
            return n + within(x, y);
        }
    }
    n
}

/// Lines added and removed from `old` to `new`, without the unified text: the ops [`diff`]
/// writes, counted.
pub fn count_lines(old: &str, new: &str) -> (usize, usize) {
    let (a, b) = (lines(old), lines(new));
    let deadline = Instant::now() + DIFF_DEADLINE;
    if old.len() + new.len() > WHOLE_DIFF_BYTES {
        return counts(&windowed::ops(&a, &b, deadline));
    }
    counts(&trimmed_ops(&a, &b, deadline))
}

/// The ops from lines `a` to lines `b`, split as the caller likes: Myers, as similar's
/// `TextDiff::from_lines` gives them, or a window at a time past [`WHOLE_DIFF_BYTES`];
/// bounded in time either way.
pub fn line_ops(a: &[&str], b: &[&str]) -> Vec<DiffOp> {
    let deadline = Instant::now() + DIFF_DEADLINE;
    let bytes: usize = a.iter().chain(b).map(|l| l.len()).sum();
    if bytes > WHOLE_DIFF_BYTES {
        return windowed::ops(a, b, deadline);
    }
    similar::capture_diff_slices_deadline(Algorithm::Myers, a, b, Some(deadline))
}

/// [`diff`] of huge texts: the ops a window at a time, the unified text written from them
/// in the format similar writes.
fn large_diff(old: &str, new: &str, old_label: &str, new_label: &str) -> Diff {
    let (a, b) = (lines(old), lines(new));
    let ops = windowed::ops(&a, &b, Instant::now() + DIFF_DEADLINE);
    unified_from_ops(&a, &b, ops, old_label, new_label)
}

/// The unified text (three lines of context) of `ops` from lines `a` to lines `b`, in the
/// format similar writes.
fn unified_from_ops(
    a: &[&str],
    b: &[&str],
    ops: Vec<DiffOp>,
    old_label: &str,
    new_label: &str,
) -> Diff {
    let (added, removed) = counts(&ops);
    let mut unified = String::new();
    for (n, hunk) in similar::group_diff_ops(ops, 3).iter().enumerate() {
        if n == 0 {
            unified.push_str(&format!("--- {old_label}\n+++ {new_label}\n"));
        }
        unified.push_str(&format!(
            "{}\n",
            similar::udiff::UnifiedHunkHeader::new(hunk)
        ));
        for op in hunk {
            let (o, n) = (&a[op.old_range()], &b[op.new_range()]);
            match op.tag() {
                DiffTag::Equal => push_lines(&mut unified, ' ', o),
                _ => {
                    push_lines(&mut unified, '-', o);
                    push_lines(&mut unified, '+', n);
                }
            }
        }
    }
    Diff {
        unified,
        added,
        removed,
    }
}

/// The lines of a text, each with its line break, as similar splits them.
fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// Diff lines marked with `tag`; a last line without its break says so, as similar does.
fn push_lines(out: &mut String, tag: char, lines: &[&str]) {
    for line in lines {
        out.push(tag);
        out.push_str(line);
        if !line.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    }
}

/// (added, removed) lines of a diff's ops.
fn counts(ops: &[DiffOp]) -> (usize, usize) {
    let (mut added, mut removed) = (0, 0);
    for op in ops {
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
    use similar::TextDiff;

    /// similar's line diff of the whole texts (what `diff` and `count_lines` used before they
    /// left the common ends out), which [`trimmed_ops`] must give the same ops as.
    fn line_diff<'a>(old: &'a str, new: &'a str) -> TextDiff<'a, 'a, str> {
        TextDiff::configure()
            .algorithm(Algorithm::Patience)
            .deadline(Instant::now() + DIFF_DEADLINE)
            .diff_lines(old, new)
    }

    #[test]
    fn counts_and_diffs_leave_out_the_common_ends_without_changing() {
        let whole = |a: &str, b: &str| counts(line_diff(a, b).ops());
        // Edits, insertions and deletions at the start, middle and end; repeated lines; a
        // last line without its break; the same line moved.
        let base: Vec<String> = (0..40)
            .map(|i| format!("line {} of the page\n", i % 7))
            .collect();
        let mut seed = 7u64;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        for round in 0..300 {
            let mut lines = base.clone();
            for _ in 0..1 + next(4) {
                let at = next(lines.len() + 1);
                match next(3) {
                    0 => lines.insert(at, format!("new {round}\n")),
                    1 if at < lines.len() => {
                        lines.remove(at);
                    }
                    _ if at < lines.len() => lines[at] = format!("edited {round}\n"),
                    _ => lines.push("tail".into()),
                }
            }
            let old: String = base.concat();
            let mut new: String = lines.concat();
            if round % 5 == 0 {
                new.pop();
            }
            assert_eq!(count_lines(&old, &new), whole(&old, &new), "{new:?}");
            assert_eq!(count_lines(&new, &old), whole(&new, &old), "{new:?}");
            assert_eq!(
                diff(&old, &new, "a", "b"),
                similar_diff(&old, &new),
                "{new:?}"
            );
            assert_eq!(
                diff(&new, &old, "a", "b"),
                similar_diff(&new, &old),
                "{new:?}"
            );
        }
        for (a, b) in [
            ("", ""),
            ("x", "x\n"),
            ("x\n", "x\ny\n"),
            ("a\nb", "a\nc"),
            ("same\n", "same\n"),
            ("ab\ncd\n", "ab\nxcd\n"),
            ("é\nü\n", "é\nö\n"),
        ] {
            assert_eq!(count_lines(a, b), whole(a, b), "{a:?} -> {b:?}");
            assert_eq!(diff(a, b, "a", "b"), similar_diff(a, b), "{a:?} -> {b:?}");
        }
    }

    /// The diff as similar writes it over the whole texts (what `diff` did before it left the
    /// common ends out).
    fn similar_diff(old: &str, new: &str) -> Diff {
        let d = line_diff(old, new);
        let (added, removed) = counts(d.ops());
        let unified = d
            .unified_diff()
            .context_radius(3)
            .header("a", "b")
            .to_string();
        Diff {
            unified,
            added,
            removed,
        }
    }

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

    /// Past the size where texts are diffed a window at a time, the diff is the one a whole
    /// Patience gives, in the same format, for edits spread through the page.
    #[test]
    fn huge_texts_diff_as_a_whole_diff_would() {
        let page = |edit: &str| -> String {
            (0..120_000)
                .map(|i| match i % 50 {
                    7 => format!("row {i} of the page {edit}\n"),
                    _ => format!("row {i} of the page\n"),
                })
                .collect()
        };
        let (mut a, mut b) = (page("v1"), page("v2"));
        a.push_str("last line");
        b.push_str("last line changed");
        assert!(a.len() + b.len() > WHOLE_DIFF_BYTES);
        let whole = line_diff(&a, &b);
        let expected = whole
            .unified_diff()
            .context_radius(3)
            .header("o", "n")
            .to_string();
        let d = diff(&a, &b, "o", "n");
        assert_eq!((d.added, d.removed), (2_401, 2_401));
        assert_eq!(count_lines(&a, &b), (2_401, 2_401));
        assert!(
            d.unified == expected,
            "the windowed diff differs from the whole one"
        );
    }

    #[test]
    fn truncation_notes_the_rest() {
        let t = truncate_lines("1\n2\n3\n4\n", 2);
        assert_eq!(t, "1\n2\n... 2 more lines\n");
    }

    /// What is left is where the texts differ, in whole lines, and the rest is common.
    #[test]
    fn differing_lines_cut_the_common_lines() {
        let long = "x".repeat(200);
        let cases = [
            ("a\nb\nc\n", "a\nB\nc\n", ("b\n", "B\n")),
            ("a\nb\nc", "a\nb\nc", ("", "")),
            ("", "new", ("", "new")),
            ("one line", "one lime", ("one line", "one lime")),
            ("a\nb", "a\nb\nc", ("b", "b\nc")),
            ("a\nb\nc", "c", ("a\nb\nc", "c")),
            ("x\ny\n", "x\ny\nz\n", ("", "z\n")),
            ("ab\nab\n", "ab\n", ("ab\n", "")),
        ];
        for (old, new, want) in cases {
            assert_eq!(differing_lines(old, new), want, "{old:?} -> {new:?}");
        }
        let (old, new) = (
            format!("{long}\n{long}1\n{long}\n{long}\n"),
            format!("{long}\n{long}2\n{long}\n{long}\n"),
        );
        assert_eq!(
            differing_lines(&old, &new),
            (format!("{long}1\n").as_str(), format!("{long}2\n").as_str())
        );
        // Counted on those lines, a change counts as on the whole texts: a line keeps its
        // newline, so a line moved next to the cut is the same line on both sides.
        let pairs = [
            ("h\nA\nB\nt\n", "h\nB\nC\nt\n"),
            ("h\nA\nB\nt", "h\nB\nt"),
            ("h\n- x\nkeep\n- x\nt\n", "h\n- y\nkeep\nt\n"),
            ("a\nb", "a\nb\nc"),
            ("b\n", "a\nb\n"),
        ];
        for (old, new) in pairs {
            let (a, b) = differing_lines(old, new);
            assert_eq!(
                count_lines(a, b),
                count_lines(old, new),
                "{old:?} -> {new:?}"
            );
        }
        // Around multi-byte characters, cuts fall on line ends only.
        assert_eq!(
            differing_lines("\u{e9}\n\u{e9}a", "\u{e9}\n\u{e8}a"),
            ("\u{e9}a", "\u{e8}a")
        );
    }
}
