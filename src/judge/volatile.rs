//! Volatile watches. A page that changes on most checks, or whose two immediate fetches
//! differ in most of their lines (a random body, a feed of ads), is itself the news: it is
//! told once (`volatile`, with what to do), and its later changes are stored and reported but
//! not alerted, until it settles.

/// The changes of a watch's last checks: bit 0 the newest, 1 = changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recent {
    pub changes: u16,
    /// How many checks the bits hold (at most 16).
    pub checks: u8,
}

/// The checks looked at.
pub const WINDOW: u8 = 8;
/// Changed on this many of the last [`WINDOW`] checks: volatile. A busy page that changes on
/// every other check is not.
pub const ENTER: u32 = 7;
/// Changed on at most this many of them: settled again.
pub const LEAVE: u32 = 2;

impl Recent {
    /// With one more check.
    pub fn push(self, changed: bool) -> Recent {
        Recent {
            changes: (self.changes << 1) | u16::from(changed),
            checks: (self.checks + 1).min(16),
        }
    }

    /// How many of the last `n` checks changed.
    pub fn changed_of_last(self, n: u8) -> u32 {
        let n = n.min(self.checks).min(16);
        let mask = if n >= 16 { u16::MAX } else { (1u16 << n) - 1 };
        (self.changes & mask).count_ones()
    }
}

/// What this check does to the watch's volatility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Volatility {
    /// Not volatile, and still not.
    Steady,
    /// Volatile from this check on, for this reason.
    Enters(String),
    /// Volatile, and still.
    Stays,
    /// Was volatile; settled.
    Leaves,
}

/// Judges volatility from the recent checks (this one included) and `churn`: the two
/// immediate fetches of this check differed in most of their lines.
pub fn judge(was_volatile: bool, recent: Recent, churn: bool) -> Volatility {
    let changed = recent.changed_of_last(WINDOW);
    let full = recent.checks >= WINDOW;
    match was_volatile {
        false if churn => {
            Volatility::Enters("two fetches moments apart differ in most of their lines".into())
        }
        false if full && changed >= ENTER => {
            Volatility::Enters(format!("changed on {changed} of its last {WINDOW} checks"))
        }
        false => Volatility::Steady,
        true if full && changed <= LEAVE && !churn => Volatility::Leaves,
        true => Volatility::Stays,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(changes: &[bool]) -> Recent {
        changes.iter().fold(Recent::default(), |r, &c| r.push(c))
    }

    #[test]
    fn enters_on_most_checks_or_at_once_on_churn_and_leaves_when_settled() {
        assert_eq!(
            judge(false, after(&[true; 7]), false),
            Volatility::Steady,
            "too few checks"
        );
        let busy = after(&[false, true, true, true, true, true, true, true]);
        assert!(matches!(judge(false, busy, false), Volatility::Enters(_)));
        let some = after(&[true, false, true, true, false, true, true, true]);
        assert_eq!(
            judge(false, some, false),
            Volatility::Steady,
            "6 of 8 is a busy page"
        );
        assert!(matches!(
            judge(false, after(&[true]), true),
            Volatility::Enters(_)
        ));
        assert_eq!(judge(true, busy, false), Volatility::Stays);
        let mut calm = [false; 16];
        calm[..8].fill(true);
        calm[15] = true;
        let calm = after(&calm);
        assert_eq!(calm.changed_of_last(WINDOW), 1);
        assert_eq!(judge(true, calm, false), Volatility::Leaves);
        assert_eq!(
            judge(true, calm, true),
            Volatility::Stays,
            "churn again: still volatile"
        );
        assert_eq!(after(&[true; 40]).checks, 16);
    }
}
