//! Failed connections to the coordinator told in a sentence that names the problem and the
//! fix: the cause chain walked to its root and said once, known causes (refused, untrusted
//! certificates, TLS against plain gRPC) mapped to plain words, and probes for the cases the
//! transport hides (a TLS alert lost inside HTTP/2, a TLS server hanging up on plain gRPC).

use crate::settings::{ClientTls, WorkerSettings};
use std::time::Duration;

/// Who is connecting: the fix a message names depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// `concur-cli` (flag `--tls-ca`).
    Client,
    /// A worker (flags `--tls-ca`, `--tls-cert`, `--tls-key`).
    Worker,
}

/// `error` and its causes, outermost first. `std::io::Error::source` skips the error it wraps
/// (it returns the wrapped error's own source), so step into it with `get_ref` instead: that
/// is where rustls' and hyper's errors sit.
fn chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        out.push(cause);
        let wrapped = cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        next = wrapped.or_else(|| cause.source());
        if out.len() > 32 {
            break;
        }
    }
    out
}

/// The causes' texts joined by `: `, each said once: transport errors often repeat their
/// cause's text (`tcp connect error: tcp connect error`).
pub fn render_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    for cause in chain(error) {
        let cause_text = cause.to_string();
        if cause_text.is_empty() || text.contains(&cause_text) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause_text);
    }
    text
}

/// `host:port` of a coordinator URL, for messages.
pub fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// A plain sentence for a known cause of a failed connection to the coordinator at `url`
/// (refused, untrusted certificate, TLS against plain gRPC, unknown host, time-out); `None`
/// when the cause is none of these.
pub fn explain(error: &(dyn std::error::Error + 'static), url: &str, peer: Peer) -> Option<String> {
    let at = authority(url);
    let causes = chain(error);
    for cause in &causes {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(explain_tls(tls, url, peer));
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return Some(format!(
                        "connection refused at {at}: is the coordinator running, and listening on that port?"
                    ));
                }
                std::io::ErrorKind::TimedOut => {
                    return Some(format!(
                        "no answer from {at} in time: is the address right and the port open (firewall)?"
                    ));
                }
                _ => {}
            }
        }
    }
    let all = render_causes(error);
    if all.contains("dns error") || all.contains("failed to lookup address") {
        return Some(format!("cannot resolve the host of {url}: check the name"));
    }
    if all.contains("timed out") {
        return Some(format!(
            "no answer from {at} in time: is the address right and the port open (firewall)?"
        ));
    }
    None
}

fn explain_tls(error: &rustls::Error, url: &str, peer: Peer) -> String {
    use rustls::{AlertDescription, CertificateError};
    let ca_flag = "--tls-ca with the CA that signed it";
    match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "TLS handshake failed: the coordinator's certificate is not trusted (unknown issuer); pass {ca_flag}"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "TLS handshake failed: the coordinator's certificate is not valid for the host in {url}; use a host name the certificate names"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "TLS handshake failed: the coordinator's certificate has expired".into(),
        rustls::Error::InvalidCertificate(other) => {
            format!("TLS handshake failed: the coordinator's certificate is not accepted ({other:?})")
        }
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
            "TLS handshake failed: the coordinator requires a client certificate; pass --tls-cert and --tls-key".into()
        }
        rustls::Error::AlertReceived(
            alert @ (AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::AccessDenied),
        ) if peer == Peer::Worker => format!(
            "TLS handshake failed: the coordinator does not trust this worker's certificate (alert {alert:?}); use a --tls-cert signed by the CA the coordinator trusts (its --tls-client-ca)"
        ),
        rustls::Error::InvalidMessage(_) => format!(
            "TLS handshake failed: the server at {} does not speak TLS; use an http:// URL",
            authority(url)
        ),
        other => format!("TLS handshake failed: {other}"),
    }
}

/// Whether the server at `host:port` speaks TLS: the HTTP/2 preface is written and the first
/// bytes of the answer read. A plain gRPC server answers with an HTTP/2 SETTINGS frame; a TLS
/// server answers with an alert record (0x15) or hangs up. Used after a plain `http://`
/// connection failed in a way that does not say why (the server just closes it).
pub async fn speaks_tls(address: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .ok()?;
        let mut head = [0u8; 9];
        let mut read = 0;
        while read < head.len() {
            match stream.read(&mut head[read..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
        Some((head, read))
    };
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        // An HTTP/2 frame header: 3 bytes of length, then the type (4 = SETTINGS).
        Ok(Some((head, read))) if read == 9 && head[3] == 4 => false,
        Ok(Some((head, read))) => read == 0 || head[0] == 0x15,
        _ => false,
    }
}

/// `error` replaced by a plain sentence when an attach failed after the connection was made
/// and the transport does not say why (the coordinator hung up: "transport error", "broken
/// pipe"). The coordinator's TLS alert, such as "unknown CA" for this worker's certificate,
/// is lost inside the HTTP/2 connection, so a separate handshake asks for it; a plain
/// `http://` worker at a TLS coordinator is found by [`speaks_tls`]. Errors already explained,
/// or that are the coordinator's own answers, are returned as they are.
pub async fn explain_attach_failure(
    error: anyhow::Error,
    settings: &WorkerSettings,
) -> anyhow::Error {
    let hung_up = error.chain().any(|cause| {
        cause.downcast_ref::<tonic::Status>().is_some_and(|status| {
            matches!(
                status.code(),
                tonic::Code::Unknown | tonic::Code::Cancelled | tonic::Code::Unavailable
            ) && !status.message().starts_with("the coordinator")
        })
    });
    if !hung_up {
        return error;
    }
    let url = settings.coordinator.trim_end_matches('/').to_string();
    let sentence = match &settings.tls {
        Some(tls) => {
            let (url, tls) = (url.clone(), tls.clone());
            tokio::task::spawn_blocking(move || tls_verdict(&url, &tls))
                .await
                .ok()
                .flatten()
        }
        None if url.starts_with("http://") && speaks_tls(authority(&url)).await => Some(format!(
            "the coordinator at {url} speaks TLS; use an https:// URL (and --tls-ca for its CA)"
        )),
        None => None,
    };
    match sentence {
        Some(sentence) => anyhow::anyhow!("{sentence}"),
        None => error,
    }
}

/// A TLS handshake with the worker's own TLS settings, then one read: the server's first
/// bytes mean it accepted this worker; an alert names why it did not. `None` when the
/// handshake and read went through, or the probe itself could not run.
fn tls_verdict(url: &str, tls: &ClientTls) -> Option<String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use std::io::Read;
    use std::net::ToSocketAddrs;
    let at = authority(url);
    let host = at.rsplit_once(':').map_or(at, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut roots = rustls::RootCertStore::empty();
    for cert in tls
        .ca
        .as_deref()
        .map(CertificateDer::pem_slice_iter)
        .into_iter()
        .flatten()
    {
        roots.add(cert.ok()?).ok()?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ok()?
    .with_root_certificates(roots);
    let mut config = match &tls.identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .ok()?,
                PrivateKeyDer::from_pem_slice(key).ok()?,
            )
            .ok()?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = ServerName::try_from(host.to_string()).ok()?;
    let mut connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name).ok()?;
    let address = at.to_socket_addrs().ok()?.next()?;
    let mut socket = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    socket
        .set_write_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    let mut first = [0u8; 1];
    match rustls::Stream::new(&mut connection, &mut socket).read_exact(&mut first) {
        Ok(()) => None,
        Err(e) => e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .map(|tls| explain_tls(tls, url, Peer::Worker)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::transport::Endpoint;

    #[tokio::test]
    async fn a_refused_connection_is_one_sentence_with_the_address() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let error = Endpoint::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap_err();
        // tonic and hyper-util both say "tcp connect error": once is enough.
        let causes = render_causes(&error);
        assert_eq!(causes.matches("tcp connect error").count(), 1, "{causes}");
        assert!(
            causes.ends_with("Connection refused (os error 111)"),
            "{causes}"
        );
        assert_eq!(
            explain(&error, &url, Peer::Client).as_deref(),
            Some(
                format!("connection refused at 127.0.0.1:{port}: is the coordinator running, and listening on that port?")
                    .as_str()
            )
        );
    }

    #[test]
    fn tls_errors_name_the_fix() {
        let url = "https://10.0.0.1:7070/";
        assert_eq!(authority(url), "10.0.0.1:7070");
        let unknown = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let text = explain(&unknown, url, Peer::Client).unwrap();
        assert!(
            text.contains("not trusted (unknown issuer)") && text.contains("--tls-ca"),
            "{text}"
        );
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA);
        let text = explain(&alert, url, Peer::Worker).unwrap();
        assert!(
            text.contains("does not trust this worker's certificate"),
            "{text}"
        );
        let plain = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        let text = explain(&plain, url, Peer::Client).unwrap();
        assert!(text.contains("does not speak TLS"), "{text}");
    }
}
