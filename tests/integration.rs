//! The integration tests: the real binary against real local servers and a real SQLite file
//! (with `FOREWARN_TEST_ENGINE=postgres`, a database on a private PostgreSQL cluster instead;
//! `scaling` always runs on PostgreSQL clusters of its own).

mod util;

mod browser;
mod contracts;
mod core_pipeline;
mod crash;
mod ecosystem;
mod escalation;
mod feeds;
mod fuzz;
mod history;
mod hostile;
mod html_report;
mod import;
mod noise;
mod notify;
mod readme;
mod response_times;
mod scaling;
mod scheduler;
mod services;
mod structure;
mod verify;
mod versions;
mod watchlists;
