//! `forewarn import urlwatch`: a real-shaped urls.yaml (the documented job forms) becomes a
//! watchlist that loads; what cannot be imported is listed by line, with why.

use crate::util::TestEnv;

const URLS: &str = r##"name: "Vendor inbox"
url: "https://app.example.com/inbox"
filter:
  - css: "#toolbar"
  - html2text
  - strip
---
url: "https://example.org/changelog"
filter: "css:main article,html2text,re.sub:\\d{4}-\\d{2}-\\d{2}"
ssl_no_verify: true
max_tries: 3
---
# a command job
command: "ls -al /var/log"
---
name: "API"
url: "https://api.example.com/v1/items.json"
headers:
  Authorization: "Bearer ${API_TOKEN}"
filter:
  - jq: ".data.items[0]"
---
name: "Legacy"
url: "https://example.net/page"
filter:
  - xpath: "//div[@id='main']"
diff_tool: "wdiff"
---
name: "App"
url: "https://app.example.net/"
use_browser: true
"##;

#[test]
fn a_urlwatch_list_becomes_a_watchlist_that_loads() {
    let env = TestEnv::new();
    let src = env.path().join("urls.yaml");
    std::fs::write(&src, URLS).unwrap();
    let out = env.path().join("watchlists").join("imported.toml");
    let run = env.run(&[
        "import",
        "urlwatch",
        src.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let toml = std::fs::read_to_string(&out).unwrap();
    for needle in [
        "name = \"vendor-inbox\"",
        "select = [\"#toolbar\"]",
        "select = [\"main article\"]",
        r"ignore = ['\d{4}-\d{2}-\d{2}']",
        "insecure = true",
        "retries = 2",
        "headers.\"Authorization\" = \"Bearer ${API_TOKEN}\"",
        "kind = \"json\"",
        "select = [\"/data/items/0\"]",
        "browser = true",
    ] {
        assert!(toml.contains(needle), "{needle} in:\n{toml}");
    }
    // What was left out, by line, with why: in the file's header and on stderr.
    for needle in [
        "line 13: a `command` job runs a program",
        "line 23: the xpath filter `//div[@id='main']`: forewarn selects with CSS",
        "line 23: `diff_tool` of job `legacy`: forewarn has no such setting",
    ] {
        assert!(toml.contains(needle), "{needle} in:\n{toml}");
    }
    assert!(
        run.stderr
            .contains("urls.yaml:13: not imported: a `command` job"),
        "{}",
        run.stderr
    );
    let list = env.run(&["list"]);
    assert_eq!(list.code, 0, "the watchlist loads: {list:?}");
    assert_eq!(list.stdout.lines().count(), 1 + 5, "{}", list.stdout);
}
