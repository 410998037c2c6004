//! Failed connections name the problem: a plain client at a TLS coordinator, certificates one
//! side does not trust, nothing listening — each a sentence with the fix, the cause said once.

use crate::security::{Pki, pem_files, worker_exit, write};
use concur_tests::{cli, scratch_dir, start_coordinator};
use rcgen::ExtendedKeyUsagePurpose;
use std::path::Path;

/// A TLS coordinator requiring client certificates from workers; returns it, its https URL,
/// the CA file, and a trusted worker certificate and key.
struct TlsCoordinator {
    _process: concur_tests::Proc,
    url: String,
    ca: String,
    worker_cert: String,
    worker_key: String,
}

fn tls_coordinator(dir: &Path, pki: &Pki) -> TlsCoordinator {
    let ca = write(dir, "ca.pem", &pki.ca_pem);
    let (cert, key) = pem_files(
        dir,
        "server",
        pki.issue(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
    );
    let (worker_cert, worker_key) = pem_files(
        dir,
        "worker",
        pki.issue(&["worker-1"], ExtendedKeyUsagePurpose::ClientAuth),
    );
    let token = write(dir, "token", "t0ken");
    let (process, url) = start_coordinator(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-client-ca",
        &ca,
        "--token-file",
        &token,
        "--worker-token-file",
        &token,
    ]);
    assert!(url.starts_with("https://"), "{url}");
    TlsCoordinator {
        _process: process,
        url,
        ca,
        worker_cert,
        worker_key,
    }
}

#[test]
fn a_plain_client_at_a_tls_coordinator_is_told_to_use_https() {
    let dir = scratch_dir("plain-at-tls");
    let tls = tls_coordinator(&dir, &Pki::new("concur test CA"));
    let plain = tls.url.replace("https://", "http://");
    let out = cli(&["--coordinator", &plain, "--token", "t0ken", "jobs"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("speaks TLS") && out.stderr.contains("use an https:// URL"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("operation was canceled"),
        "{}",
        out.stderr
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn untrusted_certificates_are_named_on_both_sides() {
    let dir = scratch_dir("untrusted");
    let pki = Pki::new("concur test CA");
    let rogue = Pki::new("rogue CA");
    let tls = tls_coordinator(&dir, &pki);

    // A client without the coordinator's CA.
    let out = cli(&["--coordinator", &tls.url, "--token", "t0ken", "jobs"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the coordinator's certificate is not trusted (unknown issuer)")
            && out.stderr.contains("--tls-ca"),
        "{}",
        out.stderr
    );

    // A worker trusting another CA than the coordinator's.
    let rogue_ca = write(&dir, "rogue-ca.pem", &rogue.ca_pem);
    let (code, stderr) = worker_exit(&[
        "--coordinator",
        &tls.url,
        "--tls-ca",
        &rogue_ca,
        "--tls-cert",
        &tls.worker_cert,
        "--tls-key",
        &tls.worker_key,
        "--token",
        "t0ken",
        "--max-attach-failures",
        "1",
    ]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("the coordinator's certificate is not trusted (unknown issuer)"),
        "{stderr}"
    );

    // A worker whose certificate the coordinator does not trust.
    let (rogue_cert, rogue_key) = pem_files(
        &dir,
        "rogue",
        rogue.issue(&["rogue"], ExtendedKeyUsagePurpose::ClientAuth),
    );
    let (code, stderr) = worker_exit(&[
        "--coordinator",
        &tls.url,
        "--tls-ca",
        &tls.ca,
        "--tls-cert",
        &rogue_cert,
        "--tls-key",
        &rogue_key,
        "--token",
        "t0ken",
        "--max-attach-failures",
        "1",
    ]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("the coordinator does not trust this worker's certificate"),
        "{stderr}"
    );
    assert!(!stderr.contains(": transport error\n"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_refused_connection_is_said_once_with_the_address() {
    // Bind and drop a listener: nothing listens on that port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = cli(&["--coordinator", &url, "jobs"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "connection refused at 127.0.0.1:{port}: is the coordinator running"
        )),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("tcp connect error: tcp connect error"),
        "{}",
        out.stderr
    );
    let (code, stderr) = worker_exit(&["--coordinator", &url, "--max-attach-failures", "1"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains(&format!("connection refused at 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("tcp connect error: tcp connect error"),
        "{stderr}"
    );
}

#[test]
fn a_tls_client_at_a_plain_coordinator_is_told_to_use_http() {
    let (_coordinator, url) = start_coordinator(&[]);
    let tls_url = url.replace("http://", "https://");
    let out = cli(&["--coordinator", &tls_url, "jobs"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("does not speak TLS; use an http:// URL"),
        "{}",
        out.stderr
    );
}
