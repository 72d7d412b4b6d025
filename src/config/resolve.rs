//! Resolving a watch: its file's defaults applied, every value checked (each problem reported
//! where it was written), and its settings shared with the watches that come to the same.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use toml::Spanned;

use super::masks::MaskSet;
use super::raw::{MasksSetting, RawDefaults, RawExpect, RawWatch};
use super::settings::{FeedOptions, Shared, WatchSettings};
use super::spec::ExtractSpec;
use super::types::{self, DurationStr, OneOrMany, RegexStr, UrlTemplate};
use super::{
    ConfigError, DEFAULT_KEEP, DEFAULT_MAX_SIZE, DEFAULT_TIMEOUT, Kind, Watch, alert, expect,
    json_path, version,
};
use crate::schedule::{DEFAULT_EVERY, Schedule, Timing, Zone};

/// The text the spans being resolved are in: the whole file or its head, then each streamed
/// `[[watch]]` chunk, with the lines of the file before it.
pub(super) struct Place<'a> {
    file: &'a Path,
    text: Cow<'a, str>,
    lines_before: usize,
    /// The last offset asked for and its line: watches come in file order, so newlines are
    /// counted on from the previous watch's (a line index of a 100,000-watch file is 4 MB).
    counted: Cell<(usize, usize)>,
}

impl<'a> Place<'a> {
    pub(super) fn new(file: &'a Path, src: &'a str) -> Self {
        Place {
            file,
            text: Cow::Borrowed(src),
            lines_before: 0,
            counted: Cell::new((0, 1)),
        }
    }

    /// Moves on to a streamed chunk of `lines_before` lines into the file.
    pub(super) fn enter(&mut self, text: String, lines_before: usize) {
        self.text = Cow::Owned(text);
        self.lines_before = lines_before;
        self.counted.set((0, 1 + lines_before));
    }

    pub(super) fn text(&self) -> &str {
        &self.text
    }

    pub(super) fn at_opt(&self, span: Option<Range<usize>>, message: String) -> ConfigError {
        let mut e = ConfigError::at(self.file, &self.text, span, message);
        if let Some(l) = e.line.as_mut() {
            *l += self.lines_before;
        }
        e
    }

    pub(super) fn at(&self, span: Range<usize>, message: String) -> ConfigError {
        self.at_opt(Some(span), message)
    }

    /// The 1-based line of a byte offset in the file.
    fn line_of(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        let (mut from, mut line) = self.counted.get();
        if offset < from {
            (from, line) = (0, 1 + self.lines_before);
        }
        line += memchr::memchr_iter(b'\n', &self.text.as_bytes()[from..offset]).count();
        self.counted.set((offset, line));
        line
    }
}

/// Problems found while resolving one thing; `ok` turns false at the first.
struct Problems<'p, 'a> {
    place: &'p Place<'a>,
    errors: &'p mut Vec<ConfigError>,
    ok: bool,
}

impl<'p, 'a> Problems<'p, 'a> {
    fn new(place: &'p Place<'a>, errors: &'p mut Vec<ConfigError>) -> Self {
        Problems {
            place,
            errors,
            ok: true,
        }
    }

    fn at(&mut self, span: Range<usize>, message: String) {
        self.errors.push(self.place.at(span, message));
        self.ok = false;
    }

    /// The value, or `fallback` with the error reported at `span`.
    fn or<T>(&mut self, span: Range<usize>, r: Result<T, String>, fallback: T) -> T {
        r.unwrap_or_else(|e| {
            self.at(span, e);
            fallback
        })
    }

    /// A setting's value, checked; `default` when it is not set.
    fn setting<S, T>(
        &mut self,
        s: &Option<Spanned<S>>,
        check: impl FnOnce(&S) -> Result<T, String>,
        fallback: T,
        default: T,
    ) -> T {
        match s {
            Some(s) => self.or(s.span(), check(s.get_ref()), fallback),
            None => default,
        }
    }
}

/// Channel names are checked once every file is read (a channel may be declared later). The
/// first place each name appears in a file is enough (and keeps a 100,000-watch file from
/// computing 100,000 error positions).
#[derive(Default)]
struct Notes {
    noted: HashSet<String>,
    unresolved: Vec<(String, ConfigError)>,
}

impl Notes {
    fn note(&mut self, list: &Spanned<OneOrMany<String>>, place: &Place<'_>) -> Vec<String> {
        let names = list.get_ref().clone().into_vec();
        for n in &names {
            if self.noted.insert(n.clone()) {
                self.unresolved
                    .push((n.clone(), place.at(list.span(), String::new())));
            }
        }
        names
    }
}

/// A file's `[defaults]`, checked once (a bad value is one problem, not one per watch).
struct Defaults {
    raw: RawDefaults,
    ignore: Vec<String>,
    zone: Zone,
    schedule: Option<Schedule>,
    masks: MaskSet,
    notify: Option<Vec<String>>,
    session: Option<String>,
    verify: VerifyParts,
}

/// `verify`, `verify_timeout` and `verify_on` as given (each may come from `[defaults]`).
#[derive(Clone, Default)]
struct VerifyParts {
    command: Option<super::settings::VerifyCommand>,
    timeout: Option<std::time::Duration>,
    on: Option<Vec<crate::event::EventKind>>,
}

impl VerifyParts {
    fn read(
        command: &Option<Spanned<OneOrMany<String>>>,
        timeout: &Option<Spanned<DurationStr>>,
        on: &Option<Spanned<Vec<String>>>,
        p: &mut Problems<'_, '_>,
    ) -> Self {
        VerifyParts {
            command: p.setting(command, |c| verify_command(c).map(Some), None, None),
            timeout: p.setting(timeout, |t| at_least_a_second(t.0).map(Some), None, None),
            on: p.setting(on, |names| verify_on(names).map(Some), None, None),
        }
    }

    /// The watch's own parts over the file's defaults.
    fn over(self, d: &VerifyParts) -> Option<super::settings::Verify> {
        let command = self.command.or_else(|| d.command.clone())?;
        Some(super::settings::Verify {
            command,
            timeout: self
                .timeout
                .or(d.timeout)
                .unwrap_or(super::settings::VERIFY_TIMEOUT),
            on: self
                .on
                .or_else(|| d.on.clone())
                .unwrap_or_else(|| super::settings::VERIFY_ON.to_vec()),
        })
    }
}

fn verify_command(c: &OneOrMany<String>) -> Result<super::settings::VerifyCommand, String> {
    use super::settings::VerifyCommand;
    match c {
        OneOrMany::One(s) if s.trim().is_empty() => {
            Err("`verify` is empty: give the command that tests your integration".into())
        }
        OneOrMany::One(s) => Ok(VerifyCommand::Shell(s.clone())),
        OneOrMany::Many(v) if v.is_empty() || v[0].trim().is_empty() => Err(
            "`verify` is an empty list: give the program and its arguments, like [\"npm\", \"test\"]".into(),
        ),
        OneOrMany::Many(v) => Ok(VerifyCommand::Argv(v.clone())),
    }
}

fn at_least_a_second(d: std::time::Duration) -> Result<std::time::Duration, String> {
    if d < std::time::Duration::from_secs(1) {
        Err("`verify_timeout` must be at least 1s".into())
    } else {
        Ok(d)
    }
}

fn verify_on(names: &[String]) -> Result<Vec<crate::event::EventKind>, String> {
    use crate::event::EventKind;
    names
        .iter()
        .map(|n| {
            EventKind::from_name(n).ok_or_else(|| {
                let all: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown event kind `{n}` in `verify_on`; the kinds are {}",
                    all.join(", ")
                )
            })
        })
        .collect()
}

impl Defaults {
    fn resolve(raw: RawDefaults, p: &mut Problems<'_, '_>, notes: &mut Notes) -> Self {
        if let Some(h) = &raw.headers {
            check_headers(h, p);
        }
        let ignore = p.setting(&raw.ignore, check_regexes, Vec::new(), Vec::new());
        let zone = p.setting(&raw.timezone, |z| zone_of(z), Zone::Local, Zone::Local);
        let schedule =
            schedule_of(raw.schedule.as_ref(), raw.every.as_ref()).unwrap_or_else(|(span, e)| {
                p.at(span, e);
                None
            });
        let masks = p.setting(&raw.masks, masks_of, MaskSet::none(), MaskSet::all());
        let notify = raw.notify.as_ref().map(|l| notes.note(l, p.place));
        let session = p.setting(&raw.session, |s| session_of(s).map(Some), None, None);
        let verify = VerifyParts::read(&raw.verify, &raw.verify_timeout, &raw.verify_on, p);
        Defaults {
            session,
            verify,
            raw,
            ignore,
            zone,
            schedule,
            masks,
            notify,
        }
    }
}

/// Resolves the watches of one file against its defaults.
pub(super) struct FileResolver {
    defaults: Defaults,
    shared: Shared,
    notes: Notes,
}

impl FileResolver {
    pub(super) fn new(
        file: &Path,
        defaults: RawDefaults,
        place: &Place<'_>,
        errors: &mut Vec<ConfigError>,
    ) -> Self {
        let mut notes = Notes::default();
        let defaults = Defaults::resolve(defaults, &mut Problems::new(place, errors), &mut notes);
        FileResolver {
            defaults,
            shared: Shared::new(file),
            notes,
        }
    }

    /// The `notify` names to check once every file is read, with where each was written.
    pub(super) fn finish(self) -> Vec<(String, ConfigError)> {
        self.notes.unresolved
    }

    /// One watch, or `None` with its problems in `errors`.
    pub(super) fn watch(
        &mut self,
        w: RawWatch,
        place: &Place<'_>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Watch> {
        let notify = w.notify.as_ref().map(|l| self.notes.note(l, place));
        let name = w.name.get_ref().trim();
        if name.is_empty() || name.chars().any(char::is_control) {
            let message = "a watch name must be a non-empty line of text".to_string();
            errors.push(place.at(w.name.span(), message));
            return None;
        }
        let line = place.line_of(w.name.span().start);
        let mut p = Problems::new(place, errors);
        let mut parts = Parts::check(&w, &self.defaults, &mut p);
        if !p.ok {
            return None;
        }
        let (include, pattern) = (parts.include.take(), parts.pattern.take());
        let (url, version) = match resolve_source(&w, &parts.feed, include, pattern) {
            Ok(r) => r,
            Err((span, e)) => {
                p.at(span.unwrap_or_else(|| w.name.span()), e);
                return None;
            }
        };
        let structure = w.structure.or(self.defaults.raw.structure).unwrap_or(true);
        let spec = match parts.spec(w.kind, structure) {
            Ok(s) => self.shared.spec(s),
            Err(e) => {
                p.at(w.name.span(), e);
                return None;
            }
        };
        let settings = self.settings(&w, parts, spec, version, notify);
        Some(Watch::new(name, url.template(), line, settings))
    }

    /// The watch's settings with the file's defaults applied, shared when another watch's
    /// are the same.
    fn settings(
        &mut self,
        w: &RawWatch,
        parts: Parts,
        spec: Arc<ExtractSpec>,
        version: Option<version::VersionSpec>,
        notify: Option<Vec<String>>,
    ) -> Arc<WatchSettings> {
        let d = &self.defaults.raw;
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in d.headers.iter().flatten().chain(w.headers.iter().flatten()) {
            headers.insert(k.clone(), v.get_ref().clone());
        }
        let policy = alert::AlertPolicy {
            // Names for now; `resolve_notify` adds each channel's `min_severity`.
            targets: notify
                .or_else(|| self.defaults.notify.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|n| (n, crate::event::Severity::Info))
                .collect(),
            resolves: Vec::new(),
            // The name for now; `resolve_notify` puts in the escalation's steps.
            escalate: w.escalate.as_ref().or(d.escalate.as_ref()).map(|e| {
                super::alert::Escalation {
                    name: e.get_ref().clone(),
                    min_severity: crate::event::Severity::Critical,
                    steps: Vec::new(),
                }
            }),
            severity: w.severity.or(d.severity).unwrap_or_default(),
            failures_before_alert: w
                .failures_before_alert
                .or(d.failures_before_alert)
                .map_or(3, |f| f.0),
            remind_every: w.remind_every.or(d.remind_every).map(|d| d.0),
        };
        let settings = WatchSettings {
            file: self.shared.file(),
            expect: self.shared.expect(parts.expect),
            track_assets: w.track_assets.unwrap_or(false),
            insecure: w.insecure.unwrap_or(false),
            deny_private: w.deny_private.or(d.deny_private).unwrap_or(false),
            browser: parts.browser.clone(),
            spec,
            headers: headers.into_iter().collect(),
            timeout: w.timeout.or(d.timeout).map_or(DEFAULT_TIMEOUT, |d| d.0),
            keep: w.keep.or(d.keep).map_or(DEFAULT_KEEP, |k| k.0),
            keep_for: w.keep_for.or(d.keep_for).map(|d| d.0),
            max_size: w.max_size.or(d.max_size).map_or(DEFAULT_MAX_SIZE, |s| s.0),
            confirm: w.confirm.or(d.confirm).map_or(1, |c| c.0),
            confirm_refetch: w.confirm_refetch.or(d.confirm_refetch).unwrap_or(true),
            timing: Timing {
                schedule: parts.schedule,
                zone: parts.zone,
            },
            alert: self.shared.policy(policy),
            retries: w.retries.or(d.retries).unwrap_or(2).min(10),
            feed: self.shared.feed(parts.feed),
            version: version.map(Box::new),
            verify: parts.verify.map(Arc::new),
            max_response_time: w.max_response_time.or(d.max_response_time).map(|d| d.0),
        };
        self.shared.settings(settings)
    }
}

/// The parts of a watch that are checked one by one, each problem at its key.
struct Parts {
    verify: Option<super::settings::Verify>,
    /// `browser = true` (the watch's, or the file's default), with its `wait_for`.
    browser: Option<super::settings::BrowserSpec>,
    select: Vec<String>,
    remove: Vec<String>,
    ignore: Vec<String>,
    masks: MaskSet,
    ignore_paths: Vec<String>,
    zone: Zone,
    schedule: Schedule,
    expect: expect::Expect,
    include: Option<regex::Regex>,
    pattern: Option<regex::Regex>,
    feed: FeedOptions,
}

impl Parts {
    fn check(w: &RawWatch, d: &Defaults, p: &mut Problems<'_, '_>) -> Self {
        if let Some(h) = &w.headers {
            check_headers(h, p);
        }
        // `select` and `remove`: checked for the watch's kind, or one problem at the key.
        let kind = w.kind;
        let select = p.setting(
            &w.select,
            |s| ExtractSpec::check_select(kind, &s.clone().into_vec()),
            Vec::new(),
            Vec::new(),
        );
        let remove = p.setting(
            &w.remove,
            |s| ExtractSpec::check_remove(kind, &s.clone().into_vec()),
            Vec::new(),
            Vec::new(),
        );
        let mut ignore = d.ignore.clone();
        ignore.extend(p.setting(&w.ignore, check_regexes, Vec::new(), Vec::new()));
        let schedule = match schedule_of(w.schedule.as_ref(), w.every.as_ref()) {
            Ok(s) => s.or_else(|| d.schedule.clone()),
            Err((span, e)) => {
                p.at(span, e);
                None
            }
        };
        let wait_for = p.setting(
            &w.wait_for,
            |s| {
                ExtractSpec::check_select(Kind::Html, std::slice::from_ref(s))
                    .map(|_| Some(s.clone()))
            },
            None,
            None,
        );
        let browser = w.browser.or(d.raw.browser).unwrap_or(false);
        let steps = p.setting(&w.steps, |s| steps_of(s), Vec::new(), Vec::new());
        let logged_in = p.setting(&w.logged_in, |s| css(s).map(Some), None, None);
        let session = p.setting(
            &w.session,
            |s| session_of(s).map(Some),
            None,
            d.session.clone(),
        );
        for (key, span) in [
            ("wait_for", w.wait_for.as_ref().map(|s| s.span())),
            ("steps", w.steps.as_ref().map(|s| s.span())),
            ("logged_in", w.logged_in.as_ref().map(|s| s.span())),
            (
                "track_requests",
                w.track_requests.as_ref().map(|s| s.span()),
            ),
            ("session", w.session.as_ref().map(|s| s.span())),
            ("screenshot", w.screenshot.as_ref().map(|s| s.span())),
            (
                "skip_unchanged_shell",
                w.skip_unchanged_shell.as_ref().map(|s| s.span()),
            ),
        ] {
            if let (Some(span), false) = (span, browser) {
                p.at(
                    span,
                    format!("`{key}` applies to a browser watch: add `browser = true`"),
                );
            }
        }
        let skip_unchanged_shell = skip_shell(w, !steps.is_empty() || session.is_some(), p);
        Parts {
            verify: VerifyParts::read(&w.verify, &w.verify_timeout, &w.verify_on, p)
                .over(&d.verify),
            browser: browser.then_some(super::settings::BrowserSpec {
                wait_for,
                steps,
                logged_in,
                track_requests: w.track_requests.as_ref().is_some_and(|t| *t.get_ref()),
                session,
                screenshot: w.screenshot.as_ref().is_some_and(|t| *t.get_ref()),
                skip_unchanged_shell,
            }),
            select,
            remove,
            ignore,
            masks: p.setting(&w.masks, masks_of, MaskSet::none(), d.masks.clone()),
            ignore_paths: paths_of(&w.ignore_paths, p),
            zone: p.setting(&w.timezone, |z| zone_of(z), Zone::Local, d.zone),
            schedule: schedule.unwrap_or(Schedule::Every(DEFAULT_EVERY)),
            expect: w
                .expect
                .as_ref()
                .map(|x| expect_of(x, p))
                .unwrap_or_default(),
            include: regex_of(&w.include, p),
            pattern: regex_of(&w.pattern, p),
            feed: FeedOptions {
                match_title: regex_of(&w.match_, p),
                exclude_title: regex_of(&w.exclude, p),
                max_entries: w
                    .max_entries
                    .as_ref()
                    .map_or(10, |m| (*m.get_ref()).max(1) as usize),
            },
        }
    }

    /// What and how the watch extracts.
    fn spec(&mut self, kind: Kind, structure: bool) -> Result<ExtractSpec, String> {
        let (select, remove, ignore) = (
            std::mem::take(&mut self.select),
            std::mem::take(&mut self.remove),
            std::mem::take(&mut self.ignore),
        );
        let masks = std::mem::replace(&mut self.masks, MaskSet::none());
        let paths = std::mem::take(&mut self.ignore_paths);
        ExtractSpec::new(kind, select, remove, ignore).map(|s| {
            s.with_masks(masks)
                .with_ignore_paths(paths)
                .with_structure(structure)
        })
    }
}

/// `expect.*`: each selector and JSON path checked where the list is written.
fn expect_of(x: &RawExpect, p: &mut Problems<'_, '_>) -> expect::Expect {
    let mut expect = expect::Expect::default();
    if let Some(sels) = &x.selectors {
        for s in sels.get_ref().clone().into_vec() {
            match types::parse_selector(&s) {
                Ok(sel) => expect.selectors.push((s, sel)),
                Err(e) => p.at(sels.span(), e),
            }
        }
    }
    expect.text = x.text.clone().map(OneOrMany::into_vec).unwrap_or_default();
    expect.absent = x
        .absent
        .clone()
        .map(OneOrMany::into_vec)
        .unwrap_or_default();
    expect.status = x.status;
    expect.paths = paths_of(&x.paths, p);
    expect
}

/// `skip_unchanged_shell`: the page is asked for over plain HTTP, without the browser's
/// cookies, so a watch that logs in (`steps`, `session`) cannot use it: its 304 would be the
/// login page's.
fn skip_shell(w: &RawWatch, logs_in: bool, p: &mut Problems) -> bool {
    let Some(skip) = &w.skip_unchanged_shell else {
        return false;
    };
    if *skip.get_ref() && logs_in {
        p.at(
            skip.span(),
            "`skip_unchanged_shell` asks for the page without the browser's cookies, so it cannot be used with `steps` or `session` (the page it would ask about is the login page): remove one of them".into(),
        );
        return false;
    }
    *skip.get_ref()
}

/// A session's name: it names a folder, so letters, digits, `-`, `_` and `.` only.
pub(super) fn session_of(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "invalid session name `{s}`: use letters, digits, `-`, `_` and `.` (it names the folder its cookies are kept in)"
        ))
    }
}

/// A CSS selector, checked as `select` is.
fn css(s: &str) -> Result<String, String> {
    ExtractSpec::check_select(Kind::Html, std::slice::from_ref(&s.to_string()))
        .map(|_| s.to_string())
}

/// A browser watch's `steps`: each one action, its selectors valid, its `${VAR}`s well formed.
fn steps_of(raw: &[super::raw::RawStep]) -> Result<Vec<super::settings::Step>, String> {
    raw.iter()
        .enumerate()
        .map(|(i, r)| step_of(r).map_err(|e| format!("step {}: {e}", i + 1)))
        .collect()
}

fn step_of(r: &super::raw::RawStep) -> Result<super::settings::Step, String> {
    use super::settings::Step;
    let actions = [
        r.goto.is_some(),
        r.fill.is_some(),
        r.click.is_some(),
        r.press.is_some(),
        r.wait_for.is_some(),
        r.wait.is_some(),
    ];
    if actions.iter().filter(|a| **a).count() != 1 {
        return Err("a step has exactly one of `goto`, `fill` (with `value`), `click`, `press`, `wait_for`, `wait`".into());
    }
    if r.value.is_some() != r.fill.is_some() {
        return Err("`fill` goes with the `value` to type, and `value` with `fill`".into());
    }
    Ok(if let Some(u) = &r.goto {
        types::validate_url_template(u)?;
        Step::Goto(u.clone())
    } else if let (Some(sel), Some(value)) = (&r.fill, &r.value) {
        types::expand_env_syntax(value)?;
        Step::Fill {
            selector: css(sel)?,
            value: value.clone(),
        }
    } else if let Some(sel) = &r.click {
        Step::Click(css(sel)?)
    } else if let Some(key) = &r.press {
        Step::Press(key.clone())
    } else if let Some(sel) = &r.wait_for {
        Step::WaitFor(css(sel)?)
    } else {
        Step::Wait(r.wait.as_ref().expect("one action").0)
    })
}

/// A list of JSON paths; the bad ones reported at the list.
fn paths_of(list: &Option<Spanned<OneOrMany<String>>>, p: &mut Problems<'_, '_>) -> Vec<String> {
    let Some(list) = list else {
        return Vec::new();
    };
    let mut ok = Vec::new();
    for path in list.get_ref().clone().into_vec() {
        match json_path::check_path(&path) {
            Ok(()) => ok.push(path),
            Err(e) => p.at(list.span(), e),
        }
    }
    ok
}

fn regex_of(r: &Option<Spanned<String>>, p: &mut Problems<'_, '_>) -> Option<regex::Regex> {
    let r = r.as_ref()?;
    regex::Regex::new(r.get_ref())
        .map_err(|e| p.at(r.span(), format!("invalid regex: {e}")))
        .ok()
}

/// Header names must be valid and their `${VAR}`s well formed.
fn check_headers(headers: &BTreeMap<String, Spanned<String>>, p: &mut Problems<'_, '_>) {
    for (name, value) in headers {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            p.at(value.span(), format!("invalid HTTP header name `{name}`"));
        }
        if let Err(e) = types::expand_env_syntax(value.get_ref()) {
            p.at(value.span(), e);
        }
        if value.get_ref().contains(['\r', '\n', '\0']) {
            let msg = format!(
                "the value of header `{name}` has a line break or NUL: HTTP does not allow one in a header"
            );
            p.at(value.span(), msg);
        }
    }
}

type Resolved = (UrlTemplate, Option<version::VersionSpec>);

/// The URL a watch fetches, and for `kind = "version"` how to read versions: the source's
/// real path under its base URL (`registry` overrides the base).
fn resolve_source(
    w: &RawWatch,
    feed: &FeedOptions,
    include: Option<regex::Regex>,
    pattern: Option<regex::Regex>,
) -> Result<Resolved, (Option<std::ops::Range<usize>>, String)> {
    use version::{Source, VersionSpec};
    if w.kind != Kind::Version {
        for (key, set) in [
            ("source", w.source.is_some()),
            ("package", w.package.is_some()),
            ("repo", w.repo.is_some()),
            ("registry", w.registry.is_some()),
            ("pattern", w.pattern.is_some()),
            ("include", w.include.is_some()),
        ] {
            if set {
                return Err((None, format!("`{key}` is for kind = \"version\" watches")));
            }
        }
        let url = w
            .url
            .as_ref()
            .ok_or((None, "missing field `url`".to_string()))?;
        return Ok((url.get_ref().clone(), None));
    }
    let source = w.source.as_ref().ok_or((
        None,
        "kind = \"version\" needs `source`: github, crates, npm, pypi, regex or json".to_string(),
    ))?;
    let src = *source.get_ref();
    let name = match src {
        Source::Crates | Source::Npm | Source::Pypi => w
            .package
            .as_ref()
            .map(|p| p.get_ref().trim().to_string())
            .filter(|p| !p.is_empty())
            .ok_or((
                Some(source.span()),
                format!(
                    "source = \"{}\" needs `package`",
                    format!("{src:?}").to_lowercase()
                ),
            ))?,
        Source::Github => {
            let repo = w.repo.as_ref().ok_or((
                Some(source.span()),
                "source = \"github\" needs `repo = \"owner/name\"`".to_string(),
            ))?;
            let r = repo.get_ref().trim();
            if r.split('/').filter(|p| !p.is_empty()).count() != 2 {
                return Err((
                    Some(repo.span()),
                    format!("`repo` must be \"owner/name\", not `{r}`"),
                ));
            }
            r.to_string()
        }
        Source::Regex | Source::Json => String::new(),
    };
    let url = match src {
        Source::Regex | Source::Json => {
            let url = w.url.as_ref().ok_or((
                Some(source.span()),
                format!(
                    "source = \"{}\" needs `url`",
                    format!("{src:?}").to_lowercase()
                ),
            ))?;
            if src == Source::Regex && pattern.is_none() {
                return Err((
                    Some(source.span()),
                    "source = \"regex\" needs `pattern` with a capture group for the version"
                        .into(),
                ));
            }
            url.get_ref().clone()
        }
        _ => {
            let base = w
                .registry
                .as_ref()
                .map(|r| r.get_ref().template().trim_end_matches('/').to_string())
                .unwrap_or_else(|| src.default_base().to_string());
            let spec_path = VersionSpec {
                source: src,
                name: name.clone(),
                tags: w.tags.unwrap_or(false),
                prerelease: false,
                prefix: None,
                include: None,
                exclude: None,
                pattern: None,
                pointer: None,
            }
            .path();
            UrlTemplate::try_from(format!("{base}{spec_path}")).map_err(|e| (None, e))?
        }
    };
    Ok((
        url,
        Some(VersionSpec {
            source: src,
            name,
            tags: w.tags.unwrap_or(false),
            prerelease: w.prerelease.unwrap_or(false),
            prefix: w.prefix.clone(),
            include,
            exclude: feed.exclude_title.clone(),
            pattern,
            pointer: w.pointer.clone(),
        }),
    ))
}

fn zone_of(name: &str) -> Result<Zone, String> {
    name.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
        format!("unknown time zone `{name}`: use an IANA name like \"Europe/Berlin\" or \"UTC\"")
    })
}

/// `schedule` (cron) or `every`, not both.
fn schedule_of(
    cron: Option<&Spanned<String>>,
    every: Option<&Spanned<DurationStr>>,
) -> Result<Option<Schedule>, (std::ops::Range<usize>, String)> {
    match (cron, every) {
        (Some(c), Some(_)) => Err((
            c.span(),
            "set `schedule` (cron) or `every`, not both".into(),
        )),
        (Some(c), None) => Schedule::cron(c.get_ref())
            .map(Some)
            .map_err(|e| (c.span(), e)),
        (None, Some(e)) => Schedule::every(e.get_ref().0)
            .map(Some)
            .map_err(|msg| (e.span(), msg)),
        (None, None) => Ok(None),
    }
}

fn masks_of(setting: &MasksSetting) -> Result<MaskSet, String> {
    match setting {
        MasksSetting::All(true) => Ok(MaskSet::all()),
        MasksSetting::All(false) => Ok(MaskSet::none()),
        MasksSetting::Some(list) => MaskSet::from_names(list),
    }
}

fn check_regexes(list: &OneOrMany<String>) -> Result<Vec<String>, String> {
    let list = list.clone().into_vec();
    for r in &list {
        RegexStr::try_from(r.clone())?;
    }
    Ok(list)
}
