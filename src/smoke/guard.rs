//! The SSRF guard for URLs that come from outside (deployment statuses):
//! anyone who can create a deployment status could otherwise point shipgate
//! at the internal network. Only allowed hosts are probed, and only when
//! every address they resolve to is public — unless `allow_private`. The
//! checked addresses are pinned for the probe, so a second DNS answer
//! cannot swap in another one.

use std::net::{IpAddr, SocketAddr};

use globset::{Glob, GlobSetBuilder};
use url::Url;

/// Hosts of the common preview providers, probed when `preview.allowed_hosts` is not set.
pub const DEFAULT_ALLOWED_HOSTS: &[&str] = &[
    "*.vercel.app",
    "*.netlify.app",
    "*.onrender.com",
    "*.up.railway.app",
    "*.pages.dev",
    "*.fly.dev",
    "*.herokuapp.com",
];

/// Whether an address is one a probe must not reach by default.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local() // includes 169.254.169.254, the cloud metadata address
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // carrier-grade NAT
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local (fd00:ec2::254 is AWS metadata)
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        }
    }
}

/// Checks `url` against the allowed hosts and resolves it; returns the
/// addresses to pin, or why it must not be probed.
pub async fn check(
    url: &Url,
    allowed_hosts: &[String],
    allow_private: bool,
) -> Result<(String, Vec<SocketAddr>), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme `{}` is not http or https", url.scheme()));
    }
    let host = url
        .host_str()
        .ok_or("the URL has no host")?
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let mut set = GlobSetBuilder::new();
    for pattern in allowed_hosts {
        let glob = Glob::new(&pattern.to_ascii_lowercase())
            .map_err(|e| format!("bad allowed_hosts pattern `{pattern}`: {e}"))?;
        set.add(glob);
    }
    let set = set.build().map_err(|e| e.to_string())?;
    if !set.is_match(&host) {
        return Err(format!("host `{host}` is not in preview.allowed_hosts"));
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(format!("`{host}` resolves to no address"));
    }
    if !allow_private {
        if let Some(bad) = addrs.iter().find(|a| is_internal(a.ip())) {
            return Err(format!(
                "`{host}` resolves to {} (loopback, private, link-local or metadata); set preview.allow_private to probe it",
                bad.ip()
            ));
        }
    }
    Ok((host, addrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "76.76.21.21", "2606:4700::1111"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn hosts_must_be_allowed_and_public() {
        let allowed = vec!["*.vercel.app".to_string(), "127.0.0.1".to_string()];
        let e = check(
            &Url::parse("https://evil.example.com/").unwrap(),
            &allowed,
            false,
        )
        .await
        .unwrap_err();
        assert_eq!(e, "host `evil.example.com` is not in preview.allowed_hosts");
        let e = check(
            &Url::parse("http://127.0.0.1:8080/").unwrap(),
            &allowed,
            false,
        )
        .await
        .unwrap_err();
        assert!(
            e.contains("resolves to 127.0.0.1 (loopback, private"),
            "{e}"
        );
        let (host, addrs) = check(
            &Url::parse("http://127.0.0.1:8080/").unwrap(),
            &allowed,
            true,
        )
        .await
        .unwrap();
        assert_eq!((host.as_str(), addrs[0].port()), ("127.0.0.1", 8080));
        let e = check(&Url::parse("file:///etc/passwd").unwrap(), &allowed, true)
            .await
            .unwrap_err();
        assert!(e.contains("scheme `file`"));
    }
}
