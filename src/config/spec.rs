//! What a watch extracts from a body: its kind, selectors, removals, ignored lines and
//! masks, compiled once per load and shared by the watches that ask for the same.

use serde::{Deserialize, Serialize};

use super::Kind;
use super::json_path::check_path;
use super::masks::MaskSet;
use super::types::parse_selector;

/// What a watch extracts from a body. Cheap to clone; compiled once per load.
#[derive(Debug, Clone)]
pub struct ExtractSpec {
    pub kind: Kind,
    /// CSS selectors (html, auto) or JSON Pointers (json), as written.
    pub select: Vec<String>,
    pub remove: Vec<String>,
    pub ignore: Vec<String>,
    /// Built-in volatile masks applied before hashing (never to what is stored or shown).
    pub masks: MaskSet,
    /// JSON: paths deleted before comparing (`$.meta.generated_at`, `$..request_id`).
    pub ignore_paths: Vec<String>,
    /// HTML: compare the page's structure too (ids, classes, test ids; see
    /// `extract::structure`). On unless the watch says `structure = false`.
    pub structure: bool,
    pub(crate) select_css: Vec<scraper::Selector>,
    pub(crate) remove_css: Vec<scraper::Selector>,
    pub(crate) ignore_re: Vec<regex::Regex>,
    /// `ignore` is applied line by line (`^` and `$` match at each line). Specs stored
    /// before that applied it to the whole text; they are rebuilt the old way.
    ignore_lines: bool,
    /// [`fingerprint`](Self::fingerprint), written once: every judged body compares it with
    /// the stored one. The builder methods clear it.
    fingerprint: std::sync::OnceLock<String>,
}

/// `ignore` patterns compiled; `lines` puts them in multi-line mode.
fn ignore_regexes(ignore: &[String], lines: bool) -> Result<Vec<regex::Regex>, String> {
    ignore
        .iter()
        .map(|r| {
            regex::RegexBuilder::new(r)
                .multi_line(lines)
                .build()
                .map_err(|e| format!("invalid regex: {e}"))
        })
        .collect()
}

/// The serialisable part of a spec: stored with each watch so that a changed `select`
/// can be told apart from a change upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SpecRecord {
    kind: Kind,
    select: Vec<String>,
    remove: Vec<String>,
    ignore: Vec<String>,
    #[serde(default)]
    masks: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ignore_paths: Vec<String>,
    /// Absent in what was stored before `ignore` went line by line.
    #[serde(default, skip_serializing_if = "is_false")]
    ignore_lines: bool,
    /// Absent in what was stored before the structure view: those pages had none.
    #[serde(default, skip_serializing_if = "is_false")]
    structure: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ExtractSpec {
    pub fn new(
        kind: Kind,
        select: Vec<String>,
        remove: Vec<String>,
        ignore: Vec<String>,
    ) -> Result<Self, String> {
        let select = Self::check_select(kind, &select)?;
        let remove = Self::check_remove(kind, &remove)?;
        let css = |v: &[String]| -> Result<Vec<scraper::Selector>, String> {
            v.iter().map(|s| parse_selector(s)).collect()
        };
        let select_css = if matches!(kind, Kind::Json | Kind::Yaml) {
            Vec::new()
        } else {
            css(&select)?
        };
        let remove_css = css(&remove)?;
        let ignore_re = ignore_regexes(&ignore, true)?;
        Ok(ExtractSpec {
            kind,
            select,
            remove,
            ignore,
            masks: MaskSet::all(),
            ignore_paths: Vec::new(),
            structure: matches!(kind, Kind::Auto | Kind::Html),
            select_css,
            remove_css,
            ignore_re,
            ignore_lines: true,
            fingerprint: std::sync::OnceLock::new(),
        })
    }

    /// Validates `select` for the watch's kind.
    pub fn check_select(kind: Kind, select: &[String]) -> Result<Vec<String>, String> {
        match kind {
            Kind::Text | Kind::Feed | Kind::Version if select.is_empty() => Ok(Vec::new()),
            Kind::Version => Err(
                "`select` does not apply to versions; use `pointer` (source = \"json\") or `pattern` (source = \"regex\")".into(),
            ),
            Kind::Feed => Err(
                "`select` does not apply to feeds; use `match` / `exclude` on entry titles".into(),
            ),
            Kind::Text => Err(
                "`select` needs an HTML page (kind = \"html\") or JSON (kind = \"json\"); for text use `ignore`".into(),
            ),
            Kind::Json | Kind::Yaml => {
                for p in select {
                    if p.starts_with('$') {
                        check_path(p)?;
                    } else if !(p.is_empty() || p.starts_with('/')) {
                        return Err(format!(
                            "invalid JSON select `{p}`: write a JSON Pointer like \"/data/items\" or a JSONPath like \"$.data[*]\""
                        ));
                    }
                }
                Ok(select.to_vec())
            }
            Kind::Auto | Kind::Html => {
                for s in select {
                    parse_selector(s)?;
                }
                Ok(select.to_vec())
            }
        }
    }

    /// Validates `remove` (CSS, so HTML only).
    pub fn check_remove(kind: Kind, remove: &[String]) -> Result<Vec<String>, String> {
        if matches!(
            kind,
            Kind::Text | Kind::Json | Kind::Yaml | Kind::Feed | Kind::Version
        ) && !remove.is_empty()
        {
            return Err("`remove` takes CSS selectors and needs an HTML page".into());
        }
        for s in remove {
            parse_selector(s)?;
        }
        Ok(remove.to_vec())
    }

    /// A stable text form of what this spec extracts.
    pub fn fingerprint(&self) -> &str {
        self.fingerprint.get_or_init(|| {
            serde_json::to_string(&SpecRecord {
                kind: self.kind,
                select: self.select.clone(),
                remove: self.remove.clone(),
                ignore: self.ignore.clone(),
                masks: self.masks.names().iter().map(|s| s.to_string()).collect(),
                ignore_paths: self.ignore_paths.clone(),
                ignore_lines: self.ignore_lines && !self.ignore.is_empty(),
                structure: self.structure,
            })
            .expect("spec serialises")
        })
    }

    /// Whether `other` extracts the same (what [`fingerprint`](Self::fingerprint) says,
    /// without writing it): a file's watches mostly share their defaults.
    pub fn same_as(&self, other: &ExtractSpec) -> bool {
        self.kind == other.kind
            && self.select == other.select
            && self.remove == other.remove
            && self.ignore == other.ignore
            && self.masks.names() == other.masks.names()
            && self.ignore_paths == other.ignore_paths
            && self.structure == other.structure
            && (self.ignore_lines == other.ignore_lines || self.ignore.is_empty())
    }

    /// Rebuilds a spec from [`fingerprint`](Self::fingerprint) output.
    pub fn from_fingerprint(s: &str) -> Option<Self> {
        let r: SpecRecord = serde_json::from_str(s).ok()?;
        let masks = MaskSet::from_names(&r.masks).ok()?;
        let lines = r.ignore_lines;
        let mut spec = Self::new(r.kind, r.select, r.remove, r.ignore).ok()?;
        if !lines && !spec.ignore.is_empty() {
            spec.ignore_re = ignore_regexes(&spec.ignore, false).ok()?;
            spec.ignore_lines = false;
            spec.fingerprint.take();
        }
        Some(
            spec.with_masks(masks)
                .with_ignore_paths(r.ignore_paths)
                .with_structure(r.structure),
        )
    }

    /// With or without the structure view (only pages have one).
    pub fn with_structure(mut self, structure: bool) -> Self {
        self.structure = structure && matches!(self.kind, Kind::Auto | Kind::Html);
        self.fingerprint.take();
        self
    }

    pub fn with_ignore_paths(mut self, paths: Vec<String>) -> Self {
        self.ignore_paths = paths;
        self.fingerprint.take();
        self
    }

    pub fn with_masks(mut self, masks: MaskSet) -> Self {
        self.masks = masks;
        self.fingerprint.take();
        self
    }

    /// The text that decides "changed": the content with volatile fragments masked.
    pub fn masked<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        if self.masks.is_empty() {
            std::borrow::Cow::Borrowed(text)
        } else {
            self.masks.apply(text)
        }
    }
}
