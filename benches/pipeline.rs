//! `cargo bench`: extraction, hashing and diffing of large pages, timed with a plain loop
//! (no benchmark framework to compile). Prints time per iteration and throughput.

use std::hint::black_box;
use std::time::{Duration, Instant};

use forewarn::compare;
use forewarn::config::Kind;
use forewarn::extract::{ExtractSpec, extract};

/// A deterministic documentation-like page of about `kib` KiB.
fn page(kib: usize, variant: usize) -> String {
    let mut s = String::from(
        "<!doctype html><html><head><title>Docs</title><script>var x=1;</script></head><body><nav><ul>",
    );
    for i in 0..60 {
        s.push_str(&format!("<li><a href=\"/docs/{i}\">Section {i}</a></li>"));
    }
    s.push_str("</ul></nav><main id=\"content\">");
    let mut i = 0;
    while s.len() < kib * 1024 {
        s.push_str(&format!(
            "<h2 id=\"s{i}\">Heading {i} — “quoted”</h2><p>Paragraph {i} (© ACME) explains the <code>endpoint_{i}</code> \
             and links to <a href=\"/api/{i}\">the reference</a>. Rate limit {} per minute.</p>\
             <pre>curl https://api.example.com/v1/items/{i}\n  -H 'Accept: application/json'</pre>",
            100 + (i * 7 + variant * (i % 50 == 0) as usize) % 900
        ));
        i += 1;
    }
    s.push_str("</main><footer>Built at 12:00</footer></body></html>");
    s
}

fn bench(name: &str, bytes: usize, mut f: impl FnMut()) {
    // Warm up, then run for about a second.
    f();
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < Duration::from_secs(1) {
        f();
        n += 1;
    }
    let per = start.elapsed() / n;
    let mbps = bytes as f64 / per.as_secs_f64() / 1e6;
    println!("{name:<40} {per:>12.2?}/iter  {mbps:>8.1} MB/s  ({n} iterations)");
}

fn main() {
    let spec = ExtractSpec::new(Kind::Auto, vec![], vec![], vec![]).unwrap();
    let select = ExtractSpec::new(
        Kind::Auto,
        vec!["#content".into()],
        vec!["pre".into()],
        vec![r"Rate limit \d+".into()],
    )
    .unwrap();
    for kib in [50, 1024] {
        let a = page(kib, 0);
        let b = page(kib, 1);
        let ct = Some("text/html; charset=utf-8");
        bench(&format!("extract whole page, {kib} KiB"), a.len(), || {
            black_box(extract(&spec, a.as_bytes(), ct).unwrap());
        });
        bench(
            &format!("extract select+remove+ignore, {kib} KiB"),
            a.len(),
            || {
                black_box(extract(&select, a.as_bytes(), ct).unwrap());
            },
        );
        let ta = extract(&spec, a.as_bytes(), ct).unwrap().text;
        let tb = extract(&spec, b.as_bytes(), ct).unwrap().text;
        bench(&format!("hash raw body, {kib} KiB"), a.len(), || {
            black_box(compare::hash(a.as_bytes()));
        });
        let masks = forewarn::extract::MaskSet::all();
        bench(&format!("mask extracted text, {kib} KiB"), ta.len(), || {
            black_box(masks.apply(&ta));
        });
        bench(&format!("diff extracted text, {kib} KiB"), ta.len(), || {
            black_box(compare::diff(&ta, &tb, "a", "b"));
        });
    }
}
