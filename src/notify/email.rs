//! `email`: SMTP with STARTTLS, implicit TLS or plain (a relay on localhost); a text body
//! with the diff.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::{ContentType, MIME_VERSION_1_0};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls as SmtpTls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::Message;
use super::render;
use crate::config::alert::{EmailTarget, Tls};
use crate::config::types::expand_env;

/// Email carries the whole diff, up to this many lines per event.
const EMAIL_DIFF_LINES: usize = 400;

pub async fn send(t: &EmailTarget, msg: &Message, timeout: Duration) -> Result<(), String> {
    let host = expand_env(&t.host).map_err(|e| format!("`host`: {e}"))?;
    let from: Mailbox = expand_env(&t.from)
        .map_err(|e| format!("`from`: {e}"))?
        .parse()
        .map_err(|e| format!("`from` is not an email address: {e}"))?;
    // The delivery id is stable across retries: a receiver that got the mail once can drop the
    // retry by its Message-ID. lettre adds `Date`.
    let domain = from.email.domain().to_string();
    let mut builder = lettre::Message::builder()
        .message_id(Some(format!(
            "<forewarn.{}@{domain}>",
            message_id_part(&msg.id)
        )))
        .from(from)
        .subject(format!("[forewarn] {}", render::title(msg)))
        .header(MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN);
    for to in &t.to {
        let addr: Mailbox = expand_env(to)
            .map_err(|e| format!("`to`: {e}"))?
            .parse()
            .map_err(|e| format!("`to` address `{to}` is invalid: {e}"))?;
        builder = builder.to(addr);
    }
    let mut body = render::text(msg, EMAIL_DIFF_LINES);
    body.push_str("\n-- \nSent by forewarn. `forewarn report` shows the full history.\n");
    let mail = builder
        .body(body)
        .map_err(|e| format!("cannot build the email: {e}"))?;

    let tls_params = || -> Result<TlsParameters, String> {
        let mut b = TlsParameters::builder(host.clone());
        if let Some(ca) = &t.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| format!("cannot read `ca_file` {}: {e}", ca.display()))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| format!("`ca_file` {} is not a PEM certificate: {e}", ca.display()))?;
            b = b.add_root_certificate(cert);
        }
        b.build_rustls()
            .map_err(|e| format!("cannot set up TLS for {host}: {e}"))
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
        .port(t.port)
        .timeout(Some(timeout));
    transport = match t.tls {
        Tls::None => transport.tls(SmtpTls::None),
        Tls::Starttls => transport.tls(SmtpTls::Required(tls_params()?)),
        Tls::Wrapper => transport.tls(SmtpTls::Wrapper(tls_params()?)),
    };
    if let (Some(u), Some(p)) = (&t.username, &t.password) {
        let u = expand_env(u).map_err(|e| format!("`username`: {e}"))?;
        let p = expand_env(p).map_err(|e| format!("`password`: {e}"))?;
        transport = transport.credentials(Credentials::new(u, p));
    }
    let transport = transport.build();
    transport.send(mail).await.map(|_| ()).map_err(|e| {
        let mut m = format!("SMTP {host}:{}: {e}", t.port);
        let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(c) = cause {
            let s = c.to_string();
            if !m.contains(&s) {
                m.push_str(&format!(": {s}"));
            }
            cause = c.source();
        }
        if m.contains("certificate") {
            m.push_str(" (the server's certificate is not trusted for this host name: for a relay with an internal CA, set `ca_file` to its PEM file)");
        } else if t.tls == Tls::Starttls && m.to_ascii_lowercase().contains("starttls") {
            m.push_str(" (the server may not offer STARTTLS: set tls = \"tls\" for port 465, or tls = \"none\" for a local relay)");
        }
        m
    })
}

/// The delivery id as a Message-ID's left part: only the characters it may hold.
fn message_id_part(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}
