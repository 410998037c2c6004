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
        "concur-cli cluster up",
        "concur-cli cluster down",
        "concur-cli cluster status",
        "docs/cluster.md",
        "ssh-workers.sh",
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

#[test]
fn cluster_doc_covers_every_flag_of_the_cluster_commands() {
    let doc = read(&deploy_dir().join("../docs/cluster.md"));
    for command in ["up", "down", "status"] {
        let help = run({
            let mut c = Command::new(bin("concur-cli"));
            c.args(["cluster", command, "--help"]);
            c
        });
        let flags: BTreeSet<&str> = help
            .stdout
            .split(|c: char| c.is_whitespace() || ",[]()`".contains(c))
            .filter(|w| w.starts_with("--") && w.len() > 2)
            .map(|w| w.split(['=', '<']).next().unwrap())
            .collect();
        for flag in flags {
            if [
                "--help",
                "--output",
                "--token",
                "--tls-ca",
                "--debug",
                "--http-listen",
            ]
            .contains(&flag)
            {
                continue; // global options, documented with the CLI
            }
            assert!(
                doc.contains(flag),
                "docs/cluster.md mentions `cluster {command}` {flag}"
            );
        }
    }
}
