//! The SSRF guard for server-side probes. Anyone who can create a deployment
//! status chooses the URL, a repository's file chooses every check's `url:`
//! and `path:`, and a preview (often built from a pull request) chooses
//! where it redirects — any of them could otherwise point shipgate at the
//! operator's network. Every hop of every server-side probe is admitted
//! here: its host must match the allowed hosts, and every address it
//! resolves to must be public unless private probes are allowed. Names are
//! checked by [`Resolver`] when the connection is made, so the addresses
//! checked are the addresses connected to (a second DNS answer cannot swap
//! in another one).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};
use url::{Host, Url};

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

const PRIVATE: &str = "(loopback, private, link-local or metadata)";

/// Whether an address is one a probe must not reach by default: anything
/// but public unicast, including IPv6 forms that carry an internal IPv4
/// address (mapped, translated, NAT64, 6to4).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(v4: Ipv4Addr) -> bool {
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
        || (o[0] == 192 && o[1] == 88 && o[2] == 99) // 6to4 relay anycast
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking, 198.18.0.0/15
        || o[0] >= 240 // reserved
}

/// The IPv4 address an IPv6 address stands for, where it embeds one.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    match s {
        // ::ffff:a.b.c.d (mapped)
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(low(hi, lo)),
        // ::ffff:0:a.b.c.d (translated, RFC 2765)
        [0, 0, 0, 0, 0xffff, 0, hi, lo] => Some(low(hi, lo)),
        // 64:ff9b::a.b.c.d (NAT64 well-known prefix, RFC 6052)
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        // 2002:AABB:CCDD::/48 (6to4, RFC 3056)
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        _ => None,
    }
}

fn is_internal_v6(v6: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(v6) {
        return is_internal_v4(v4);
    }
    let s = v6.segments();
    // Only global unicast (2000::/3) is public. Outside it: unspecified,
    // loopback, IPv4-compatible (::/96), local NAT64 (64:ff9b:1::/48),
    // discard (100::/64), unique local (fc00::/7; fd00:ec2::254 is AWS
    // metadata), link-local, site-local, multicast, SRv6 SIDs.
    if (s[0] & 0xe000) != 0x2000 {
        return true;
    }
    // 2001::/23: IETF protocol assignments (Teredo 2001::/32 among them);
    // 2001:db8::/32 and 3fff::/20: documentation.
    (s[0] == 0x2001 && (s[1] < 0x0200 || s[1] == 0x0db8)) || (s[0] == 0x3fff && s[1] < 0x1000)
}

/// Which URLs a server-side probe may reach.
#[derive(Clone, Debug)]
pub struct Guard {
    allowed: GlobSet,
    allow_private: bool,
    /// Said after a refused private address: how it could be allowed.
    private_hint: String,
}

impl Guard {
    /// `allowed_hosts`: globs such as `*.vercel.app`; `allow_private`: whether
    /// loopback, private and link-local addresses may be probed.
    pub fn new(allowed_hosts: &[String], allow_private: bool) -> Result<Guard, String> {
        let mut set = GlobSetBuilder::new();
        for pattern in allowed_hosts {
            let glob = Glob::new(&pattern.to_ascii_lowercase())
                .map_err(|e| format!("bad allowed_hosts pattern `{pattern}`: {e}"))?;
            set.add(glob);
        }
        Ok(Guard {
            allowed: set.build().map_err(|e| e.to_string())?,
            allow_private,
            private_hint: "set preview.allow_private to probe it".into(),
        })
    }

    /// Replaces the advice given when a private address is refused.
    pub fn with_private_hint(mut self, hint: impl Into<String>) -> Guard {
        self.private_hint = hint.into();
        self
    }

    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Whether `url` may be requested: http(s), an allowed host, and, for an
    /// address written in the URL, a public one. Host names are checked when
    /// they are resolved ([`Resolver`]).
    pub fn admit(&self, url: &Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("scheme `{}` is not http or https", url.scheme()));
        }
        let (host, ip) = host_of(url)?;
        if !self.allowed.is_match(&host) {
            return Err(format!("host `{host}` is not in preview.allowed_hosts"));
        }
        if let Some(ip) = ip {
            self.check_addrs(&host, &[SocketAddr::new(ip, 0)])?;
        }
        Ok(())
    }

    /// Refuses internal addresses unless private probes are allowed.
    pub fn check_addrs(&self, host: &str, addrs: &[SocketAddr]) -> Result<(), String> {
        if self.allow_private {
            return Ok(());
        }
        match addrs.iter().find(|a| is_internal(a.ip())) {
            Some(bad) => Err(format!(
                "`{host}` resolves to {} {PRIVATE}; {}",
                bad.ip(),
                self.private_hint
            )),
            None => Ok(()),
        }
    }
}

/// A URL's host as the allowed hosts are matched against it: lower case,
/// without a trailing dot or IPv6 brackets; and its address when it is one.
pub fn host_of(url: &Url) -> Result<(String, Option<IpAddr>), String> {
    match url.host() {
        None => Err("the URL has no host".into()),
        Some(Host::Ipv4(ip)) => Ok((ip.to_string(), Some(ip.into()))),
        Some(Host::Ipv6(ip)) => Ok((ip.to_string(), Some(ip.into()))),
        Some(Host::Domain(d)) => {
            let host = normalize(d);
            if host.is_empty() {
                return Err("the URL has no host".into());
            }
            let ip = host.parse().ok();
            Ok((host, ip))
        }
    }
}

/// `Host.` and `host` are the same name.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Admits `url` and resolves its host; returns the addresses (all checked),
/// or why it must not be probed.
pub async fn check(url: &Url, guard: &Guard) -> Result<(String, Vec<SocketAddr>), String> {
    guard.admit(url)?;
    let (host, ip) = host_of(url)?;
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match ip {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        // Looked up unchecked, to say which address is refused below.
        None => Resolver::new(&[], None)
            .lookup(&host, port)
            .await
            .map_err(|e| format!("cannot resolve `{host}`: {e}"))?,
    };
    if addrs.is_empty() {
        return Err(format!("`{host}` resolves to no address"));
    }
    guard.check_addrs(&host, &addrs)?;
    Ok((host, addrs))
}

/// A connection the guard refused (in the error chain of a failed request).
#[derive(Debug)]
pub(crate) struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The one way the engine turns a host name into addresses: pinned names
/// first (trailing dot and case do not matter), then DNS; with a guard that
/// refuses private addresses, every answer is checked before it is used.
#[derive(Clone)]
pub(crate) struct Resolver(Arc<ResolverInner>);

struct ResolverInner {
    /// Addresses already checked (the deployment host) or given by a test.
    pins: Vec<(String, Vec<SocketAddr>)>,
    guard: Option<Guard>,
}

impl Resolver {
    pub fn new(pins: &[(String, Vec<SocketAddr>)], guard: Option<Guard>) -> Resolver {
        Resolver(Arc::new(ResolverInner {
            pins: pins
                .iter()
                .map(|(h, a)| (normalize(h), a.clone()))
                .collect(),
            guard,
        }))
    }

    /// The addresses of `name` (port 0 unless pinned with one).
    pub async fn lookup(
        &self,
        name: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let host = normalize(name);
        if let Some((_, addrs)) = self.0.pins.iter().find(|(h, _)| *h == host) {
            return Ok(addrs.clone());
        }
        // The name as given: an absolute name (trailing dot) is not expanded
        // by search domains, and the answer is checked whatever it is.
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, port)).await?.collect();
        if let Some(guard) = &self.0.guard {
            guard.check_addrs(&host, &addrs).map_err(Refused)?;
        }
        Ok(addrs)
    }
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addrs = this.lookup(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "198.18.0.1",
            "192.88.99.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
            "2001:db8::1",
            "3fff::1",
        ] {
            assert!(is_internal(ip(a)), "{a}");
        }
        for a in [
            "8.8.8.8",
            "76.76.21.21",
            "2606:4700::1111",
            "2a00:1450::1",
            "3ffe:1000::1",
        ] {
            assert!(!is_internal(ip(a)), "{a}");
        }
    }

    #[test]
    fn ipv6_forms_of_internal_ipv4_addresses_are_internal() {
        for a in [
            "::ffff:127.0.0.1",                     // mapped
            "::ffff:169.254.169.254",               // mapped metadata
            "::ffff:0:10.0.0.1",                    // translated
            "::127.0.0.1",                          // IPv4-compatible
            "::8.8.8.8",                            // IPv4-compatible: deprecated, never probed
            "64:ff9b::a9fe:a9fe",                   // NAT64 of 169.254.169.254
            "64:ff9b::10.0.0.1",                    // NAT64 of 10.0.0.1
            "64:ff9b:1::8.8.8.8",                   // local-use NAT64
            "2002:0a00:0001::1",                    // 6to4 of 10.0.0.1
            "2002:7f00:0001::",                     // 6to4 of 127.0.0.1
            "2001:0:4136:e378:8000:63bf:3fff:fdd2", // Teredo
            "2001:2::1",                            // benchmarking
        ] {
            assert!(is_internal(ip(a)), "{a}");
        }
        for a in ["::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:0808:0808::1"] {
            assert!(!is_internal(ip(a)), "{a}");
        }
    }

    #[test]
    fn every_url_form_of_an_internal_address_is_refused() {
        let guard = Guard::new(&["*".to_string()], false).unwrap();
        for u in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:a9fe:a9fe::]/",
            "http://169.254.169.254./",
        ] {
            let e = guard.admit(&Url::parse(u).unwrap()).unwrap_err();
            assert!(e.contains(PRIVATE), "{u}: {e}");
        }
        assert!(guard.admit(&Url::parse("http://8.8.8.8/").unwrap()).is_ok());
        let open = Guard::new(&["*".to_string()], true).unwrap();
        assert!(open
            .admit(&Url::parse("http://127.0.0.1/").unwrap())
            .is_ok());
    }

    #[test]
    fn hosts_are_matched_without_case_or_trailing_dot() {
        let guard = Guard::new(&["*.vercel.app".to_string()], false).unwrap();
        assert!(guard
            .admit(&Url::parse("https://App.Vercel.App./").unwrap())
            .is_ok());
        assert_eq!(
            guard
                .admit(&Url::parse("https://vercel.app.evil.com/").unwrap())
                .unwrap_err(),
            "host `vercel.app.evil.com` is not in preview.allowed_hosts"
        );
        assert_eq!(
            guard
                .admit(&Url::parse("file:///etc/passwd").unwrap())
                .unwrap_err(),
            "scheme `file` is not http or https"
        );
    }

    #[tokio::test]
    async fn hosts_must_be_allowed_and_public() {
        let allowed = vec!["*.vercel.app".to_string(), "127.0.0.1".to_string()];
        let guard = Guard::new(&allowed, false).unwrap();
        let e = check(&Url::parse("https://evil.example.com/").unwrap(), &guard)
            .await
            .unwrap_err();
        assert_eq!(e, "host `evil.example.com` is not in preview.allowed_hosts");
        let e = check(&Url::parse("http://127.0.0.1:8080/").unwrap(), &guard)
            .await
            .unwrap_err();
        assert_eq!(
            e,
            "`127.0.0.1` resolves to 127.0.0.1 (loopback, private, link-local or metadata); set preview.allow_private to probe it"
        );
        let open = Guard::new(&allowed, true).unwrap();
        let (host, addrs) = check(&Url::parse("http://127.0.0.1:8080/").unwrap(), &open)
            .await
            .unwrap();
        assert_eq!((host.as_str(), addrs[0].port()), ("127.0.0.1", 8080));
    }

    #[tokio::test]
    async fn the_resolver_checks_every_answer_and_pins_ignore_the_trailing_dot() {
        let guard = Guard::new(&["*".to_string()], false).unwrap();
        let pinned: SocketAddr = "127.0.0.2:8080".parse().unwrap();
        let r = Resolver::new(&[("Pinned.Test".into(), vec![pinned])], Some(guard.clone()));
        assert_eq!(r.lookup("pinned.test.", 0).await.unwrap(), vec![pinned]);
        // `localhost` is answered from the hosts file: loopback, refused.
        let e = r.lookup("localhost", 0).await.unwrap_err();
        assert!(e.downcast_ref::<Refused>().is_some(), "{e}");
        assert!(
            e.to_string()
                .starts_with("`localhost` resolves to 127.0.0.1"),
            "{e}"
        );
        let open = Resolver::new(&[], None);
        assert!(open.lookup("localhost", 0).await.is_ok());
    }
}
