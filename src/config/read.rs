//! Reading a watchlist file: a `[[watch]]` at a time when its layout allows, else whole.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;
use toml::de::ValueDeserializer;

use super::raw::{RawDefaults, RawFile, RawHost, RawWatch};
use super::resolve::{FileResolver, Place};
use super::settings::{self, HostSettings};
use super::types::UrlTemplate;
use super::{Config, ConfigError, alert};

/// Reads one watchlist file, appending its watches and its problems. The file is read a
/// [[watch]] at a time when its layout allows (see [`Chunks`]): a 100,000-watch list is never
/// held whole, as text or as a parse tree (150 MB; one watch's is 1 KB).
pub(super) fn read_watchlist(
    file: &Path,
    config: &mut Config,
    errors: &mut Vec<ConfigError>,
) -> std::io::Result<()> {
    let reader = std::io::BufReader::with_capacity(64 * 1024, std::fs::File::open(file)?);
    match parse_streamed(file, reader, config, errors) {
        Err(Stop::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
            errors.push(not_utf8(file, &std::fs::read(file)?));
            Ok(())
        }
        Err(Stop::Io(e)) => Err(e),
        Err(Stop::Whole) => match String::from_utf8(std::fs::read(file)?) {
            Ok(src) => {
                parse_whole(file, &src, config, errors);
                Ok(())
            }
            Err(e) => {
                errors.push(not_utf8(file, e.as_bytes()));
                Ok(())
            }
        },
        Ok(()) => Ok(()),
    }
}

/// A watchlist that is not UTF-8, with the place of its first bad byte.
fn not_utf8(file: &Path, bytes: &[u8]) -> ConfigError {
    let good = std::str::from_utf8(bytes)
        .err()
        .map_or(bytes.len(), |e| e.valid_up_to());
    let before = &bytes[..good];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    let mut e = ConfigError::whole_file(
        file,
        "the watchlist is not UTF-8 text".into(),
        Some("save it as UTF-8 (TOML files must be)".into()),
    );
    e.line = Some(line);
    e.column = Some(column);
    e
}

/// Parses one watchlist file's text, appending its watches and its problems.
pub fn parse_file(file: &Path, src: &str, config: &mut Config, errors: &mut Vec<ConfigError>) {
    match parse_streamed(file, src.as_bytes(), config, errors) {
        Ok(()) => {}
        // Reading from memory fails only on a layout that needs the whole text.
        Err(Stop::Whole | Stop::Io(_)) => parse_whole(file, src, config, errors),
    }
}

/// Why a watchlist could not be read a [[watch]] at a time.
pub(super) enum Stop {
    /// Its layout needs a whole-file parse (see [`Chunks`]). What it added is undone.
    Whole,
    Io(std::io::Error),
}

/// One `[[watch]]` table's text: from its `[[watch]]` line to the next.
struct Chunk {
    text: String,
    /// Lines of the file before it.
    lines_before: usize,
}

/// A watchlist read a line at a time: the head (the text before the first `[[watch]]` line),
/// then one [`Chunk`] per `[[watch]]`.
///
/// Parsing the chunks one by one means the same as parsing the whole file when each parses
/// on its own as a document holding only its watch and the head holds no `watch`. Otherwise
/// (a table after the watches, a `[[watch]]` line inside a multi-line string, a syntax error)
/// the caller undoes what it added and parses the whole file, which reports any error with
/// its position.
struct Chunks<R> {
    reader: R,
    /// The `[[watch]]` line that starts the next chunk, and its 0-based line number.
    next: Option<(String, usize)>,
    line: usize,
}

impl<R: std::io::BufRead> Chunks<R> {
    /// Reads the head.
    fn open(reader: R) -> std::io::Result<(String, Self)> {
        let mut chunks = Chunks {
            reader,
            next: None,
            line: 0,
        };
        let mut head = String::new();
        chunks.read_to_header(&mut head)?;
        Ok((head, chunks))
    }

    fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        let Some((mut text, lines_before)) = self.next.take() else {
            return Ok(None);
        };
        self.read_to_header(&mut text)?;
        Ok(Some(Chunk { text, lines_before }))
    }

    /// Appends lines to `text` up to the next `[[watch]]` line (kept in `next`) or the end.
    fn read_to_header(&mut self, text: &mut String) -> std::io::Result<()> {
        let mut l = String::new();
        loop {
            l.clear();
            if self.reader.read_line(&mut l)? == 0 {
                return Ok(());
            }
            self.line += 1;
            if is_watch_header(&l) {
                self.next = Some((std::mem::take(&mut l), self.line - 1));
                return Ok(());
            }
            text.push_str(&l);
        }
    }
}

/// A `[[watch]]` line (comments and spaces aside).
fn is_watch_header(line: &str) -> bool {
    let t = line.trim();
    let t = t.split_once('#').map_or(t, |(code, _)| code.trim_end());
    t.strip_prefix("[[")
        .and_then(|t| t.strip_suffix("]]"))
        .is_some_and(|inner| inner.trim() == "watch")
}

/// The [[watch]] items of a chunk, when it holds nothing else.
fn chunk_items(chunk: &str) -> Option<Vec<toml::Spanned<toml::de::DeValue<'_>>>> {
    let mut t = toml::de::DeTable::parse(chunk).ok()?;
    if t.get_ref().len() != 1 {
        return None;
    }
    match t.get_mut().remove("watch").map(|v| v.into_inner()) {
        Some(toml::de::DeValue::Array(a)) => Some(a.into_iter().collect()),
        _ => None,
    }
}

/// What a file adds to a [`Config`], to take back when it has to be parsed again whole.
struct Undo {
    watches: usize,
    errors: usize,
    unresolved: usize,
    hosts: HashMap<String, HostSettings>,
    heartbeat_url: Option<UrlTemplate>,
    browser: Option<super::BrowserSettings>,
    escalations: BTreeMap<String, alert::Escalation>,
    channels: BTreeMap<String, alert::Channel>,
}

impl Undo {
    fn of(config: &Config, errors: &[ConfigError]) -> Self {
        Undo {
            watches: config.watches.len(),
            errors: errors.len(),
            unresolved: config.unresolved.len(),
            hosts: config.hosts.clone(),
            heartbeat_url: config.heartbeat_url.clone(),
            browser: config.browser.clone(),
            escalations: config.escalations.clone(),
            channels: config.channels.clone(),
        }
    }

    fn undo(self, config: &mut Config, errors: &mut Vec<ConfigError>) {
        config.watches.truncate(self.watches);
        errors.truncate(self.errors);
        config.unresolved.truncate(self.unresolved);
        config.hosts = self.hosts;
        config.heartbeat_url = self.heartbeat_url;
        config.browser = self.browser;
        config.escalations = self.escalations;
        config.channels = self.channels;
    }
}

/// Parses a watchlist a [[watch]] at a time; [`Stop::Whole`] (with everything it added
/// undone) when the layout needs a whole-file parse.
pub(super) fn parse_streamed<R: std::io::BufRead>(
    file: &Path,
    reader: R,
    config: &mut Config,
    errors: &mut Vec<ConfigError>,
) -> Result<(), Stop> {
    let (head, mut chunks) = Chunks::open(reader).map_err(Stop::Io)?;
    if chunks.next.is_none() {
        // No [[watch]] line: the head is the whole file.
        parse_whole(file, &head, config, errors);
        return Ok(());
    }
    let undo = Undo::of(config, errors);
    let mut next = || chunks.next_chunk();
    match parse_with(file, &head, Some(&mut next), config, errors) {
        Ok(()) => Ok(()),
        Err(stop) => {
            undo.undo(config, errors);
            Err(stop)
        }
    }
}

/// Parses a watchlist's whole text at once.
fn parse_whole(file: &Path, src: &str, config: &mut Config, errors: &mut Vec<ConfigError>) {
    if src
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        errors.push(ConfigError::whole_file(
            file,
            "the watchlist is empty".into(),
            Some("add a [[watch]] table with `name` and `url` (see watchlists/example.toml), or delete the file".into()),
        ));
        return;
    }
    let _ = parse_with(file, src, None, config, errors);
}

type NextChunk<'a> = &'a mut dyn FnMut() -> std::io::Result<Option<Chunk>>;

/// Parses a watchlist: `src` is the whole text, or with `chunks` the head before the first
/// `[[watch]]` line, the watches coming from `chunks` one at a time. With `chunks`, a layout
/// that needs a whole-file parse stops it with [`Stop::Whole`] (the caller undoes what it added).
fn parse_with(
    file: &Path,
    src: &str,
    chunks: Option<NextChunk<'_>>,
    config: &mut Config,
    errors: &mut Vec<ConfigError>,
) -> Result<(), Stop> {
    let Some(top) = parse_top(file, src, chunks.is_some(), errors)? else {
        return Ok(());
    };
    let (raw, watch_item) = (top.raw, top.watch);
    settings::apply_top_level(file, src, top.hosts, raw, config, errors);
    let mut place = Place::new(file, src);
    let mut resolver = FileResolver::new(file, top.defaults, &place, errors);
    match chunks {
        // Each [[watch]] is deserialized and resolved in turn, and its parse tree dropped: a
        // 100,000-watch file never holds two forms of every watch at once.
        None => {
            let items = watch_items(watch_item, &place, errors);
            config.watches.reserve(items.len());
            resolve_items(items, &mut resolver, &place, config, errors);
        }
        Some(next) => {
            while let Some(chunk) = next().map_err(Stop::Io)? {
                place.enter(chunk.text, chunk.lines_before);
                let items = chunk_items(place.text()).ok_or(Stop::Whole)?;
                resolve_items(items, &mut resolver, &place, config, errors);
            }
        }
    }
    config.unresolved.extend(resolver.finish());
    Ok(())
}

type Item<'s> = toml::Spanned<toml::de::DeValue<'s>>;

/// A file's top level, read.
struct Top<'s> {
    raw: RawFile,
    defaults: RawDefaults,
    hosts: BTreeMap<String, RawHost>,
    /// The `watch` array, when the file is parsed whole.
    watch: Option<Item<'s>>,
}

/// The file's top level. `None` when it is not TOML or its top level is wrong (the errors
/// are reported), or [`Stop::Whole`] when streamed and it needs a whole parse.
fn parse_top<'s>(
    file: &Path,
    src: &'s str,
    streamed: bool,
    errors: &mut Vec<ConfigError>,
) -> Result<Option<Top<'s>>, Stop> {
    // A wrong file stops a streamed read (the whole parse reports it); a whole one reports.
    let mut problem = |e: toml::de::Error| {
        if streamed {
            return Err(Stop::Whole);
        }
        errors.push(ConfigError::at(
            file,
            src,
            e.span(),
            e.message().to_string(),
        ));
        Ok(())
    };
    let mut root = match toml::de::DeTable::parse(src) {
        Ok(r) => r,
        Err(e) => return problem(e).map(|()| None),
    };
    let watch = root.get_mut().remove("watch");
    if streamed && watch.is_some() {
        return Err(Stop::Whole);
    }
    let part = |key: &str| root.get_ref().get(key).cloned();
    let (defaults, hosts) = (part("defaults"), part("hosts"));
    let raw = match RawFile::deserialize(toml::de::Deserializer::from(root)) {
        Ok(raw) => raw,
        Err(e) => return problem(e).map(|()| None),
    };
    let place = Place::new(file, src);
    let defaults = read_part(defaults, streamed, &place, errors)?;
    let hosts = read_part(hosts, streamed, &place, errors)?;
    Ok(Some(Top {
        raw,
        defaults,
        hosts,
        watch,
    }))
}

/// A top-level table read on its own: its default when absent or wrong. A wrong one stops a
/// streamed read; read whole, each of its problems is reported.
fn read_part<T: serde::de::DeserializeOwned + Default>(
    value: Option<Item<'_>>,
    streamed: bool,
    place: &Place<'_>,
    errors: &mut Vec<ConfigError>,
) -> Result<T, Stop> {
    let Some(value) = value else {
        return Ok(T::default());
    };
    if streamed {
        return T::deserialize(ValueDeserializer::from(value)).map_err(|_| Stop::Whole);
    }
    Ok(read_all(value, place, errors)
        .map(|(t, _)| t)
        .unwrap_or_default())
}

/// The `[[watch]]` tables of a file parsed whole.
fn watch_items<'s>(
    item: Option<Item<'s>>,
    place: &Place<'_>,
    errors: &mut Vec<ConfigError>,
) -> Vec<Item<'s>> {
    let Some(item) = item else {
        return Vec::new();
    };
    let span = item.span();
    match item.into_inner() {
        toml::de::DeValue::Array(array) => array.into_iter().collect(),
        _ => {
            let message = "`watch` must be a list of [[watch]] tables".to_string();
            errors.push(place.at(span, message));
            Vec::new()
        }
    }
}

fn resolve_items(
    items: Vec<Item<'_>>,
    resolver: &mut FileResolver,
    place: &Place<'_>,
    config: &mut Config,
    errors: &mut Vec<ConfigError>,
) {
    for item in items {
        let Some((w, wrong)) = read_all::<RawWatch>(item, place, errors) else {
            continue;
        };
        // Read past its problems, a watch is still resolved, so its other problems show in
        // the same run. One read past a wrong value is not kept, and what is missing only
        // because a wrong key was taken out is not a problem of its own.
        let before = errors.len();
        let enabled = w.enabled.unwrap_or(true);
        let watch = resolver.watch(w, place, errors);
        if wrong.is_empty() {
            if enabled {
                config.watches.extend(watch);
            } else {
                config.disabled.extend(watch);
            }
            continue;
        }
        let found = errors.split_off(before);
        errors.extend(
            found
                .into_iter()
                .filter(|e| !only_missing(&e.message, &wrong)),
        );
    }
}

/// A problem that says one of `removed` is missing (or needed): it was taken out for its
/// wrong value, which is already reported.
fn only_missing(message: &str, removed: &[String]) -> bool {
    (message.contains("missing") || message.contains("needs"))
        && removed.iter().any(|k| message.contains(&format!("`{k}`")))
}

/// Deserializes a table, reporting every problem in it, not only the first: the key at fault
/// (unknown, or with a wrong value) is reported, taken out, and the rest read again, so a
/// watch with two typos and a bad size is one round.
/// Returns the table read and the keys taken out for a wrong value.
fn read_all<T: serde::de::DeserializeOwned>(
    mut item: Item<'_>,
    place: &Place<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<(T, Vec<String>)> {
    let mut removed: Vec<String> = Vec::new();
    let mut wrong: Vec<String> = Vec::new();
    // At most one round per key the table has, and then some.
    for _ in 0..256 {
        let e = match T::deserialize(ValueDeserializer::from(item.clone())) {
            Ok(t) => return Some((t, wrong)),
            Err(e) => e,
        };
        // A required key taken out for its bad value is not missing as well.
        if removed
            .iter()
            .any(|k| e.message() == format!("missing field `{k}`"))
        {
            return None;
        }
        errors.push(place.at_opt(e.span(), e.message().to_string()));
        let toml::de::DeValue::Table(table) = item.get_mut() else {
            return None;
        };
        // The key at fault: the one serde names, or the one whose value holds the error.
        let key = match unknown_field(e.message()) {
            Some(k) => k,
            None => {
                let at = e.span()?.start;
                let k = table
                    .iter()
                    .find(|(k, v)| k.span().contains(&at) || v.span().contains(&at))
                    .map(|(k, _)| k.get_ref().to_string())?;
                wrong.push(k.clone());
                k
            }
        };
        table.remove(key.as_str())?;
        removed.push(key);
    }
    None
}

/// The key serde named as unknown.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}
