//! What an integration assumes about a page: `[watch.expect]`, checked on every fetch.

use scraper::Selector;

/// The expectations of one watch.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub selectors: Vec<(String, Selector)>,
    pub text: Vec<String>,
    pub absent: Vec<String>,
    pub status: Option<u16>,
    /// JSON paths that must exist (`$.data[*].id`, `$.pagination.next`).
    pub paths: Vec<String>,
}

impl Expect {
    pub fn is_empty(&self) -> bool {
        self.selectors.is_empty()
            && self.text.is_empty()
            && self.absent.is_empty()
            && self.status.is_none()
            && self.paths.is_empty()
    }
}
