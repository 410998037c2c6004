//! deploy/README.md covers every method and file.

use super::*;

#[test]
fn deploy_readme_documents_every_method_and_file() {
    let readme = read(&deploy_dir().join("README.md"));
    for needle in [
        "systemd/concur-coordinator.service",
        "systemd/concur-worker@.service",
        "systemd-analyze verify",
        "Containerfile",
        "compose.yaml",
        "--scale worker=",
        "k8s/coordinator.yaml",
        "k8s/worker.yaml",
        "k8s/secret.yaml",
        "--replicas=",
        "ssh-workers.sh start",
        "ssh-workers.sh stop",
        "gen-secrets.sh",
        "lab.sh",
        "TLS",
        "not built here",
    ] {
        assert!(
            readme.contains(needle),
            "deploy/README.md mentions {needle:?}"
        );
    }
}
