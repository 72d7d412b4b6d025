//! JSON paths as written in `select` and `ignore_paths`: `$.a.b`, `$.items[*].id`, `$..id`.

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Key(String),
    AnyIndex,
    Descend(String),
}

pub(crate) fn parse_path(p: &str) -> Vec<Step> {
    let rest = p.trim().trim_start_matches('$');
    let mut steps = Vec::new();
    let mut s = rest;
    while !s.is_empty() {
        if let Some(r) = s.strip_prefix("..") {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            steps.push(Step::Descend(r[..end].to_string()));
            s = &r[end..];
        } else if let Some(r) = s.strip_prefix("[*]") {
            steps.push(Step::AnyIndex);
            s = r;
        } else if let Some(r) = s.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            steps.push(Step::Key(r[..end].to_string()));
            s = &r[end..];
        } else if let Some(r) = s.strip_prefix("['") {
            let end = r.find("']").unwrap_or(r.len());
            steps.push(Step::Key(r[..end].to_string()));
            s = r.get(end + 2..).unwrap_or("");
        } else {
            break;
        }
    }
    steps
}

/// Checks an `ignore_paths` entry.
pub fn check_path(p: &str) -> Result<(), String> {
    let t = p.trim();
    if !t.starts_with('$') || (t.len() > 1 && parse_path(t).is_empty()) {
        return Err(format!(
            "invalid JSON path `{p}`: write it like \"$.meta.generated_at\", \"$.items[*].updated\" or \"$..request_id\""
        ));
    }
    Ok(())
}
