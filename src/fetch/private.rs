//! `deny_private = true`: no request to a private, loopback or link-local address (a cloud's
//! metadata service at 169.254.169.254, the host's own services), whether the URL names it,
//! a host name resolves to it or a redirect points at it.

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Loopback, private (RFC 1918, unique local), link-local, shared (CGNAT), unspecified or
/// broadcast: addresses that reach the machine or its network, not the internet.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// How every refusal starts: [`super::classify`] finds it inside the client's error chain.
pub const REFUSES: &str = "deny_private refuses ";

/// A refusal, in one part of an error chain (no ": " inside).
fn refusal(what: &str, ip: IpAddr) -> String {
    format!(
        "{REFUSES}{what} {ip}, a private, loopback or link-local address; take `deny_private = true` off this watch if the address is meant"
    )
}

/// A URL whose host is such an address, written as one.
pub fn check_url(url: &url::Url) -> Result<(), String> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    if is_private(ip) {
        return Err(refusal("the URL's host", ip));
    }
    Ok(())
}

/// Resolves names to their public addresses only; a name with none is an error.
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| !is_private(a.ip()))
                .collect();
            match (public.is_empty(), all.first()) {
                (true, Some(first)) => {
                    let msg = refusal(
                        &format!("`{host}`, whose addresses are all private, like"),
                        first.ip(),
                    );
                    Err(Box::new(std::io::Error::other(msg))
                        as Box<dyn std::error::Error + Send + Sync>)
                }
                _ => Ok(Box::new(public.into_iter()) as Addrs),
            }
        })
    }
}

/// Follows up to `max` redirects, none to a private address written as one (names go through
/// [`PublicOnly`]).
pub fn redirects(max: usize) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= max {
            return attempt.error("too many redirects");
        }
        match check_url(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(e) => attempt.error(e.replacen("the URL's host", "a redirect to", 1)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_known() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "172.32.0.1",
            "100.128.0.1",
        ] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }
}
