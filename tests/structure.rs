//! The structure view: ids, classes and test ids an integration's code reads are compared
//! beside the text, and reported when they change, while markup churn stays quiet.

use crate::util::{Page, watching};

/// A web app's page: a toolbar with a send button, and a message list.
fn app(button: &str, list: &str) -> String {
    format!(
        "<html><body><div id=\"toolbar\" class=\"bar\">{button}</div>\
         <main>{list}<p>Welcome back</p></main>\
         <footer>Documentation generated on Tue Feb 20 2024</footer></body></html>"
    )
}

const BUTTON: &str = "<button class=\"send-btn\" data-testid=\"send\">Send</button>";
const LIST: &str = "<ul id=\"old-banner\" class=\"messages\"><li>one</li></ul>";

#[test]
fn a_renamed_class_inside_the_selected_part_is_a_change() {
    let (srv, env) = watching(
        "app",
        Page::html(&app(BUTTON, LIST)),
        "select = \"#toolbar\"",
    );
    env.run(&["check"]);
    let renamed = BUTTON.replace("send-btn", "send-button");
    srv.set("/app", Page::html(&app(&renamed, LIST)));
    let run = env.run(&["check", "--format", "json"]);
    let changed = run.events("changed");
    assert_eq!(changed.len(), 1, "{}", run.stdout);
    let s = &changed[0]["structure"];
    assert_eq!(
        s["removed"],
        serde_json::json!(["button.send-btn[data-testid=send]"])
    );
    assert_eq!(
        s["added"],
        serde_json::json!(["button.send-button[data-testid=send]"])
    );
    assert!(
        changed[0]["summary"]
            .as_str()
            .unwrap()
            .contains("structure: removed `button.send-btn[data-testid=send]`"),
        "{}",
        changed[0]
    );
    // The text report says it in its own section.
    let testid = BUTTON.replace("data-testid=\"send\"", "data-testid=\"send-message\"");
    srv.set("/app", Page::html(&app(&testid, LIST)));
    env.run(&["check"])
        .says("structure (ids, classes and test ids code reads):")
        .says("    -button.send-button[data-testid=send]")
        .says("    +button.send-btn[data-testid=send-message]");
}

#[test]
fn structure_only_changes_of_the_whole_page_are_reported() {
    let (srv, env) = watching("app", Page::html(&app(BUTTON, LIST)), "");
    env.run(&["check"]);
    // No text moved: only an element id was renamed.
    let list = LIST.replace("old-banner", "new-banner");
    srv.set("/app", Page::html(&app(BUTTON, &list)));
    let run = env.run(&["check", "--format", "json"]);
    let changed = run.events("changed");
    assert_eq!(changed.len(), 1, "{}", run.stdout);
    assert_eq!(changed[0]["added"], 0, "no text line moved");
    assert_eq!(
        changed[0]["structure"]["added"],
        serde_json::json!(["ul#new-banner.messages"])
    );
    // Localisation ids renamed, and a gallery moved from rel to data-* attributes.
    let l10n = |id: &str| {
        format!(
            "<html><body><span data-l10n-id=\"{id}\">Find</span><a href=\"/p.jpg\" rel=\"lightbox[set]\">photo</a></body></html>"
        )
    };
    srv.set("/app", Page::html(&l10n("viewer-find")));
    env.run(&["check"]);
    let moved = l10n("pdfjs-find").replace("rel=\"lightbox[set]\"", "data-lightbox=\"set\"");
    srv.set("/app", Page::html(&moved));
    let run = env.run(&["check", "--format", "json"]);
    let changed = run.events("changed");
    assert_eq!(changed.len(), 1, "{}", run.stdout);
    assert_eq!(
        changed[0]["structure"]["added"],
        serde_json::json!(["a[data-lightbox=set]", "span[data-l10n-id=pdfjs-find]"])
    );
    assert_eq!(
        changed[0]["structure"]["removed"],
        serde_json::json!(["span[data-l10n-id=viewer-find]"])
    );
}

#[test]
fn markup_churn_stays_quiet_in_the_structure_view() {
    let page = |code: &str, button: &str| {
        format!(
            "<html><body><div id=\"app\">{button}<pre><code>{code}</code></pre>\
             <div id=\"ember{n}\" class=\"css-{n}x7 card\">card</div></div></body></html>",
            n = code.len()
        )
    };
    let (srv, env) = watching(
        "app",
        Page::html(&page(
            "let x = 1;",
            "<button class=\"b a\" type=\"submit\" data-testid=\"go\">Go</button>",
        )),
        "",
    );
    env.run(&["check"]);
    // Re-highlighted code, re-ordered attributes and classes, an inline style, a generated
    // id and class: nothing an integration reads.
    let churned = page(
        "<span class=\"kw\">let</span> <span class=\"id\">x</span> = <span class=\"num\">1</span>;",
        "<button data-testid=\"go\" style=\"color: red\" type=\"submit\" class=\"a b\">Go</button>",
    );
    srv.set("/app", Page::html(&churned));
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("changed").len(), 0, "{}", run.stdout);
    // `test` lists what is compared.
    env.run(&["test", "app"])
        .says("and its structure: 3 elements")
        .says("  button.a.b[data-testid=go][type=submit]")
        .says("  div#app")
        .says("  div.card");
}

#[test]
fn structure_false_compares_the_text_only() {
    let (srv, env) = watching("app", Page::html(&app(BUTTON, LIST)), "structure = false");
    env.run(&["check"]);
    srv.set(
        "/app",
        Page::html(&app(&BUTTON.replace("send-btn", "x-btn"), LIST)),
    );
    let run = env.run(&["check", "--format", "json"]);
    assert_eq!(run.events("changed").len(), 0, "{}", run.stdout);
}
