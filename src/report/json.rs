//! JSON Lines: one object per event; scripts and the benchmark harness read it.

use super::Format;
use crate::event::Event;

pub struct Json;

impl Format for Json {
    fn event(&self, e: &Event, out: &mut String) {
        out.push_str(&e.to_json().to_string());
        out.push('\n');
    }
}
