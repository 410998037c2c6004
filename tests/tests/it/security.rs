//! Authentication and TLS across real processes: tokens on every RPC, the loopback-only rule,
//! and mutual TLS with certificates generated at test time.

use concur_tests::{
    assert_sums_exact, bin, cli, run_cli, scratch_dir, start_coordinator, start_coordinator_at,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// Runs the worker binary to completion (bounded), for workers expected to give up.
pub(crate) fn worker_exit(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(bin("concur-worker"))
        .args(args)
        .env_remove("CONCUR_COORDINATOR")
        .env_remove("CONCUR_WORKER_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            return (status.code().unwrap_or(-1), stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("worker {args:?} did not give up");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn workers_json(url: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--coordinator", url, "--output", "json"];
    args.extend_from_slice(extra);
    args.push("workers");
    let out = cli(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()
}

#[test]
fn tokens_are_required_on_every_rpc() {
    let dir = scratch_dir("tokens");
    let client_token = write(&dir, "client-token", "client-s3cret\n");
    let worker_token = write(&dir, "worker-token", "worker-s3cret\n");
    let (_coordinator, url) = start_coordinator(&[
        "--token-file",
        &client_token,
        "--worker-token-file",
        &worker_token,
    ]);

    // Clients: none, wrong, right (flag and environment).
    let out = cli(&["--coordinator", &url, "jobs"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("CONCUR_TOKEN"),
        "says what to set: {}",
        out.stderr
    );
    let out = cli(&["--coordinator", &url, "--token", "guess", "jobs"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("invalid client token"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("client-s3cret"),
        "the real token leaked"
    );
    let out = cli(&["--coordinator", &url, "--token", "client-s3cret", "jobs"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut command = Command::new(bin("concur-cli"));
    command
        .args(["--coordinator", &url, "jobs"])
        .env("CONCUR_TOKEN", "client-s3cret");
    assert_eq!(run_cli(command).code, 0, "CONCUR_TOKEN works too");

    // Workers: without or with a wrong token they are refused at once, with the fix named.
    let (code, stderr) = worker_exit(&["--coordinator", &url]);
    assert_ne!(code, 0);
    assert!(stderr.contains("CONCUR_WORKER_TOKEN"), "{stderr}");
    let (code, stderr) = worker_exit(&["--coordinator", &url, "--token", "client-s3cret"]);
    assert_ne!(code, 0, "the client token is not a worker token");
    assert!(stderr.contains("refused this worker"), "{stderr}");

    let mut worker = Command::new(bin("concur-worker"));
    worker
        .args(["--coordinator", &url, "--token-file", &worker_token])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut worker = worker.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while workers_json(&url, &["--token", "client-s3cret"])["workers"]
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "worker with the right token never attached"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = cli(&[
        "--coordinator",
        &url,
        "--token",
        "client-s3cret",
        "--output",
        "json",
        "submit",
        "sum-squares",
        "1000..1010",
        "--wait",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(assert_sums_exact(&out.json()), 10);
    let _ = worker.kill();
    let _ = worker.wait();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn without_tokens_only_loopback_is_served_unless_insecure() {
    let out = Command::new(bin("concur-coordinator"))
        .args(["--listen", "0.0.0.0:0", "--in-memory"])
        .env_remove("CONCUR_TOKEN")
        .env_remove("CONCUR_WORKER_TOKEN")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--insecure") && stderr.contains("refusing"),
        "{stderr}"
    );
    let (mut coordinator, url) = start_coordinator_at("0.0.0.0:0", &["--in-memory", "--insecure"]);
    assert!(url.starts_with("http://0.0.0.0:"), "{url}");
    assert!(
        coordinator
            .wait_timeout(Duration::from_millis(200))
            .is_none(),
        "it serves"
    );
}

/// A CA and certificates signed by it.
pub(crate) struct Pki {
    pub(crate) ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    pub(crate) fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = params.self_signed(&key).unwrap();
        Self {
            ca_pem: ca.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// (certificate PEM, key PEM) for `names`, for a server or a client.
    pub(crate) fn issue(
        &self,
        names: &[&str],
        purpose: ExtendedKeyUsagePurpose,
    ) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

pub(crate) fn pem_files(dir: &Path, name: &str, (cert, key): (String, String)) -> (String, String) {
    (
        write(dir, &format!("{name}.pem"), &cert),
        write(dir, &format!("{name}.key"), &key),
    )
}

#[test]
fn mutual_tls_admits_trusted_workers_only() {
    let dir: PathBuf = scratch_dir("mtls");
    let pki = Pki::new("concur test CA");
    let rogue = Pki::new("rogue CA");
    let ca = write(&dir, "ca.pem", &pki.ca_pem);
    let (server_cert, server_key) = pem_files(
        &dir,
        "server",
        pki.issue(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
    );
    let (worker_cert, worker_key) = pem_files(
        &dir,
        "worker",
        pki.issue(&["worker-1"], ExtendedKeyUsagePurpose::ClientAuth),
    );
    let (rogue_cert, rogue_key) = pem_files(
        &dir,
        "rogue",
        rogue.issue(&["rogue"], ExtendedKeyUsagePurpose::ClientAuth),
    );
    let token = write(&dir, "token", "t0ken");
    let (_coordinator, url) = start_coordinator(&[
        "--tls-cert",
        &server_cert,
        "--tls-key",
        &server_key,
        "--tls-client-ca",
        &ca,
        "--token-file",
        &token,
        "--worker-token-file",
        &token,
    ]);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let client = [
        "--coordinator",
        url.as_str(),
        "--tls-ca",
        ca.as_str(),
        "--token",
        "t0ken",
    ];

    // A worker with a certificate from another CA fails the handshake and never attaches.
    let (code, _) = worker_exit(&[
        "--coordinator",
        &url,
        "--tls-ca",
        &ca,
        "--tls-cert",
        &rogue_cert,
        "--tls-key",
        &rogue_key,
        "--token",
        "t0ken",
        "--max-attach-failures",
        "2",
    ]);
    assert_ne!(code, 0, "an untrusted worker certificate is refused");
    // A worker without any certificate is told one is required.
    let (code, stderr) = worker_exit(&["--coordinator", &url, "--tls-ca", &ca, "--token", "t0ken"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("client certificate"), "{stderr}");
    // A client that does not trust the coordinator's CA cannot talk to it.
    let out = cli(&["--coordinator", &url, "--token", "t0ken", "jobs"]);
    assert_eq!(out.code, 2, "untrusted server certificate: {}", out.stderr);

    let mut trusted = Command::new(bin("concur-worker"))
        .args([
            "--coordinator",
            &url,
            "--tls-ca",
            &ca,
            "--tls-cert",
            &worker_cert,
            "--tls-key",
            &worker_key,
            "--token",
            "t0ken",
            "--host-name",
            "trusted",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let workers = workers_json(&url, &client[2..]);
        let hosts: Vec<&str> = workers["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["host"].as_str().unwrap())
            .collect();
        assert!(!hosts.contains(&"rogue"), "rogue worker attached");
        if hosts == ["trusted"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "trusted worker never attached: {hosts:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut args = client.to_vec();
    args.extend([
        "--output",
        "json",
        "submit",
        "sum-squares",
        "2000..2012",
        "--wait",
    ]);
    let out = cli(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(assert_sums_exact(&out.json()), 12);
    let _ = trusted.kill();
    let _ = trusted.wait();
    let _ = std::fs::remove_dir_all(dir);
}
