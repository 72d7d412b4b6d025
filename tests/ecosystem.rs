//! `forewarn init`, `forewarn completions` and `forewarn man`.

use crate::util::TestEnv;

/// `init` writes a starter watchlist that loads as is, every watch disabled (nothing is
/// fetched by accident), and a forewarn.toml with a desktop channel; never over a file.
#[test]
fn init_writes_a_starter_that_loads_and_fetches_nothing() {
    let env = TestEnv::new();
    let dir = env.path().join("project");
    let run = env.run(&["init", dir.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:?}");
    run.says("five example watches, disabled until their URLs are yours");
    let starter = std::fs::read_to_string(dir.join("watchlists/starter.toml")).unwrap();
    assert_eq!(
        starter.matches("PLACEHOLDER").count(),
        5,
        "every URL marked"
    );
    assert_eq!(
        starter
            .lines()
            .filter(|l| l.trim() == "enabled = false")
            .count(),
        5
    );
    for kind in [
        "kind = \"json\"",
        "kind = \"feed\"",
        "kind = \"version\"",
        "browser = true",
        "select =",
    ] {
        assert!(starter.contains(kind), "{kind}");
    }
    let channels = std::fs::read_to_string(dir.join("forewarn.toml")).unwrap();
    assert!(channels.contains("type = \"desktop\""));
    let watchlists = dir.join("watchlists");
    let list = env.run(&["--watchlist", watchlists.to_str().unwrap(), "list"]);
    assert_eq!(list.code, 0, "the starter loads: {list:?}");
    assert_eq!(list.stdout.matches("disabled (enabled = false)").count(), 5);
    let check = env.run(&["--watchlist", watchlists.to_str().unwrap(), "check"]);
    assert_ne!(check.code, 0);
    assert!(
        check.stderr.contains("are all disabled"),
        "{}",
        check.stderr
    );
    let again = env.run(&["init", dir.to_str().unwrap()]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);
}

#[test]
fn completions_for_each_shell_and_a_man_page() {
    let env = TestEnv::new();
    for (shell, needle) in [
        ("bash", "_forewarn()"),
        ("zsh", "#compdef forewarn"),
        ("fish", "complete -c forewarn"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[forewarn]"),
    ] {
        let run = env.run(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {run:?}");
        assert!(run.stdout.contains(needle), "{shell}");
        assert!(
            run.stdout.contains("verify") || run.stdout.contains("check"),
            "{shell}"
        );
    }
    let man = env.run(&["man"]);
    assert_eq!(man.code, 0);
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH forewarn 1"),
        "roff"
    );
    for section in ["FOREWARN CHECK", "FOREWARN ACK", "FOREWARN INIT"] {
        assert!(man.stdout.contains(section), "{section}");
    }
    assert!(
        man.stdout.contains("fail\\-on\\-change"),
        "the options of each command"
    );
}
