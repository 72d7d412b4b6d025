//! `forewarn import`: real-shaped lists of urlwatch (urls.yaml), nvchecker (its TOML) and
//! changedetection.io (url-watches.json, or a backup zip) each become a
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

/// nvchecker's documented configuration: `[__config__]`, then a table per package.
const NVCHECKER: &str = r##"[__config__]
oldver = "old_ver.json"
newver = "new_ver.json"

[reqwest]
source = "cratesio"

[fd]
source = "github"
github = "sharkdp/fd"
use_max_tag = true
prefix = "v"

["requests"]
source = "pypi"
pypi = "requests"
use_pre_release = true

[typescript]
source = "npm"
npm = "typescript"
include_regex = '^5\.'

[nginx]
source = "regex"
url = "https://nginx.org/en/download.html"
regex = 'nginx-([\d.]+)\.tar\.gz'

[linux]
source = "cmd"
cmd = "uname -r"

[foo]
source = "aur"
"##;

#[test]
fn an_nvchecker_config_becomes_version_watches_that_load() {
    let env = TestEnv::new();
    let src = env.path().join("nvchecker.toml");
    std::fs::write(&src, NVCHECKER).unwrap();
    let out = env.path().join("watchlists").join("versions.toml");
    let run = env.run(&[
        "import",
        "nvchecker",
        src.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let toml = std::fs::read_to_string(&out).unwrap();
    for needle in [
        "name = \"reqwest\"\nkind = \"version\"\nsource = \"crates\"\npackage = \"reqwest\"",
        "source = \"github\"\nrepo = \"sharkdp/fd\"\ntags = true",
        "prefix = \"v\"",
        "source = \"pypi\"\npackage = \"requests\"\nprerelease = true",
        r"include = '^5\.'",
        "source = \"regex\"\nurl = \"https://nginx.org/en/download.html\"",
        r"pattern = 'nginx-([\d.]+)\.tar\.gz'",
    ] {
        assert!(toml.contains(needle), "{needle} in:\n{toml}");
    }
    for needle in [
        "line 1: `[__config__]`",
        "line 29: package `linux`: the `cmd` source has no forewarn equivalent",
        "line 33: package `foo`: the `aur` source",
    ] {
        assert!(toml.contains(needle), "{needle} in:\n{toml}");
    }
    assert!(
        run.stderr.contains("nvchecker.toml:29: not imported"),
        "{}",
        run.stderr
    );
    let list = env.run(&["list"]);
    assert_eq!(list.code, 0, "the watchlist loads: {list:?}");
    assert_eq!(list.stdout.lines().count(), 1 + 5, "{}", list.stdout);
}

/// changedetection.io's datastore, as its export and its backups hold it.
const WATCHES_JSON: &str = r##"{
  "settings": {"application": {"empty_pages_are_a_change": false}},
  "watching": {
    "3f2c1a9e-0000-4000-8000-000000000001": {
      "url": "https://app.example.com/inbox",
      "title": "Vendor inbox",
      "include_filters": ["#toolbar", "xpath://div[@id='legacy']"],
      "subtractive_selectors": [".ad", "footer"],
      "ignore_text": ["Last updated", "/visitors: \\d+/i"],
      "headers": {"Authorization": "Bearer ${API_TOKEN}"},
      "time_between_check": {"weeks": null, "days": null, "hours": 3, "minutes": 30, "seconds": null},
      "fetch_backend": "html_webdriver",
      "paused": false,
      "tags": [],
      "trigger_text": []
    },
    "3f2c1a9e-0000-4000-8000-000000000002": {
      "url": "https://example.org/pricing",
      "title": "",
      "paused": true,
      "method": "POST",
      "body": "q=1",
      "text_should_not_be_present": ["Sold out"]
    }
  }
}"##;

/// A zip archive of one deflated member, as changedetection.io's backups are.
fn zip_of(name: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    let packed = z.finish().unwrap();
    let crc = 0u32; // not checked by readers that do not verify; forewarn does not
    let mut out = Vec::new();
    let le16 = |v: usize| (v as u16).to_le_bytes();
    let le32 = |v: usize| (v as u32).to_le_bytes();
    out.extend(b"PK\x03\x04");
    out.extend(le16(20));
    out.extend(le16(0));
    out.extend(le16(8));
    out.extend([0u8; 4]);
    out.extend(crc.to_le_bytes());
    out.extend(le32(packed.len()));
    out.extend(le32(data.len()));
    out.extend(le16(name.len()));
    out.extend(le16(0));
    out.extend(name.as_bytes());
    out.extend(&packed);
    let central = out.len();
    out.extend(b"PK\x01\x02");
    out.extend(le16(20));
    out.extend(le16(20));
    out.extend(le16(0));
    out.extend(le16(8));
    out.extend([0u8; 4]);
    out.extend(crc.to_le_bytes());
    out.extend(le32(packed.len()));
    out.extend(le32(data.len()));
    out.extend(le16(name.len()));
    out.extend(le16(0));
    out.extend(le16(0));
    out.extend(le16(0));
    out.extend(le16(0));
    out.extend(le32(0));
    out.extend(le32(0));
    out.extend(name.as_bytes());
    let size = out.len() - central;
    out.extend(b"PK\x05\x06");
    out.extend(le16(0));
    out.extend(le16(0));
    out.extend(le16(1));
    out.extend(le16(1));
    out.extend(le32(size));
    out.extend(le32(central));
    out.extend(le16(0));
    out
}

#[test]
fn a_changedetection_export_or_backup_becomes_a_watchlist_that_loads() {
    let env = TestEnv::new();
    let json = env.path().join("url-watches.json");
    std::fs::write(&json, WATCHES_JSON).unwrap();
    let backup = env.path().join("changedetection-backup.zip");
    std::fs::write(&backup, zip_of("url-watches.json", WATCHES_JSON.as_bytes())).unwrap();
    let mut outputs = Vec::new();
    for (src, out) in [(&json, "a.toml"), (&backup, "b.toml")] {
        let out = env.path().join(out);
        let run = env.run(&[
            "import",
            "changedetection",
            src.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(run.code, 0, "{run:?}");
        outputs.push(std::fs::read_to_string(&out).unwrap());
    }
    assert_eq!(outputs[0], outputs[1], "the backup holds the same watches");
    let toml = &outputs[0];
    for needle in [
        "name = \"vendor-inbox\"\nurl = \"https://app.example.com/inbox\"\nbrowser = true\nevery = \"3h30m\"",
        "select = [\"#toolbar\"]",
        "remove = [\".ad\", \"footer\"]",
        r#"ignore = ["Last updated", '(?i)visitors: \d+']"#,
        "headers.\"Authorization\" = \"Bearer ${API_TOKEN}\"",
        "name = \"example-org-pricing\"\nurl = \"https://example.org/pricing\"\nenabled = false",
    ] {
        assert!(toml.contains(needle), "{needle} in:\n{toml}");
    }
    for needle in [
        "line 4: the XPath filter `xpath://div[@id='legacy']` of `vendor-inbox`",
        "line 17: the request method or body of `example-org-pricing`",
        "line 17: `text_should_not_be_present` of `example-org-pricing`",
    ] {
        assert!(toml.contains(needle), "{needle} in:\n{toml}");
    }
    std::fs::create_dir_all(env.path().join("watchlists")).unwrap();
    std::fs::copy(
        env.path().join("a.toml"),
        env.path().join("watchlists/cd.toml"),
    )
    .unwrap();
    let list = env.run(&["list"]);
    assert_eq!(list.code, 0, "the watchlist loads: {list:?}");
    assert_eq!(list.stdout.lines().count(), 1 + 2, "{}", list.stdout);
}

#[test]
fn a_file_that_is_not_the_tools_format_is_refused_plainly() {
    let env = TestEnv::new();
    let src = env.path().join("x.json");
    std::fs::write(&src, "{\"nothing\": 1}").unwrap();
    let run = env.run(&["import", "changedetection", src.to_str().unwrap()]);
    assert_eq!(run.code, 3, "invalid input: {run:?}");
    assert!(
        run.stderr.contains("x.json: no `watching` object"),
        "{}",
        run.stderr
    );
}
