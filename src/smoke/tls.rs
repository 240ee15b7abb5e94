//! The `tls` rule: a handshake with the deployed host (through the run's
//! resolver, so the SSRF guard sees the address), the TLS version it
//! negotiates and how long its certificate has left.

use std::sync::Arc;

use url::Url;

use super::config::CheckSpec;
use super::{failed, result, CheckResult, Ctx, Outcome};

pub(crate) async fn tls_check(cx: &Ctx, url: &Url, c: &CheckSpec) -> CheckResult {
    if url.scheme() != "https" {
        return result(
            String::new(),
            Outcome::Skipped,
            "not an HTTPS URL".into(),
            0,
        );
    }
    let Some(host) = url.host_str().map(str::to_string) else {
        return result(String::new(), Outcome::Fail, "URL has no host".into(), 0);
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let timeout = cx.opts.request_timeout;
    if let Err(e) = cx.admit(url, 0) {
        return failed(String::new(), &e, 1);
    }
    let _permit = cx.in_flight.acquire().await.expect("never closed");
    let addrs = match tls_addresses(cx, url, &host, port).await {
        Ok(addrs) => addrs,
        Err(why) => return result(String::new(), Outcome::Fail, why, 1),
    };
    let config = match tls_client_config(cx) {
        Ok(config) => config,
        Err(why) => return result(String::new(), Outcome::Fail, why, 0),
    };
    let Ok(server_name) = rustls::pki_types::ServerName::try_from(host.clone()) else {
        return result(
            String::new(),
            Outcome::Fail,
            format!("{host} is not a valid TLS server name"),
            0,
        );
    };
    let connect = async {
        let tcp = tokio::net::TcpStream::connect(&addrs[..])
            .await
            .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(server_name, tcp)
            .await
            .map_err(|e| format!("certificate not accepted for {host}: {e}"))
    };
    let tls = match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(why)) => return result(String::new(), Outcome::Fail, why, 1),
        Err(_) => {
            return result(
                String::new(),
                Outcome::Fail,
                format!("TLS handshake with {host} timed out"),
                1,
            )
        }
    };
    let (_, conn) = tls.get_ref();
    tls_verdict(conn, &host, c)
}

/// The addresses to connect to: the URL's IP, or the host resolved through
/// the run's resolver (so the SSRF guard sees it); why not, as the
/// check's failure.
async fn tls_addresses(
    cx: &Ctx,
    url: &Url,
    host: &str,
    port: u16,
) -> Result<Vec<std::net::SocketAddr>, String> {
    Ok(match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![std::net::SocketAddr::new(ip.into(), port)],
        Some(url::Host::Ipv6(ip)) => vec![std::net::SocketAddr::new(ip.into(), port)],
        _ => match cx.resolver.lookup(host, port).await {
            Ok(a) => a
                .iter()
                .map(|a| std::net::SocketAddr::new(a.ip(), port))
                .collect(),
            Err(e) => {
                let why = match e.downcast_ref::<super::guard::Refused>() {
                    Some(refused) => format!("refused: {refused}"),
                    None => format!("cannot resolve {host}: {e}"),
                };
                return Err(why);
            }
        },
    })
}

/// A client trusting the web's roots and the run's extra ones.
fn tls_client_config(cx: &Ctx) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for extra in &cx.opts.extra_roots {
        let _ = roots.add(extra.clone());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => Ok(b.with_root_certificates(roots).with_no_client_auth()),
        Err(e) => Err(format!("TLS setup: {e}")),
    }
}

/// The verdict on a finished handshake: the TLS version negotiated and how
/// long the server's certificate has left.
fn tls_verdict(conn: &rustls::ClientConnection, host: &str, c: &CheckSpec) -> CheckResult {
    let warn_days = c.warn_days.unwrap_or(30) as i64;
    let fail_days = c.fail_days.unwrap_or(7) as i64;
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "1.2",
        _ => "older",
    };
    let Some(leaf) = conn.peer_certificates().and_then(|c| c.first()) else {
        return result(
            String::new(),
            Outcome::Fail,
            "no certificate presented".into(),
            1,
        );
    };
    let not_after = match x509_parser::parse_x509_certificate(leaf) {
        Ok((_, cert)) => cert.validity().not_after.timestamp(),
        Err(e) => {
            return result(
                String::new(),
                Outcome::Fail,
                format!("unreadable certificate: {e}"),
                1,
            )
        }
    };
    let days = (not_after - chrono::Utc::now().timestamp()).div_euclid(86_400);
    let expiry = chrono::DateTime::from_timestamp(not_after, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let min = c.min_version.as_deref().unwrap_or("1.2");
    let (o, why) = if version == "older" || (min == "1.3" && version != "1.3") {
        (
            Outcome::Fail,
            format!("negotiated TLS {version}; at least {min} required"),
        )
    } else if days < fail_days {
        (
            Outcome::Fail,
            format!("certificate expires in {days} days ({expiry})"),
        )
    } else if days < warn_days {
        (
            Outcome::Warn,
            format!("certificate expires in {days} days ({expiry})"),
        )
    } else {
        (
            Outcome::Pass,
            format!("valid for {host}, expires in {days} days ({expiry}), TLS {version}"),
        )
    };
    result(String::new(), o, why, 1)
}
