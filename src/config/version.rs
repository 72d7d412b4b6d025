//! What a version watch reads: its source and which versions count.

use serde::{Deserialize, Serialize};

/// Where versions come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Github,
    Crates,
    Npm,
    Pypi,
    Regex,
    Json,
}

impl Source {
    /// The real service's base URL (`registry` overrides it).
    pub fn default_base(self) -> &'static str {
        match self {
            Source::Github => "https://api.github.com",
            Source::Crates => "https://crates.io",
            Source::Npm => "https://registry.npmjs.org",
            Source::Pypi => "https://pypi.org",
            Source::Regex | Source::Json => "",
        }
    }
}

/// How to read versions from a response, and which count.
#[derive(Debug, Clone)]
pub struct VersionSpec {
    pub source: Source,
    /// The package (crates, npm, pypi) or `owner/name` (github).
    pub name: String,
    pub tags: bool,
    pub prerelease: bool,
    pub prefix: Option<String>,
    pub include: Option<regex::Regex>,
    pub exclude: Option<regex::Regex>,
    /// regex: the pattern whose first capture group is a version.
    pub pattern: Option<regex::Regex>,
    /// json: a JSON Pointer to a version string or an array of them.
    pub pointer: Option<String>,
}

impl VersionSpec {
    /// The path under the base URL, as on the real service.
    pub fn path(&self) -> String {
        match self.source {
            Source::Crates => format!("/api/v1/crates/{}", self.name),
            Source::Npm => format!("/{}", self.name.replace('/', "%2F")),
            Source::Pypi => format!("/pypi/{}/json", self.name),
            Source::Github if self.tags => format!("/repos/{}/tags?per_page=100", self.name),
            Source::Github => format!("/repos/{}/releases?per_page=100", self.name),
            Source::Regex | Source::Json => String::new(),
        }
    }
}
