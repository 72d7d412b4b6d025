//! Line diffs of huge texts, a window at a time.
//!
//! similar's Patience over a whole 50 MB page builds hash tables of every line of both sides
//! (77 MB of them for 500,000 lines), more than the two texts themselves. Here the texts are
//! walked from the top: a run of equal lines is taken as it is, and where they part, a window
//! of the next lines of each side is diffed with Patience. Its edits are kept up to the last
//! run of equal lines in the window's first half (an anchor), and the walk goes on from there.
//! A window with no anchor grows until it finds one or holds the rest of both texts (then it
//! is the whole diff of the rest). For edits spread through a document this gives the same
//! diff as one Patience over the whole; what it can do worse is a block moved further than a
//! window, which is told as removed here and added there.

use std::time::Instant;

use similar::{Algorithm, DiffOp};

/// The first window, in lines of each side.
const WINDOW: usize = 2_048;
/// Past this a window stops growing and takes the first equal run it has as the anchor.
const MAX_WINDOW: usize = 65_536;
/// An anchor is a run of at least this many equal lines: a lone blank line or `}` shared by
/// an inserted block and the text after it is no anchor.
const ANCHOR: usize = 3;

/// The edits from `a` to `b`, as similar's ops (indexes into the two line slices).
pub fn ops(a: &[&str], b: &[&str], deadline: Instant) -> Vec<DiffOp> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let same = a[i..]
            .iter()
            .zip(&b[j..])
            .take_while(|(x, y)| x == y)
            .count();
        if same > 0 {
            push(&mut out, equal(i, j, same));
            (i, j) = (i + same, j + same);
            continue;
        }
        let (window, kept) = next_window(a, b, (i, j), deadline);
        for op in &window[..kept] {
            push(&mut out, shifted(op, i, j));
        }
        let last = window[kept - 1];
        (i, j) = (i + last.old_range().end, j + last.new_range().end);
    }
    out
}

/// The diff of the window at `(i, j)` and how many of its ops to keep: grown until it has an
/// anchor in its first half or reaches the end of both texts. Keeps at least one op that
/// moves past a line.
fn next_window(
    a: &[&str],
    b: &[&str],
    (i, j): (usize, usize),
    deadline: Instant,
) -> (Vec<DiffOp>, usize) {
    let mut size = WINDOW;
    loop {
        let (oe, ne) = ((i + size).min(a.len()), (j + size).min(b.len()));
        let mut window = similar::capture_diff_slices_deadline(
            Algorithm::Patience,
            &a[i..oe],
            &b[j..ne],
            Some(deadline),
        );
        if oe == a.len() && ne == b.len() {
            let n = window.len();
            return (window, n);
        }
        if let Some(k) = anchored(&window, size / 2, ANCHOR) {
            return (window, k);
        }
        if size >= MAX_WINDOW {
            // Nothing anchors in so many lines: the first equal line does, else the first
            // halves of the two windows are told as replaced.
            if let Some(k) = anchored(&window, size, 1) {
                return (window, k);
            }
            let (dl, il) = ((oe - i).min(size / 2), (ne - j).min(size / 2));
            window = vec![change(0, dl, 0, il)];
            return (window, 1);
        }
        size *= 2;
    }
}

/// How many ops to keep: through the last run of at least `min` equal lines that starts
/// before `half` on both sides, else through the first such run anywhere.
fn anchored(window: &[DiffOp], half: usize, min: usize) -> Option<usize> {
    let anchor = |op: &DiffOp| matches!(op, DiffOp::Equal { len, .. } if *len >= min);
    window
        .iter()
        .rposition(|op| anchor(op) && op.old_range().start < half && op.new_range().start < half)
        .or_else(|| window.iter().position(anchor))
        .map(|p| p + 1)
}

fn equal(old_index: usize, new_index: usize, len: usize) -> DiffOp {
    DiffOp::Equal {
        old_index,
        new_index,
        len,
    }
}

/// Lines `old_len` from `old_index` replaced by `new_len` from `new_index`.
fn change(old_index: usize, old_len: usize, new_index: usize, new_len: usize) -> DiffOp {
    match (old_len, new_len) {
        (_, 0) => DiffOp::Delete {
            old_index,
            old_len,
            new_index,
        },
        (0, _) => DiffOp::Insert {
            old_index,
            new_index,
            new_len,
        },
        _ => DiffOp::Replace {
            old_index,
            old_len,
            new_index,
            new_len,
        },
    }
}

/// A window's op, moved to where the window starts.
fn shifted(op: &DiffOp, i: usize, j: usize) -> DiffOp {
    let (o, n) = (op.old_range(), op.new_range());
    match op {
        DiffOp::Equal { len, .. } => equal(o.start + i, n.start + j, *len),
        _ => change(o.start + i, o.len(), n.start + j, n.len()),
    }
}

/// Appends `op`, joining it to an equal run it continues.
fn push(out: &mut Vec<DiffOp>, op: DiffOp) {
    if let (Some(DiffOp::Equal { len, .. }), DiffOp::Equal { len: more, .. }) = (out.last_mut(), op)
    {
        *len += more;
        return;
    }
    out.push(op);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<&str> {
        text.split_inclusive('\n').collect()
    }

    /// (added, removed) of the windowed diff, checked to rebuild `b` from `a`.
    fn counted(a: &str, b: &str) -> (usize, usize) {
        let (la, lb) = (lines(a), lines(b));
        let ops = ops(
            &la,
            &lb,
            Instant::now() + std::time::Duration::from_secs(10),
        );
        let mut rebuilt = String::new();
        let (mut added, mut removed) = (0, 0);
        for op in &ops {
            match op {
                DiffOp::Equal { .. } => {
                    let (o, n) = (op.old_range(), op.new_range());
                    assert_eq!(la[o.clone()], lb[n], "equal lines are equal");
                    rebuilt.extend(la[o].iter().copied());
                }
                _ => {
                    removed += op.old_range().len();
                    added += op.new_range().len();
                    rebuilt.extend(lb[op.new_range()].iter().copied());
                }
            }
        }
        assert_eq!(rebuilt, b, "the ops rebuild the new text");
        (added, removed)
    }

    fn rows(n: usize, edit: impl Fn(usize) -> Option<String>) -> String {
        (0..n)
            .map(|i| edit(i).unwrap_or_else(|| format!("row {i} of the page\n")))
            .collect()
    }

    #[test]
    fn spread_edits_are_each_one_line() {
        let a = rows(100_000, |_| None);
        let b = rows(100_000, |i| {
            (i % 50 == 7).then(|| format!("row {i} edited\n"))
        });
        assert_eq!(counted(&a, &b), (2_000, 2_000));
    }

    #[test]
    fn a_block_longer_than_a_window_is_only_added() {
        let a = rows(20_000, |_| None);
        let mut b = rows(10_000, |_| None);
        b.extend((0..9_000).map(|k| format!("new line {k}\n")));
        b.push_str(&a[a.find("row 10000 ").unwrap()..]);
        assert_eq!(counted(&a, &b), (9_000, 0));
        assert_eq!(counted(&b, &a), (0, 9_000));
    }

    #[test]
    fn blank_lines_in_an_inserted_block_do_not_anchor_it() {
        let a = rows(10_000, |i| (i % 10 == 0).then(|| "\n".to_string()));
        let mut b = a[..a.find("row 5001 ").unwrap()].to_string();
        b.extend((0..5_000).map(|k| {
            if k % 7 == 0 {
                "\n".into()
            } else {
                format!("added {k}\n")
            }
        }));
        b.push_str(&a[a.find("row 5001 ").unwrap()..]);
        assert_eq!(counted(&a, &b), (5_000, 0));
    }

    #[test]
    fn wholly_different_texts_and_empty_sides() {
        let a = rows(70_000, |_| None);
        let b: String = (0..70_000).map(|k| format!("other {k}\n")).collect();
        assert_eq!(counted(&a, &b), (70_000, 70_000));
        assert_eq!(counted("", &b), (70_000, 0));
        assert_eq!(counted(&a, ""), (0, 70_000));
        assert_eq!(counted("x", "x"), (0, 0));
    }
}
