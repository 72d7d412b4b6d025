//! When each watch is due: a cron expression (croner: five fields, `@hourly`, `@daily`, ...)
//! or `every = "15m"`, in the local time zone or a named one; a deterministic per-watch jitter
//! for the daemon; and a longer interval for a watch that keeps failing.
//!
//! Everything here takes the time as an argument, so the arithmetic is tested with an
//! injected clock, never with sleeps.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Datelike, Local, TimeZone, Utc};
use croner::Cron;

/// Used when neither the watch nor `[defaults]` sets `schedule` or `every`.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(30 * 60);

/// The longest a failing watch's interval grows to.
const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);

/// The shortest `every`: faster polling is a flood to the vendor, not early warning.
pub const MIN_EVERY: Duration = Duration::from_secs(1);

/// The longest `every` (a year and a day): anything longer never fires in practice.
pub const MAX_EVERY: Duration = Duration::from_secs(366 * 24 * 3600);

/// How often a watch runs.
#[derive(Debug, Clone)]
pub enum Schedule {
    Cron { cron: Box<Cron>, text: String },
    Every(Duration),
}

/// Where cron expressions are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Zone {
    #[default]
    Local,
    Named(chrono_tz::Tz),
}

impl Schedule {
    /// Parses a cron expression; a clear message on error, and on a line that never fires
    /// (`0 0 31 2 *`: February has no 31st).
    pub fn cron(text: &str) -> Result<Schedule, String> {
        let trimmed = text.trim();
        let fields = trimmed.split_whitespace().count();
        if !trimmed.starts_with('@') && !(5..=7).contains(&fields) {
            return Err(format!(
                "invalid schedule `{trimmed}`: a cron line has five fields (minute hour day month weekday), like \"*/15 * * * *\"; this one has {fields}. Or write @hourly / @daily"
            ));
        }
        let cron = Cron::from_str(trimmed).map_err(|e| {
            format!(
                "invalid schedule `{trimmed}`: {e}; write five fields like \"*/15 * * * *\" (minute hour day month weekday), or @hourly / @daily"
            )
        })?;
        if cron.find_next_occurrence(&Utc::now(), false).is_err() {
            return Err(format!(
                "schedule `{trimmed}` never fires (no such date): check the day and month fields"
            ));
        }
        Ok(Schedule::Cron {
            cron: Box::new(cron),
            text: trimmed.to_string(),
        })
    }

    /// `every = "15m"`: at least [`MIN_EVERY`], at most [`MAX_EVERY`].
    pub fn every(d: Duration) -> Result<Schedule, String> {
        if d < MIN_EVERY {
            return Err("`every` is too often: at least 1s (a check a second is already a lot for a vendor's server)".into());
        }
        if d > MAX_EVERY {
            return Err(
                "`every` is too long: at most 366d; for rarer checks run `forewarn check` yourself"
                    .into(),
            );
        }
        Ok(Schedule::Every(d))
    }

    /// The first fire time strictly after `t` (none when it would overflow the calendar).
    pub fn next_after(&self, t: DateTime<Utc>, zone: Zone) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(d) => chrono::Duration::from_std(*d)
                .ok()
                .and_then(|d| t.checked_add_signed(d)),
            // Far outside the calendar a cron line means nothing (and converting such a
            // time to a zone panics).
            Schedule::Cron { .. } if !(1..=9999).contains(&t.year()) => None,
            Schedule::Cron { cron, .. } => match zone {
                Zone::Local => next_in(cron, &t.with_timezone(&Local)),
                Zone::Named(tz) => next_in(cron, &t.with_timezone(&tz)),
            },
        }
    }

    /// The period around `t`: the gap between the next two fire times.
    pub fn period(&self, t: DateTime<Utc>, zone: Zone) -> Duration {
        match self {
            Schedule::Every(d) => *d,
            Schedule::Cron { .. } => {
                let a = self.next_after(t, zone);
                let b = a.and_then(|a| self.next_after(a, zone));
                match (a, b) {
                    (Some(a), Some(b)) => (b - a).to_std().unwrap_or(DEFAULT_EVERY),
                    _ => DEFAULT_EVERY,
                }
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Schedule::Every(d) => format!("every {}", humantime::format_duration(*d)),
            Schedule::Cron { text, .. } => text.clone(),
        }
    }
}

fn next_in<Tz: TimeZone>(cron: &Cron, t: &DateTime<Tz>) -> Option<DateTime<Utc>>
where
    Tz::Offset: Copy,
{
    cron.find_next_occurrence(t, false)
        .ok()
        .map(|n| n.with_timezone(&Utc))
}

/// A watch's schedule in its zone.
#[derive(Debug, Clone)]
pub struct Timing {
    pub schedule: Schedule,
    pub zone: Zone,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            schedule: Schedule::Every(DEFAULT_EVERY),
            zone: Zone::Local,
        }
    }
}

impl Timing {
    /// When a watch last checked at `last` (never: `None`) with `failures` failures in a row
    /// is due next. Missed fire times collapse into one: the answer is the first fire time
    /// after the last check, however long ago that was.
    pub fn due(&self, last: Option<DateTime<Utc>>, failures: u32) -> DateTime<Utc> {
        let Some(last) = last else {
            return DateTime::<Utc>::MIN_UTC;
        };
        // A watch failing for a while backs off: each failure after the second doubles the
        // wait (capped), so a dead vendor page is not hammered; one success resets it.
        let extra = if failures >= 3 {
            let period = self.schedule.period(last, self.zone);
            let factor = 2u32.saturating_pow((failures - 2).min(10)) - 1;
            period.saturating_mul(factor).min(MAX_BACKOFF)
        } else {
            Duration::ZERO
        };
        let from = add(last, extra);
        self.schedule
            .next_after(from, self.zone)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// A deterministic offset for one watch, up to a tenth of its period (at most 5 minutes),
    /// so that 200 watches on `*/15` do not all fire in the same second.
    pub fn jitter(&self, name: &str, around: DateTime<Utc>) -> Duration {
        let period = self.schedule.period(around, self.zone);
        let span = (period / 10).min(Duration::from_secs(300));
        if span.is_zero() {
            return Duration::ZERO;
        }
        let h = blake3::hash(name.as_bytes());
        let n = u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"));
        Duration::from_millis(n % span.as_millis().max(1) as u64)
    }
}

/// Whether a watch is due at `now` for `check --due`. A little slack (a quarter of the period,
/// at most 30 s) keeps `every = "15m"` from slipping a whole cron tick when the last check
/// finished a moment after the tick that started it.
pub fn is_due(
    timing: &Timing,
    last: Option<DateTime<Utc>>,
    failures: u32,
    now: DateTime<Utc>,
) -> bool {
    due_for_cron(timing, last, failures, now) <= now
}

/// The moment `check --due` starts counting a watch as due (its due time less the slack).
pub fn due_for_cron(
    timing: &Timing,
    last: Option<DateTime<Utc>>,
    failures: u32,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let due = timing.due(last, failures);
    if due == DateTime::<Utc>::MIN_UTC {
        return due;
    }
    let slack = (timing.schedule.period(now, timing.zone) / 4).min(Duration::from_secs(30));
    chrono::Duration::from_std(slack)
        .ok()
        .and_then(|s| due.checked_sub_signed(s))
        .unwrap_or(due)
}

/// `t - d`, saturating at the start of the calendar instead of overflowing.
pub fn sub(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `t + d`, saturating at the end of the calendar instead of overflowing.
pub fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The current time, or `FOREWARN_NOW` (RFC 3339) when set: an injected clock for tests and
/// for asking "what would be due at ...".
pub fn now() -> DateTime<Utc> {
    // Read once: the environment's lock, taken on every check, had the threads of a pass
    // waking each other up.
    static INJECTED: std::sync::OnceLock<Option<DateTime<Utc>>> = std::sync::OnceLock::new();
    INJECTED
        .get_or_init(|| {
            std::env::var("FOREWARN_NOW")
                .ok()
                .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
                .map(|t| t.with_timezone(&Utc))
        })
        .unwrap_or_else(Utc::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn berlin(expr: &str) -> Timing {
        Timing {
            schedule: Schedule::cron(expr).unwrap(),
            zone: Zone::Named(chrono_tz::Europe::Berlin),
        }
    }

    #[test]
    fn five_field_cron_and_aliases() {
        let utc = |expr| Timing {
            schedule: Schedule::cron(expr).unwrap(),
            zone: Zone::Named(chrono_tz::UTC),
        };
        let last = t("2026-11-21T10:07:00Z");
        assert_eq!(
            utc("*/15 * * * *").due(Some(last), 0),
            t("2026-11-21T10:15:00Z")
        );
        assert_eq!(utc("@hourly").due(Some(last), 0), t("2026-11-21T11:00:00Z"));
        assert_eq!(utc("@daily").due(Some(last), 0), t("2026-11-22T00:00:00Z"));
        // Weekday 1 is Monday (2026-11-23), not Sunday.
        assert_eq!(
            utc("0 9 * * 1").due(Some(last), 0),
            t("2026-11-23T09:00:00Z")
        );
        assert!(Schedule::cron("*/15 * * *").is_err());
        assert!(Schedule::cron("61 * * * *").is_err());
    }

    #[test]
    fn never_checked_is_due_now_and_missed_fires_run_once() {
        let every = Timing {
            schedule: Schedule::Every(Duration::from_secs(900)),
            zone: Zone::Local,
        };
        assert!(every.due(None, 0) < t("2000-01-01T00:00:00Z"));
        // Asleep for a day: due once, at the first fire time after the last check.
        let last = t("2026-11-20T10:00:00Z");
        let due = every.due(Some(last), 0);
        assert_eq!(due, t("2026-11-20T10:15:00Z"));
        // After that one run, the next is a period after it, not the backlog.
        assert_eq!(
            every.due(Some(t("2026-11-21T10:00:03Z")), 0),
            t("2026-11-21T10:15:03Z")
        );
    }

    #[test]
    fn daylight_saving_changes_in_a_named_zone() {
        // Berlin springs forward on 2026-03-29: 02:00 local does not exist that day.
        let daily_2am = berlin("0 2 * * *");
        // A fire time in the gap runs once, at the first instant after it (03:00 CEST), as
        // cron does; not skipped for the day, not run twice.
        let due = daily_2am.due(Some(t("2026-03-28T01:30:00Z")), 0);
        assert_eq!(due, t("2026-03-29T01:00:00Z"));
        assert_eq!(daily_2am.due(Some(due), 0), t("2026-03-30T00:00:00Z"));
        // 09:00 Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
        let nine = berlin("0 9 * * *");
        assert_eq!(
            nine.due(Some(t("2026-03-27T12:00:00Z")), 0),
            t("2026-03-28T08:00:00Z")
        );
        assert_eq!(
            nine.due(Some(t("2026-03-29T00:00:00Z")), 0),
            t("2026-03-29T07:00:00Z")
        );
        // Falling back on 2026-10-25: 02:30 happens twice; it fires once.
        let half_past_two = berlin("30 2 * * *");
        let first = half_past_two.due(Some(t("2026-10-24T12:00:00Z")), 0);
        let second = half_past_two.due(Some(first), 0);
        assert!((second - first).num_hours() >= 23, "{first} then {second}");
    }

    #[test]
    fn failing_watches_back_off_and_recover() {
        let every = Timing {
            schedule: Schedule::Every(Duration::from_secs(600)),
            zone: Zone::Local,
        };
        let last = t("2026-11-21T10:00:00Z");
        assert_eq!(every.due(Some(last), 2), t("2026-11-21T10:10:00Z"));
        assert_eq!(every.due(Some(last), 3), t("2026-11-21T10:20:00Z"));
        assert_eq!(every.due(Some(last), 4), t("2026-11-21T10:40:00Z"));
        assert_eq!(
            every.due(Some(last), 30),
            t("2026-11-22T10:10:00Z"),
            "capped"
        );
        assert_eq!(
            every.due(Some(last), 0),
            t("2026-11-21T10:10:00Z"),
            "success resets"
        );
    }

    #[test]
    fn jitter_is_deterministic_and_spreads_watches() {
        let quarter = berlin("*/15 * * * *");
        let at = t("2026-11-21T10:00:00Z");
        assert_eq!(quarter.jitter("a", at), quarter.jitter("a", at));
        let seconds: std::collections::HashSet<u64> = (0..200)
            .map(|i| quarter.jitter(&format!("watch-{i}"), at).as_secs())
            .collect();
        assert!(
            seconds.len() > 60,
            "200 watches fell into {} seconds",
            seconds.len()
        );
        assert!(quarter.jitter("a", at) < Duration::from_secs(90));
    }

    #[test]
    fn a_cron_line_with_the_wrong_number_of_fields_says_so() {
        let e = Schedule::cron("*/15 * * *").unwrap_err();
        assert!(
            e.contains("five fields") && e.contains("this one has 4"),
            "{e}"
        );
        assert!(!e.contains("Pattern must have"), "{e}");
    }

    #[test]
    fn schedules_that_never_fire_or_flood_are_refused() {
        let never = Schedule::cron("0 0 31 2 *").unwrap_err();
        assert!(never.contains("never fires"), "{never}");
        assert!(Schedule::cron("0 0 29 2 *").is_ok(), "leap days come");
        let fast = Schedule::every(Duration::from_millis(999)).unwrap_err();
        assert!(fast.contains("at least 1s"), "{fast}");
        let slow = Schedule::every(MAX_EVERY + Duration::from_secs(1)).unwrap_err();
        assert!(slow.contains("at most 366d"), "{slow}");
        assert!(Schedule::every(MIN_EVERY).is_ok() && Schedule::every(MAX_EVERY).is_ok());
    }

    /// A cron field: `*`, a number, a range or a step, in the field's own bounds.
    fn field(lo: u32, hi: u32) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            Just("*".to_string()),
            (lo..=hi).prop_map(|n| n.to_string()),
            (lo..=hi, lo..=hi).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
            (1..=hi.max(1)).prop_map(|n| format!("*/{n}")),
        ]
    }

    proptest::proptest! {
        /// Whatever the schedule (even one built past the load-time checks) and whenever the
        /// last check, the arithmetic saturates: nothing here panics, and a watch is never
        /// due before its last check.
        #[test]
        fn schedule_arithmetic_never_overflows(
            secs in proptest::prelude::any::<u64>(),
            cron in (field(0, 59), field(0, 23), field(1, 31), field(1, 12), field(0, 6)),
            last_ms in proptest::prelude::any::<i64>(),
            failures in proptest::prelude::any::<u32>(),
        ) {
            let (m, h, dom, mon, dow) = cron;
            let last = DateTime::<Utc>::from_timestamp_millis(last_ms / 16);
            let mut timings = vec![Timing {
                schedule: Schedule::Every(Duration::from_secs(secs)),
                zone: Zone::Local,
            }];
            if let Ok(c) = Schedule::cron(&format!("{m} {h} {dom} {mon} {dow}")) {
                timings.push(Timing { schedule: c, zone: Zone::Named(chrono_tz::Asia::Kolkata) });
            }
            for timing in &timings {
                let due = timing.due(last, failures);
                if let Some(last) = last {
                    proptest::prop_assert!(due >= last, "{due} before {last}");
                }
                let _ = timing.jitter("w", due);
                let _ = due_for_cron(timing, last, failures, due);
                let _ = add(due, timing.schedule.period(due, timing.zone));
            }
        }
    }
}
