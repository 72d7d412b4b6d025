//! New versions: the releases a source lists (crates.io, npm, PyPI, GitHub releases or tags,
//! a regex over a page, a JSON Pointer into a document), ordered leniently ("v1.2",
//! "1.2.3-beta.1", "release-1.4", PEP 440's "1.0rc1" / "1.0.post1").

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::version::{Source, VersionSpec};

/// One published version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
}

/// The versions that count, oldest first. Yanked, deleted and draft releases never count;
/// prereleases only with `prerelease = true`.
pub fn releases(spec: &VersionSpec, body: &[u8]) -> Result<Vec<Release>, String> {
    let mut all = match spec.source {
        Source::Regex => {
            let text = String::from_utf8_lossy(body);
            let re = spec.pattern.as_ref().ok_or("`pattern` is required")?;
            re.captures_iter(&text)
                .filter_map(|c| c.get(1).or(c.get(0)))
                .map(|m| release(m.as_str()))
                .collect()
        }
        source => {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| format!("the {source:?} response is not valid JSON: {e}"))?;
            read_json(spec, &v)?
        }
    };
    for r in &mut all {
        r.version = clean(spec, &r.version);
    }
    all.retain(|r| {
        let key = Key::parse(&r.version);
        key.is_some_and(|k| spec.prerelease || !k.pre)
            && spec
                .include
                .as_ref()
                .is_none_or(|re| re.is_match(&r.version))
            && !spec
                .exclude
                .as_ref()
                .is_some_and(|re| re.is_match(&r.version))
    });
    all.sort_by(|a, b| compare(&a.version, &b.version));
    all.dedup_by(|a, b| a.version == b.version);
    Ok(all)
}

fn clean(spec: &VersionSpec, v: &str) -> String {
    let v = v.trim();
    let v = spec
        .prefix
        .as_deref()
        .and_then(|p| v.strip_prefix(p))
        .unwrap_or(v);
    v.to_string()
}

fn read_json(spec: &VersionSpec, v: &Value) -> Result<Vec<Release>, String> {
    let missing =
        |what: &str| format!("the response has no {what}: is this the right package and source?");
    Ok(match spec.source {
        Source::Crates => v["versions"]
            .as_array()
            .ok_or_else(|| missing("`versions`"))?
            .iter()
            .filter(|x| !x["yanked"].as_bool().unwrap_or(false))
            .filter_map(|x| {
                let num = x["num"].as_str()?;
                Some(Release {
                    version: num.to_string(),
                    url: Some(format!("https://crates.io/crates/{}/{num}", spec.name)),
                    notes: None,
                    date: x["created_at"].as_str().map(str::to_string),
                })
            })
            .collect(),
        Source::Npm => {
            let versions = v["versions"]
                .as_object()
                .ok_or_else(|| missing("`versions`"))?;
            versions
                .keys()
                .map(|num| Release {
                    version: num.clone(),
                    url: Some(format!(
                        "https://www.npmjs.com/package/{}/v/{num}",
                        spec.name
                    )),
                    notes: None,
                    date: v["time"][num].as_str().map(str::to_string),
                })
                .collect()
        }
        Source::Pypi => v["releases"]
            .as_object()
            .ok_or_else(|| missing("`releases`"))?
            .iter()
            // A release whose files are all yanked (or that has none left) does not count.
            .filter(|(_, files)| {
                files.as_array().is_some_and(|f| {
                    !f.is_empty() && f.iter().any(|x| !x["yanked"].as_bool().unwrap_or(false))
                })
            })
            .map(|(num, files)| Release {
                version: num.clone(),
                url: Some(format!("https://pypi.org/project/{}/{num}/", spec.name)),
                notes: None,
                date: files[0]["upload_time_iso_8601"]
                    .as_str()
                    .map(str::to_string),
            })
            .collect(),
        Source::Github if spec.tags => v
            .as_array()
            .ok_or_else(|| missing("tag list"))?
            .iter()
            .filter_map(|t| {
                let name = t["name"].as_str()?;
                Some(Release {
                    version: name.to_string(),
                    url: Some(format!(
                        "https://github.com/{}/releases/tag/{name}",
                        spec.name
                    )),
                    notes: None,
                    date: None,
                })
            })
            .collect(),
        Source::Github => v
            .as_array()
            .ok_or_else(|| missing("release list"))?
            .iter()
            .filter(|r| !r["draft"].as_bool().unwrap_or(false))
            .filter(|r| spec.prerelease || !r["prerelease"].as_bool().unwrap_or(false))
            .filter_map(|r| {
                Some(Release {
                    version: r["tag_name"].as_str()?.to_string(),
                    url: r["html_url"].as_str().map(str::to_string),
                    notes: r["body"].as_str().map(str::to_string),
                    date: r["published_at"].as_str().map(str::to_string),
                })
            })
            .collect(),
        Source::Json => {
            let pointer = spec.pointer.as_deref().unwrap_or("");
            match v.pointer(pointer) {
                Some(Value::String(s)) => vec![release(s)],
                Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str()).map(release).collect(),
                Some(other) => {
                    return Err(format!("`{pointer}` is {other}, not a version string"));
                }
                None => return Err(format!("the document has nothing at `{pointer}`")),
            }
        }
        Source::Regex => unreachable!("handled above"),
    })
}

fn release(v: &str) -> Release {
    Release {
        version: v.to_string(),
        url: None,
        notes: None,
        date: None,
    }
}

/// A version's sort key: numeric components, then where it stands among pre- and
/// post-releases (dev < alpha < beta < rc < release < post), then the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    nums: Vec<u64>,
    stage: i8,
    stage_num: u64,
    pre: bool,
}

impl Key {
    fn parse(raw: &str) -> Option<Key> {
        // Leading words and separators: "v1.2", "release-1.4", "version 2".
        let start = raw.find(|c: char| c.is_ascii_digit())?;
        let s = raw[start..].to_ascii_lowercase();
        let num_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let nums: Vec<u64> = s[..num_end]
            .split('.')
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        if nums.is_empty() {
            return None;
        }
        let rest = s[num_end..].trim_start_matches(['-', '_', '+', '.']);
        let (stage, pre) = if rest.is_empty()
            || rest.starts_with("post")
            || rest.starts_with('r') && rest[1..].starts_with(|c: char| c.is_ascii_digit())
        {
            (if rest.is_empty() { 0 } else { 1 }, false)
        } else if rest.starts_with("dev")
            || rest.starts_with("snapshot")
            || rest.starts_with("nightly")
        {
            (-4, true)
        } else if rest.starts_with('a') {
            (-3, true)
        } else if rest.starts_with('b') {
            (-2, true)
        } else {
            // rc, pre, c, or any other suffix: a release candidate of sorts.
            (-1, true)
        };
        let stage_num = rest
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        Some(Key {
            nums,
            stage,
            stage_num,
            pre,
        })
    }
}

/// Orders two version strings; unparseable ones sort first.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (Key::parse(a), Key::parse(b)) {
        (Some(x), Some(y)) => {
            let n = x.nums.len().max(y.nums.len());
            for i in 0..n {
                let (p, q) = (x.nums.get(i).unwrap_or(&0), y.nums.get(i).unwrap_or(&0));
                match p.cmp(q) {
                    Ordering::Equal => {}
                    o => return o,
                }
            }
            (x.stage, x.stage_num).cmp(&(y.stage, y.stage_num))
        }
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// "major", "minor" or "patch" (or "prerelease"/"other") from `old` to `new`.
/// How far a new version moved from the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bump {
    Major,
    Minor,
    Patch,
    Prerelease,
    Other,
}

impl Bump {
    pub fn as_str(self) -> &'static str {
        match self {
            Bump::Major => "major",
            Bump::Minor => "minor",
            Bump::Patch => "patch",
            Bump::Prerelease => "prerelease",
            Bump::Other => "other",
        }
    }
}

impl std::fmt::Display for Bump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Bump {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

pub fn bump(old: &str, new: &str) -> Bump {
    match (Key::parse(old), Key::parse(new)) {
        (Some(a), Some(b)) => {
            let at = |k: &Key, i: usize| *k.nums.get(i).unwrap_or(&0);
            // 0.x: a minor bump is breaking by semver convention.
            if at(&a, 0) != at(&b, 0) || (at(&a, 0) == 0 && at(&a, 1) != at(&b, 1)) {
                Bump::Major
            } else if at(&a, 1) != at(&b, 1) {
                Bump::Minor
            } else if a.nums != b.nums {
                Bump::Patch
            } else {
                Bump::Prerelease
            }
        }
        _ => Bump::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_ordering() {
        let mut v = vec![
            "1.10.0",
            "v1.2",
            "1.2.3-beta.1",
            "1.2.3",
            "release-1.4",
            "1.2.3rc1",
            "1.2.3.post1",
            "1.2.3.dev1",
            "1.2.3a2",
            "1.9.9",
        ];
        v.sort_by(|a, b| compare(a, b));
        assert_eq!(
            v,
            vec![
                "v1.2",
                "1.2.3.dev1",
                "1.2.3a2",
                "1.2.3-beta.1",
                "1.2.3rc1",
                "1.2.3",
                "1.2.3.post1",
                "release-1.4",
                "1.9.9",
                "1.10.0"
            ]
        );
    }

    #[test]
    fn bumps() {
        assert_eq!(bump("2.9.0", "3.0.0"), "major");
        assert_eq!(bump("0.11.3", "0.12.0"), "major");
        assert_eq!(bump("1.2.3", "1.3.0"), "minor");
        assert_eq!(bump("1.2.3", "1.2.4"), "patch");
    }

    #[test]
    fn prereleases_are_skipped_unless_asked() {
        let spec = |pre| VersionSpec {
            source: Source::Json,
            name: String::new(),
            tags: false,
            prerelease: pre,
            prefix: None,
            include: None,
            exclude: None,
            pattern: None,
            pointer: Some("/v".into()),
        };
        let body = br#"{"v": ["1.0.0", "2.0.0-beta.1", "1.1.0"]}"#;
        let last = |pre| {
            releases(&spec(pre), body)
                .unwrap()
                .last()
                .unwrap()
                .version
                .clone()
        };
        assert_eq!(last(false), "1.1.0");
        assert_eq!(last(true), "2.0.0-beta.1");
    }
}
