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

/// `FOREWARN_BENCH_DIR=DIR cargo bench`: the per-page work of a cold pass (extract, mask, hash,
/// compress the snapshot) over every file under DIR, one stage at a time, single-threaded.
/// Point it at a mirror of the pages you watch to see where the time goes on them.
fn corpus(dir: &std::path::Path) {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir)
            .expect("readable bench dir")
            .flatten()
        {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    let docs: Vec<(Vec<u8>, &'static str)> = files
        .iter()
        .map(|p| {
            let ct = match p.extension().and_then(|e| e.to_str()) {
                Some("json") => "application/json",
                Some("rss" | "atom" | "xml") => "application/xml",
                Some("txt") => "text/plain",
                _ => "text/html; charset=utf-8",
            };
            (std::fs::read(p).expect("readable file"), ct)
        })
        .collect();
    let bytes: usize = docs.iter().map(|d| d.0.len()).sum();
    println!(
        "{} files, {:.1} MB under {}",
        docs.len(),
        bytes as f64 / 1e6,
        dir.display()
    );
    let spec = ExtractSpec::new(Kind::Auto, vec![], vec![], vec![]).unwrap();
    let stage = |name: &str, bytes: usize, f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        let t = start.elapsed();
        println!(
            "{name:<28} {:>9.1?} total  {:>8.1} us/doc  {:>7.1} MB/s",
            t,
            t.as_secs_f64() * 1e6 / docs.len() as f64,
            bytes as f64 / t.as_secs_f64() / 1e6
        );
    };
    let mut texts = Vec::new();
    stage("hash raw body", bytes, &mut || {
        for (b, _) in &docs {
            black_box(compare::hash(b));
        }
    });
    stage("extract", bytes, &mut || {
        texts = docs
            .iter()
            .map(|(b, ct)| {
                extract(&spec, b, Some(ct))
                    .map(|e| e.text)
                    .unwrap_or_default()
            })
            .collect();
    });
    let text_bytes: usize = texts.iter().map(String::len).sum();
    println!("extracted text: {:.1} MB", text_bytes as f64 / 1e6);
    stage("mask", text_bytes, &mut || {
        for t in &texts {
            black_box(spec.masked(t));
        }
    });
    if let Ok(only) = std::env::var("FOREWARN_BENCH_MASKS") {
        let names: Vec<String> = only.split(',').map(str::to_string).collect();
        let set = forewarn::config::masks::MaskSet::from_names(&names).expect("known masks");
        stage(&format!("mask {only}"), text_bytes, &mut || {
            for t in &texts {
                black_box(set.apply(t));
            }
        });
    }
    stage("hash text", text_bytes, &mut || {
        for t in &texts {
            black_box(compare::hash(t.as_bytes()));
        }
    });
    let mut stored = 0;
    stage("compress snapshot", text_bytes, &mut || {
        stored = texts
            .iter()
            .map(|t| forewarn::store::encode_content(t).1.len())
            .sum();
    });
    println!("stored snapshots: {:.1} MB", stored as f64 / 1e6);
}

fn main() {
    if let Some(dir) = std::env::var_os("FOREWARN_BENCH_DIR") {
        corpus(std::path::Path::new(&dir));
        return;
    }
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
        let masks = forewarn::config::masks::MaskSet::all();
        bench(&format!("mask extracted text, {kib} KiB"), ta.len(), || {
            black_box(masks.apply(&ta));
        });
        bench(&format!("diff extracted text, {kib} KiB"), ta.len(), || {
            black_box(compare::diff(&ta, &tb, "a", "b"));
        });
    }
}
