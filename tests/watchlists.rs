//! Issue 2: watchlist validation and `forewarn add`.

use crate::util::{Page, Server, TestEnv, one_watch};

#[test]
fn invalid_watchlist_exits_3_with_line_and_column() {
    let srv = Server::start();
    let env = TestEnv::new().watchlist(&format!(
        "# comment\n[[watch]]\nname = \"a\"\nurl = \"{}\"\nselct = \"#x\"\n",
        srv.url("/a")
    ));
    let run = env.run(&["check"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("main.toml:5:1: unknown key `selct`"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("expected one of"), "{}", run.stderr);
    assert!(
        run.stderr.contains("did you mean the key `select`?"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was fetched"), "{}", run.stderr);
    assert!(srv.seen("/a").is_empty());
}

#[test]
fn bad_values_are_located() {
    let env = TestEnv::new().watchlist(
        "[[watch]]\nname = \"a\"\nurl = \"notaurl\"\n\n[[watch]]\nname = \"b\"\nurl = \"https://example.com/\"\nselect = \"div[\"\nignore = '(unclosed'\n",
    );
    let run = env.run(&["check"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("main.toml:3:7"), "{}", run.stderr);
    assert!(
        run.stderr.contains("invalid URL `notaurl`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("main.toml:8:"), "{}", run.stderr);
    assert!(
        run.stderr.contains("invalid CSS selector"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("main.toml:9:"), "{}", run.stderr);
    assert!(run.stderr.contains("invalid regex"), "{}", run.stderr);
    assert!(run.stderr.contains("3 problems"), "{}", run.stderr);
}

#[test]
fn duplicate_names_across_files_are_refused() {
    let env = TestEnv::new().watchlist(&one_watch("dup", "https://example.com/a", ""));
    env.file(
        "watchlists/other.toml",
        &format!("# other\n{}", one_watch("dup", "https://example.com/b", "")),
    );
    let run = env.run(&["check"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains("duplicate watch name `dup`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("other.toml:3:1"), "{}", run.stderr);
}

#[test]
fn missing_watchlists_say_what_to_do() {
    let env = TestEnv::new();
    let run = env.run(&["check"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("forewarn add"), "{}", run.stderr);
}

#[test]
fn add_keeps_comments_and_refuses_duplicates() {
    let env = TestEnv::new();
    let original = "# Vendor pages we depend on\n\n[defaults]\ntimeout = \"20s\"  # slow vendor\n\n[[watch]]\nname = \"existing\"   # keep me\nurl = \"https://example.com/a\"\n";
    env.file("watchlists/default.toml", original);
    let run = env.run(&[
        "add",
        "https://app.vendor.example/inbox",
        "--name",
        "vendor-inbox",
        "--select",
        "#toolbar",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let text = env.read("watchlists/default.toml");
    assert!(text.starts_with(original), "{text}");
    assert!(
        text.ends_with(
            "\n[[watch]]\nname = \"vendor-inbox\"\nurl = \"https://app.vendor.example/inbox\"\nselect = \"#toolbar\"\n"
        ),
        "{text}"
    );

    let dup = env.run(&["add", "https://example.com/other", "--name", "existing"]);
    assert_eq!(dup.code, 3, "{dup:?}");
    assert!(dup.stderr.contains("already exists"), "{}", dup.stderr);
    let bad_url = env.run(&["add", "not a url", "--name", "x"]);
    assert_eq!(bad_url.code, 3);
    assert!(bad_url.stderr.contains("invalid URL"), "{}", bad_url.stderr);
    let bad_sel = env.run(&["add", "https://example.com/", "--select", "##"]);
    assert_eq!(bad_sel.code, 3);
    assert!(
        bad_sel.stderr.contains("invalid CSS selector"),
        "{}",
        bad_sel.stderr
    );
    assert_eq!(
        env.read("watchlists/default.toml")
            .matches("[[watch]]")
            .count(),
        2,
        "refused adds wrote nothing"
    );

    // A derived name, and --watchlist FILE names the file to write.
    let run = env.run(&[
        "add",
        "https://docs.example.com/api/",
        "--watchlist",
        "watchlists/docs.toml",
        "--select",
        "main",
        "--select",
        ".api",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let docs = env.read("watchlists/docs.toml");
    assert!(docs.contains("name = \"docs-example-com-api\""), "{docs}");
    assert!(docs.contains("select = [\"main\", \".api\"]"), "{docs}");
    let check = env.run(&["list"]);
    assert_eq!(check.code, 0, "{check:?}");
    check.says("docs-example-com-api");
}

#[test]
fn example_watchlist_is_complete_and_valid() {
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("watchlists/example.toml"),
    )
    .unwrap();
    let env = TestEnv::new();
    env.file("watchlists/example.toml", &example);
    let run = env.run(&["list"]);
    assert_eq!(run.code, 0, "{run:?}");
    // Every documented key appears in the example.
    for key in [
        "[defaults]",
        "timeout",
        "keep",
        "max_size",
        "name",
        "url",
        "kind",
        "select",
        "remove",
        "ignore",
        "headers",
        "masks",
        "confirm",
        "confirm_refetch",
        "schedule",
        "every",
        "timezone",
        "retries",
        "[hosts.",
        "interval",
        "heartbeat_url",
        "match",
        "exclude",
        "max_entries",
        "source",
        "package",
        "repo",
        "registry",
        "prerelease",
        "include",
        "prefix",
        "tags",
        "pattern",
        "pointer",
        "expect.selectors",
        "expect.text",
        "expect.absent",
        "expect.status",
        "track_assets",
        "ignore_paths",
        "keep_for",
        "notify",
        "severity",
        "failures_before_alert",
        "remind_every",
        "[channels.",
        "min_severity",
        "batch",
        "immediate",
        "secret",
        "type = \"desktop\"",
        "type = \"slack\"",
        "type = \"webhook\"",
        "type = \"email\"",
        "type = \"command\"",
        "ca_file",
        "insecure",
    ] {
        assert!(example.contains(key), "example.toml lacks `{key}`");
    }
    assert!(run.stdout.lines().count() >= 4, "{}", run.stdout);
}

#[test]
fn help_documents_exit_codes() {
    let env = TestEnv::new();
    let run = env.run(&["--help"]);
    assert_eq!(run.code, 0);
    for line in [
        "0  the pass completed",
        "2  one or more watches failed",
        "3  invalid watchlist or arguments",
        "4  with --fail-on-change",
    ] {
        run.says(line);
    }
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    for code in ["| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 4 |"] {
        assert!(readme.contains(code), "README lacks exit code row {code}");
    }
}

/// One run lists every problem of every file: a typo in `[defaults]`, two in one watch, and
/// a duplicate name, in file order, each with its place and nothing else before the hint.
#[test]
fn every_problem_is_listed_in_one_run() {
    let env = TestEnv::new().watchlist(
        "[defaults]\ntimeuot = \"5s\"\n\n[[watch]]\nname = \"a\"\nurl = \"https://e.com/a\"\nselct = \"#x\"\nkepp = 3\n\n[[watch]]\nname = \"a\"\nurl = \"https://e.com/b\"\n",
    );
    let run = env.run(&["check"]);
    assert_eq!(run.code, 3, "{run:?}");
    let at: Vec<usize> = [
        "main.toml:2:1: unknown key `timeuot`",
        "main.toml:7:1: unknown key `selct`",
        "main.toml:8:1: unknown key `kepp`",
        "duplicate watch name `a`",
    ]
    .iter()
    .map(|n| {
        run.stderr
            .find(n)
            .unwrap_or_else(|| panic!("{n}: {}", run.stderr))
    })
    .collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "in file order: {}",
        run.stderr
    );
    for hint in ["`timeout`?", "`select`?", "`keep`?"] {
        assert!(
            run.stderr.contains(&format!("did you mean the key {hint}")),
            "{}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("4 problems"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("line 2, column 1"),
        "the place once: {}",
        run.stderr
    );
}

/// What fails at load, not at fetch time: each with its file, line and column.
#[test]
fn header_line_breaks_huge_sizes_and_bad_utf8_are_load_errors() {
    let env = TestEnv::new().watchlist(
        "[[watch]]\nname = \"a\"\nurl = \"https://e.com/a\"\nheaders = { X-Token = \"a\\r\\nInjected: yes\" }\nmax_size = \"99999999999999GiB\"\n",
    );
    let run = env.run(&["check"]);
    assert_eq!(run.code, 3, "{run:?}");
    for needle in [
        "main.toml:4:",
        "has a line break or NUL",
        "main.toml:5:12: size `99999999999999GiB` is too large: at most 4GiB",
    ] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
    let env = TestEnv::new();
    let mut bytes = b"[[watch]]\nname = \"caf".to_vec();
    bytes.extend([0xe9, b'"']);
    bytes.extend(b"\nurl = \"https://e.com/\"\n");
    std::fs::create_dir_all(env.path().join("watchlists")).unwrap();
    std::fs::write(env.path().join("watchlists/latin1.toml"), bytes).unwrap();
    let run = env.run(&["check"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr
            .contains("latin1.toml:2:12: the watchlist is not UTF-8 text"),
        "{}",
        run.stderr
    );
}

/// `add --watchlist FILE` reads the watchlists as `check` does: channels declared in
/// `forewarn.toml` beside `watchlists/` are found, and real problems are printed.
#[test]
fn add_to_a_file_finds_forewarn_toml_and_prints_problems() {
    let env = TestEnv::new();
    env.file(
        "forewarn.toml",
        "[channels.team]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n",
    );
    env.file(
        "watchlists/vendor.toml",
        "[[watch]]\nname = \"inbox\"\nurl = \"http://127.0.0.1:9/inbox\"\nnotify = [\"team\"]\n",
    );
    let run = env.run(&[
        "add",
        "http://127.0.0.1:9/docs",
        "--watchlist",
        "watchlists/vendor.toml",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    // The name is unique across the folder, not only the file.
    env.file(
        "watchlists/other.toml",
        "[[watch]]\nname = \"billing\"\nurl = \"http://127.0.0.1:9/b\"\n",
    );
    let dup = env.run(&[
        "add",
        "http://127.0.0.1:9/x",
        "--watchlist",
        "watchlists/vendor.toml",
        "--name",
        "billing",
    ]);
    assert_eq!(dup.code, 3, "{dup:?}");
    assert!(
        dup.stderr
            .contains("already exists (watchlists/other.toml:2)"),
        "{}",
        dup.stderr
    );
    // A real problem is printed with its file and line.
    env.file(
        "watchlists/other.toml",
        "[[watch]]\nname = \"billing\"\nurl = \"http://127.0.0.1:9/b\"\nselectt = \"main\"\n",
    );
    let bad = env.run(&[
        "add",
        "http://127.0.0.1:9/y",
        "--watchlist",
        "watchlists/vendor.toml",
    ]);
    assert_eq!(bad.code, 3, "{bad:?}");
    assert!(
        bad.stderr.contains("fix them before adding a watch"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("other.toml:4"), "{}", bad.stderr);
    assert!(bad.stderr.contains("selectt"), "{}", bad.stderr);
    std::fs::remove_file(env.path().join("watchlists/other.toml")).unwrap();
    let list = env.run(&["list"]);
    list.says("127-0-0-1-docs");
}

/// `disable`, `enable` and `remove` edit the file that declares the watch, comments kept; a
/// disabled watch is listed, never fetched, and keeps its name.
#[test]
fn disable_enable_and_remove_edit_the_watchlist() {
    let srv = Server::start();
    srv.set("/a", Page::html("<p>A</p>"));
    srv.set("/b", Page::html("<p>B</p>"));
    let env = TestEnv::new();
    let original = format!(
        "# vendor pages\n\n[[watch]]\nname = \"a\"   # the inbox\nurl = \"{}\"\n\n# billing, flaky on Mondays\n[[watch]]\nname = \"b\"\nurl = \"{}\"\n",
        srv.url("/a"),
        srv.url("/b")
    );
    env.file("watchlists/vendor.toml", &original);
    let off = env.run(&["disable", "b"]);
    assert_eq!(off.code, 0, "{off:?}");
    off.says("disabled watch `b` in watchlists/vendor.toml");
    let text = env.read("watchlists/vendor.toml");
    assert!(
        text.contains("# billing, flaky on Mondays\n[[watch]]\nname = \"b\""),
        "{text}"
    );
    assert!(text.contains("enabled = false"), "{text}");
    assert!(text.contains("name = \"a\"   # the inbox"), "{text}");
    env.run(&["check"]);
    assert!(
        srv.seen("/b").is_empty(),
        "a disabled watch is never fetched"
    );
    assert_eq!(srv.seen("/a").len(), 1);
    env.run(&["list"]).says("disabled (enabled = false)");
    let json = env.run(&["list", "--format", "json"]);
    assert!(
        json.stdout.contains("\"state\":\"disabled\""),
        "{}",
        json.stdout
    );
    let test = env.run(&["test", "b"]);
    assert_eq!(test.code, 3, "{test:?}");
    assert!(
        test.stderr.contains("`forewarn enable b`"),
        "{}",
        test.stderr
    );
    let dup = env.run(&["add", &srv.url("/c"), "--name", "b"]);
    assert_eq!(dup.code, 3, "a disabled watch keeps its name: {dup:?}");
    env.run(&["disable", "b"]).says("already disabled");

    let on = env.run(&["enable", "b"]);
    assert_eq!(on.code, 0, "{on:?}");
    assert_eq!(
        env.read("watchlists/vendor.toml"),
        original,
        "enable undoes disable"
    );
    env.run(&["check"]);
    assert_eq!(srv.seen("/b").len(), 1);

    let gone = env.run(&["remove", "a"]);
    assert_eq!(gone.code, 0, "{gone:?}");
    gone.says("its stored history stays in the database");
    let text = env.read("watchlists/vendor.toml");
    assert!(!text.contains("name = \"a\""), "{text}");
    assert!(text.starts_with("# vendor pages\n"), "{text}");
    assert!(
        text.contains("# billing, flaky on Mondays\n[[watch]]\nname = \"b\""),
        "{text}"
    );
    let typo = env.run(&["remove", "bb"]);
    assert_eq!(typo.code, 3);
    assert!(typo.stderr.contains("did you mean `b`?"), "{}", typo.stderr);
}

/// `add` reaches what a new user asks for first: a schedule, channels, the selectors the
/// integration needs, version watches; it warns when the URL is already watched.
#[test]
fn add_sets_schedule_notify_expectations_and_version_watches() {
    let env = TestEnv::new();
    env.file(
        "forewarn.toml",
        "[channels.team]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n",
    );
    env.file(
        "watchlists/default.toml",
        "[[watch]]\nname = \"inbox\"\nurl = \"http://127.0.0.1:9/inbox\"\n",
    );
    let run = env.run(&[
        "add",
        "http://127.0.0.1:9/compose",
        "--name",
        "compose",
        "--every",
        "15m",
        "--notify",
        "team",
        "--expect-selector",
        "#send",
        "--expect-selector",
        "[data-testid=to]",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let text = env.read("watchlists/default.toml");
    assert!(
        text.ends_with("name = \"compose\"\nurl = \"http://127.0.0.1:9/compose\"\nevery = \"15m\"\nnotify = [\"team\"]\nexpect.selectors = [\"#send\", \"[data-testid=to]\"]\n"),
        "{text}"
    );
    let version = env.run(&["add", "--source", "crates", "--package", "reqwest"]);
    assert_eq!(version.code, 0, "{version:?}");
    let text = env.read("watchlists/default.toml");
    assert!(
        text.ends_with(
            "name = \"reqwest\"\nkind = \"version\"\nsource = \"crates\"\npackage = \"reqwest\"\n"
        ),
        "{text}"
    );
    let list = env.run(&["list"]);
    assert_eq!(list.code, 0, "{list:?}");
    list.says("reqwest");
    // Mistakes are refused with what to do; nothing is written.
    let before = env.read("watchlists/default.toml");
    let typo = env.run(&["add", "http://127.0.0.1:9/x", "--notify", "teem"]);
    assert_eq!(typo.code, 3);
    assert!(
        typo.stderr
            .contains("no channel named `teem`: did you mean `team`?"),
        "{}",
        typo.stderr
    );
    let fast = env.run(&["add", "http://127.0.0.1:9/x", "--every", "1ms"]);
    assert_eq!(fast.code, 3, "{fast:?}");
    let no_url = env.run(&["add", "--name", "x"]);
    assert_eq!(no_url.code, 3);
    assert!(no_url.stderr.contains("needs the URL"), "{}", no_url.stderr);
    assert_eq!(env.read("watchlists/default.toml"), before);
    // The same URL again: added, with a warning naming the watch that has it.
    let again = env.run(&["add", "http://127.0.0.1:9/inbox", "--select", "main"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again
            .stderr
            .contains("warning: `inbox` (watchlists/default.toml:2) already watches"),
        "{}",
        again.stderr
    );
    let help = env.run(&["add", "--help"]);
    help.says("auto, html, text, json, yaml, feed or version");
}
