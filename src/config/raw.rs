//! The watchlist as written: serde types that mirror the TOML, before defaults are applied.
//! Values that toml can place are validated here, by self-validating newtypes, so a bad one is
//! reported at its key.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::channels::RawChannel;
use super::types::{ByteSize, DurationStr, OneOrMany, UrlTemplate};
use super::{Kind, version};

/// A count that must be at least 1, named by its key in the error.
macro_rules! at_least_one {
    ($(#[$doc:meta])* $name:ident, $key:literal, $why:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
        #[serde(try_from = "u32")]
        pub(super) struct $name(pub u32);

        impl TryFrom<u32> for $name {
            type Error = String;
            fn try_from(n: u32) -> Result<Self, String> {
                if n == 0 {
                    return Err(concat!("`", $key, "` must be at least 1", $why).into());
                }
                Ok($name(n))
            }
        }
    };
}

at_least_one!(
    /// `keep`: snapshots kept per watch.
    Keep, "keep", ""
);
at_least_one!(
    /// `confirm`: consecutive checks a change must be seen on.
    Confirm, "confirm", " (1 reports a change at once)"
);
at_least_one!(
    /// `failures_before_alert`: consecutive failures before a watch is reported failing.
    FailuresBeforeAlert, "failures_before_alert", ""
);
at_least_one!(
    /// `[hosts."..."] concurrency`: requests in flight at once to the host.
    Concurrency, "concurrency", ""
);

/// `masks = true | false | ["timestamps", ...]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum MasksSetting {
    All(bool),
    Some(Vec<String>),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    pub schedule: Option<Spanned<String>>,
    pub every: Option<Spanned<DurationStr>>,
    pub timezone: Option<Spanned<String>>,
    pub retries: Option<u32>,
    pub masks: Option<Spanned<MasksSetting>>,
    pub confirm: Option<Confirm>,
    pub confirm_refetch: Option<bool>,
    /// Refuse private, loopback and link-local addresses (cloud metadata at 169.254.169.254).
    pub deny_private: Option<bool>,
    /// `browser = true`: load the page in headless Chromium and read its rendered DOM.
    pub browser: Option<bool>,
    /// Browser watches sharing one login (a browser context whose cookies are kept).
    pub session: Option<Spanned<String>>,
    /// A command run after a detected change: does the integration still work?
    pub verify: Option<Spanned<OneOrMany<String>>>,
    pub verify_timeout: Option<Spanned<DurationStr>>,
    pub verify_on: Option<Spanned<Vec<String>>>,
    /// `escalate = "NAME"`: loud events also go through `[escalations.NAME]`.
    pub escalate: Option<Spanned<String>>,
    /// A slower answer counts as degraded.
    pub max_response_time: Option<DurationStr>,
    pub structure: Option<bool>,
    pub keep_for: Option<DurationStr>,
    pub timeout: Option<DurationStr>,
    pub keep: Option<Keep>,
    pub max_size: Option<ByteSize>,
    pub headers: Option<BTreeMap<String, Spanned<String>>>,
    pub ignore: Option<Spanned<OneOrMany<String>>>,
    pub notify: Option<Spanned<OneOrMany<String>>>,
    pub severity: Option<crate::event::Severity>,
    pub failures_before_alert: Option<FailuresBeforeAlert>,
    pub remind_every: Option<DurationStr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWatch {
    pub name: Spanned<String>,
    pub url: Option<Spanned<UrlTemplate>>,
    /// `enabled = false`: kept in the watchlist (and its name reserved), never checked.
    pub enabled: Option<bool>,
    /// A browser watch reads the page once this CSS selector is there.
    pub wait_for: Option<Spanned<String>>,
    /// A browser watch's login: steps run before the page is read.
    pub steps: Option<Spanned<Vec<RawStep>>>,
    pub logged_in: Option<Spanned<String>>,
    pub track_requests: Option<Spanned<bool>>,
    /// `skip_unchanged_shell = true`: a conditional GET of the page first; no render on a 304.
    pub skip_unchanged_shell: Option<Spanned<bool>>,
    /// `screenshot = true`: a PNG of the rendered page is kept with each stored snapshot.
    pub screenshot: Option<Spanned<bool>>,
    /// A command run after a detected change: does the integration still work?
    pub verify: Option<Spanned<OneOrMany<String>>>,
    pub verify_timeout: Option<Spanned<DurationStr>>,
    pub verify_on: Option<Spanned<Vec<String>>>,
    /// `escalate = "NAME"`: loud events also go through `[escalations.NAME]`.
    pub escalate: Option<Spanned<String>>,
    /// A slower answer counts as degraded.
    pub max_response_time: Option<DurationStr>,
    /// Browser watches sharing one login (a browser context whose cookies are kept).
    pub session: Option<Spanned<String>>,
    #[serde(default)]
    pub kind: Kind,
    pub select: Option<Spanned<OneOrMany<String>>>,
    pub remove: Option<Spanned<OneOrMany<String>>>,
    pub ignore: Option<Spanned<OneOrMany<String>>>,
    pub headers: Option<BTreeMap<String, Spanned<String>>>,
    pub timeout: Option<DurationStr>,
    pub keep: Option<Keep>,
    pub keep_for: Option<DurationStr>,
    pub max_size: Option<ByteSize>,
    pub masks: Option<Spanned<MasksSetting>>,
    pub confirm: Option<Confirm>,
    pub confirm_refetch: Option<bool>,
    /// Refuse private, loopback and link-local addresses (cloud metadata at 169.254.169.254).
    pub deny_private: Option<bool>,
    /// `browser = true`: load the page in headless Chromium and read its rendered DOM.
    pub browser: Option<bool>,
    pub schedule: Option<Spanned<String>>,
    pub every: Option<Spanned<DurationStr>>,
    pub timezone: Option<Spanned<String>>,
    pub retries: Option<u32>,
    pub expect: Option<RawExpect>,
    pub track_assets: Option<bool>,
    /// `structure = false`: compare a page's text only, not its ids, classes and test ids.
    pub structure: Option<bool>,
    pub insecure: Option<bool>,
    pub ignore_paths: Option<Spanned<OneOrMany<String>>>,
    // kind = "version"
    pub source: Option<Spanned<version::Source>>,
    pub package: Option<Spanned<String>>,
    pub repo: Option<Spanned<String>>,
    pub registry: Option<Spanned<UrlTemplate>>,
    pub prerelease: Option<bool>,
    pub include: Option<Spanned<String>>,
    pub prefix: Option<String>,
    pub tags: Option<bool>,
    pub pattern: Option<Spanned<String>>,
    pub pointer: Option<String>,
    #[serde(rename = "match")]
    pub match_: Option<Spanned<String>>,
    pub exclude: Option<Spanned<String>>,
    pub max_entries: Option<Spanned<u32>>,
    pub notify: Option<Spanned<OneOrMany<String>>>,
    pub severity: Option<crate::event::Severity>,
    pub failures_before_alert: Option<FailuresBeforeAlert>,
    pub remind_every: Option<DurationStr>,
}

/// One of `steps`: exactly one action (`fill` with its `value`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub goto: Option<String>,
    pub fill: Option<String>,
    pub value: Option<String>,
    pub click: Option<String>,
    pub press: Option<String>,
    pub wait_for: Option<String>,
    pub wait: Option<DurationStr>,
}

/// `expect.selectors`, `expect.text`, `expect.absent`, `expect.status`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    pub selectors: Option<Spanned<OneOrMany<String>>>,
    pub text: Option<OneOrMany<String>>,
    pub absent: Option<OneOrMany<String>>,
    pub status: Option<u16>,
    pub paths: Option<Spanned<OneOrMany<String>>>,
}

/// The file's top level, without `watch` (each watch is read on its own, so that one bad
/// watch does not hide the problems of the next).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    /// `[defaults]` and `[hosts]` are read on their own ([`RawDefaults`], [`RawHost`]), so a
    /// bad value in one does not hide the problems of the rest; here they are only known keys.
    #[allow(dead_code)]
    pub defaults: Option<serde::de::IgnoredAny>,
    #[allow(dead_code)]
    pub hosts: Option<serde::de::IgnoredAny>,
    pub heartbeat_url: Option<Spanned<UrlTemplate>>,
    pub channels: Option<BTreeMap<String, Spanned<RawChannel>>>,
    pub browser: Option<Spanned<RawBrowser>>,
    pub escalations: Option<BTreeMap<String, Spanned<RawEscalation>>>,
}

/// `[escalations.NAME]`: channels told one after another until someone acknowledges.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEscalation {
    pub steps: Vec<RawEscalationStep>,
    pub min_severity: Option<crate::event::Severity>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEscalationStep {
    pub notify: String,
    pub after: Option<DurationStr>,
}

/// `[browser]`: the browser that browser watches run in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBrowser {
    pub executable: Option<String>,
    pub endpoint: Option<String>,
}

/// `[hosts."api.github.com"]`: politeness towards one host.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHost {
    pub concurrency: Option<Concurrency>,
    pub interval: Option<DurationStr>,
}
