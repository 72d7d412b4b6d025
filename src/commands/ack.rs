//! `forewarn ack ID|WATCH [--note TEXT]` and `forewarn ack --list`: stop an escalation.

use std::path::Path;

use crate::Exit;
use crate::cli::AckArgs;
use crate::report::when;
use crate::store::{AckTarget, Store, lock};

pub fn run(db: &Path, args: AckArgs) -> anyhow::Result<Exit> {
    if args.list {
        return list(db);
    }
    let target = args
        .target
        .as_deref()
        .expect("clap requires it without --list");
    let _lock = lock::acquire(db, "ack", std::time::Duration::from_secs(30))?;
    let mut store = Store::open(db)?;
    let by = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let what = match target.parse::<i64>() {
        Ok(id) => AckTarget::Event(id),
        Err(_) => AckTarget::Watch(target),
    };
    let acked = store.acknowledge(what, &by, args.note.as_deref())?;
    if acked.is_empty() {
        return Err(crate::UsageError(format!(
            "nothing to acknowledge for `{target}`: no open escalation of that event or watch (`forewarn ack --list` shows them)"
        ))
        .into());
    }
    for x in &acked {
        println!(
            "acknowledged event {} ({}: {}) by {by}: escalation `{}` stops",
            x.event_id, x.watch, x.kind, x.name
        );
    }
    Ok(Exit::Ok)
}

fn list(db: &Path) -> anyhow::Result<Exit> {
    let Some(store) = Store::open_read_only(db)? else {
        println!("nothing escalating");
        return Ok(Exit::Ok);
    };
    let open = store.open_escalations()?;
    if open.is_empty() {
        println!("nothing escalating");
        return Ok(Exit::Ok);
    }
    println!(
        "{:<6} {:<20} {:<16} {:<12} {:<6} NEXT STEP",
        "EVENT", "WATCH", "KIND", "ESCALATION", "STEP"
    );
    for x in open {
        let next = x.next_at.map_or("all steps taken".to_string(), when);
        println!(
            "{:<6} {:<20} {:<16} {:<12} {:<6} {next}  {}",
            x.event_id, x.watch, x.kind, x.name, x.step, x.summary
        );
    }
    Ok(Exit::Ok)
}
