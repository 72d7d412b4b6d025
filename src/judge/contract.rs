//! Integration contracts: what an integration assumes about a page (`expect.selectors` match,
//! `expect.text` appears, `expect.absent` does not, `expect.status`), checked on every
//! successful fetch. A broken expectation is a `contract_broken` event, reported once when it
//! breaks and once when it holds again; a vanished selector comes with the nearest candidates
//! in the new page as hints ("maybe `#compose .send-btn`").

use std::collections::BTreeMap;

use scraper::{ElementRef, Html, Selector};
use serde::{Deserialize, Serialize};

use crate::config::expect::Expect;

/// What an element that matched looked like, to find it again after a redesign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Signature {
    pub tag: String,
    pub id: Option<String>,
    pub classes: Vec<String>,
    pub data: Vec<(String, String)>,
    pub text: String,
}

/// The state of one expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub ok: bool,
    /// Selectors: how many elements matched.
    #[serde(default)]
    pub count: usize,
    /// Selectors: the first match, while it matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

/// Every expectation's state, by a stable label ("selector `#x`", "text `Sign in`", ...).
pub type State = BTreeMap<String, Check>;

/// A change in an expectation, to report.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub label: String,
    pub broken: bool,
    pub summary: String,
    pub hints: Vec<String>,
    pub before: usize,
    pub now: usize,
}

/// Evaluates the expectations on a page and compares with the previous state.
pub fn evaluate(
    expect: &Expect,
    status: u16,
    body_text: &str,
    page_text: &str,
    previous: &State,
) -> (State, Vec<Change>) {
    let mut e = Evaluation {
        previous,
        state: State::new(),
        changes: Vec::new(),
    };
    if !expect.selectors.is_empty() {
        let doc = crate::extract::html::parse(body_text);
        for (text, sel) in &expect.selectors {
            e.selector(&doc, text, sel);
        }
    }
    for t in &expect.text {
        e.flag(
            format!("text `{t}`"),
            page_text.contains(t.as_str()),
            format!("the text `{t}` is no longer on the page"),
            format!("the text `{t}` is back on the page"),
        );
    }
    for t in &expect.absent {
        e.flag(
            format!("absent `{t}`"),
            !page_text.contains(t.as_str()),
            format!("the text `{t}` appeared on the page"),
            format!("the text `{t}` is gone from the page again"),
        );
    }
    if !expect.paths.is_empty() {
        // JSON, or YAML (read into the same model).
        let doc = crate::extract::parse_document(body_text, "json")
            .or_else(|_| crate::extract::parse_document(body_text, "yaml"))
            .ok();
        for p in &expect.paths {
            let ok = doc
                .as_ref()
                .is_some_and(|d| !crate::extract::json::select(d, p).is_empty());
            e.flag(
                format!("path `{p}`"),
                ok,
                format!("`{p}` is missing from the document"),
                format!("`{p}` is back in the document"),
            );
        }
    }
    if let Some(want) = expect.status {
        e.flag(
            format!("status {want}"),
            status == want,
            format!("the page answered HTTP {status}, not {want}"),
            format!("the page answers HTTP {want} again"),
        );
    }
    (e.state, e.changes)
}

/// The expectations' new state, and what broke or held again since the previous one.
struct Evaluation<'a> {
    previous: &'a State,
    state: State,
    changes: Vec<Change>,
}

impl Evaluation<'_> {
    /// A selector: how many elements match, and the first one's signature (kept from
    /// before when none does, so the next break can still be explained).
    fn selector(&mut self, doc: &Html, text: &str, sel: &Selector) {
        let label = format!("selector `{text}`");
        let matches: Vec<ElementRef<'_>> = doc.select(sel).collect();
        let before = self.previous.get(&label);
        let check = Check {
            ok: !matches.is_empty(),
            count: matches.len(),
            signature: matches
                .first()
                .map(signature)
                .or_else(|| before.and_then(|b| b.signature.clone())),
        };
        if before.is_none_or(|b| b.ok) && !check.ok {
            let was = before.map_or(0, |b| b.count);
            let hints = before
                .and_then(|b| b.signature.as_ref())
                .map(|s| hints(doc, text, s))
                .unwrap_or_default();
            let mut summary = format!("`{text}` matched {was}, now 0");
            if let Some(h) = hints.first() {
                summary.push_str(&format!("; maybe `{h}`"));
            }
            self.changes.push(Change {
                label: label.clone(),
                broken: true,
                summary,
                hints,
                before: was,
                now: 0,
            });
        } else if before.is_some_and(|b| !b.ok) && check.ok {
            self.changes.push(Change {
                label: label.clone(),
                broken: false,
                summary: format!("`{text}` matches again ({})", check.count),
                hints: Vec::new(),
                before: 0,
                now: check.count,
            });
        }
        self.state.insert(label, check);
    }

    /// An expectation that holds or not: a change when it breaks (`broke`) or holds again
    /// (`held`).
    fn flag(&mut self, label: String, ok: bool, broke: String, held: String) {
        let before = self.previous.get(&label);
        let (broken, summary) = if before.is_none_or(|b| b.ok) && !ok {
            (true, Some(broke))
        } else if before.is_some_and(|b| !b.ok) && ok {
            (false, Some(held))
        } else {
            (false, None)
        };
        if let Some(summary) = summary {
            self.changes.push(Change {
                label: label.clone(),
                broken,
                summary,
                hints: Vec::new(),
                before: usize::from(broken),
                now: usize::from(!broken),
            });
        }
        let check = Check {
            ok,
            count: usize::from(ok),
            signature: None,
        };
        self.state.insert(label, check);
    }
}

/// The script and stylesheet URLs of a page, sorted: a vendor's frontend deploy shows here
/// (new fingerprinted bundle names) long before its text changes.
pub fn assets(html: &str) -> Vec<String> {
    let doc = crate::extract::html::parse(html);
    let sel = Selector::parse(
        "script[src], link[rel~='stylesheet'][href], link[rel='modulepreload'][href], link[rel='preload'][as='script'][href]",
    )
    .expect("the asset selector parses");
    let mut v: Vec<String> = doc
        .select(&sel)
        .filter_map(|e| e.value().attr("src").or(e.value().attr("href")))
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// (removed, added) between two asset lists, or `None` when they are the same set.
pub fn asset_changes(old: &[String], new: &[String]) -> Option<(Vec<String>, Vec<String>)> {
    let removed: Vec<String> = old.iter().filter(|a| !new.contains(a)).cloned().collect();
    let added: Vec<String> = new.iter().filter(|a| !old.contains(a)).cloned().collect();
    (!removed.is_empty() || !added.is_empty()).then_some((removed, added))
}

fn signature(el: &ElementRef<'_>) -> Signature {
    let v = el.value();
    Signature {
        tag: v.name().to_string(),
        id: v.id().map(str::to_string),
        classes: v.classes().map(str::to_string).collect(),
        data: v
            .attrs()
            .filter(|(k, _)| k.starts_with("data-") || *k == "aria-label" || *k == "name")
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        text: el
            .text()
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(80)
            .collect(),
    }
}

/// Selectors for the elements of the new page that most resemble the vanished match: same
/// tag, similar id, classes, data attributes or text. Each hint keeps the selector's leading
/// context (`#compose .send-button` -> `#compose .send-btn`) when that still matches.
pub fn hints(doc: &Html, selector_text: &str, old: &Signature) -> Vec<String> {
    let all = Selector::parse("*").expect("* parses");
    let mut scored: Vec<(f64, ElementRef<'_>)> = doc
        .select(&all)
        .map(|el| (similarity(old, &signature(&el)), el))
        .filter(|(s, _)| *s >= 0.5)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let context: Vec<&str> = selector_text.split_whitespace().collect();
    let prefix = context[..context.len().saturating_sub(1)].join(" ");
    // The classes the selector itself names are the ones to find again.
    let named: Vec<String> = context
        .last()
        .map(|last| {
            last.split('.')
                .skip(1)
                .map(|c| c.split(['#', '[', ':']).next().unwrap_or("").to_string())
                .filter(|c| !c.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for (_, el) in scored.into_iter().take(10) {
        // Up to two ways to select each candidate (say a class and a data attribute).
        let mut taken = 0;
        for compound in compounds(&signature(&el), old, &named) {
            let with_context = if prefix.is_empty() {
                compound.clone()
            } else {
                format!("{prefix} {compound}")
            };
            let pick = [with_context, compound]
                .into_iter()
                .find(|s| Selector::parse(s).is_ok_and(|sel| doc.select(&sel).next().is_some()));
            if let Some(p) = pick
                && !out.contains(&p)
            {
                out.push(p);
                taken += 1;
                if taken == 2 {
                    break;
                }
            }
        }
        if out.len() >= 3 {
            break;
        }
    }
    out
}

/// Ways to select a candidate, most telling first.
fn compounds(c: &Signature, old: &Signature, named: &[String]) -> Vec<String> {
    let mut v = Vec::new();
    let mut data = Vec::new();
    for (k, val) in &c.data {
        if old.data.iter().any(|(ok, _)| ok == k) && !val.contains(['\'', '\\']) {
            data.push(format!("{}[{k}='{val}']", c.tag));
        }
    }
    // In the selector's own vocabulary first: a class for a class selector.
    if named.is_empty() {
        v.append(&mut data);
    }
    if let Some(id) = c.id.as_deref().filter(|i| is_ident(i)) {
        v.push(format!("#{id}"));
    }
    let classes: Vec<&String> = c.classes.iter().filter(|k| is_ident(k)).collect();
    let targets: &[String] = if named.is_empty() {
        &old.classes
    } else {
        named
    };
    if let Some(best) = classes
        .iter()
        .max_by(|a, b| best_class(a, targets).total_cmp(&best_class(b, targets)))
    {
        v.push(format!(".{best}"));
    }
    v.append(&mut data);
    v.push(c.tag.clone());
    v
}

fn best_class(c: &str, targets: &[String]) -> f64 {
    targets
        .iter()
        .map(|o| strsim::normalized_levenshtein(o, c))
        .fold(0.0, f64::max)
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit() || c == '-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// 0..=1: how much a candidate resembles the old match.
fn similarity(old: &Signature, c: &Signature) -> f64 {
    let mut score = 0.0;
    let mut weight = 0.0;
    let mut add = |s: f64, w: f64| {
        score += s * w;
        weight += w;
    };
    add(if old.tag == c.tag { 1.0 } else { 0.0 }, 1.0);
    if let Some(oid) = &old.id {
        add(
            c.id.as_deref()
                .map_or(0.0, |id| strsim::normalized_levenshtein(oid, id)),
            // The same id on another element (an iframe that became a div) is strong evidence.
            3.0,
        );
    }
    if !old.classes.is_empty() {
        let best = old
            .classes
            .iter()
            .map(|o| {
                c.classes
                    .iter()
                    .map(|k| strsim::normalized_levenshtein(o, k))
                    .fold(0.0, f64::max)
            })
            .sum::<f64>()
            / old.classes.len() as f64;
        add(best, 2.0);
    }
    if !old.data.is_empty() {
        let same = old
            .data
            .iter()
            .filter(|(k, v)| {
                c.data.iter().any(|(ck, cv)| {
                    ck == k && (cv == v || strsim::normalized_levenshtein(v, cv) > 0.6)
                })
            })
            .count();
        add(same as f64 / old.data.len() as f64, 2.0);
    }
    if !old.text.is_empty() {
        add(strsim::normalized_levenshtein(&old.text, &c.text), 1.5);
    }
    if weight == 0.0 { 0.0 } else { score / weight }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(selectors: &[&str]) -> Expect {
        Expect {
            selectors: selectors
                .iter()
                .map(|s| (s.to_string(), Selector::parse(s).unwrap()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn vanished_selector_gets_a_hint_with_its_context() {
        let e = expect(&["#compose .send-button"]);
        let before = r#"<div id="compose"><button class="send-button primary">Send</button></div>"#;
        let after = r#"<div id="compose"><button class="send-btn primary">Send</button><a class="help">Help</a></div>"#;
        let (s1, c1) = evaluate(&e, 200, before, "Send", &State::new());
        assert!(c1.is_empty(), "holding from the start is not news");
        let (s2, c2) = evaluate(&e, 200, after, "Send", &s1);
        assert_eq!(c2.len(), 1);
        assert!(c2[0].broken);
        assert_eq!(
            c2[0].summary,
            "`#compose .send-button` matched 1, now 0; maybe `#compose .send-btn`"
        );
        // Reported once: still broken is quiet; back is said once.
        let (s3, c3) = evaluate(&e, 200, after, "Send", &s2);
        assert!(c3.is_empty());
        let (_, c4) = evaluate(&e, 200, before, "Send", &s3);
        assert_eq!(c4.len(), 1);
        assert!(!c4[0].broken);
    }

    #[test]
    fn text_absent_and_status() {
        let e = Expect {
            text: vec!["Sign in".into()],
            absent: vec!["Scheduled maintenance".into()],
            status: Some(200),
            ..Default::default()
        };
        let (s, c) = evaluate(&e, 200, "", "Welcome. Sign in", &State::new());
        assert!(c.is_empty());
        let (_, c) = evaluate(&e, 203, "", "Scheduled maintenance tonight", &s);
        let labels: Vec<&str> = c.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            vec![
                "text `Sign in`",
                "absent `Scheduled maintenance`",
                "status 200"
            ]
        );
    }
}
