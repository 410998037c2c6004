//! The active/standby examples (`deploy/compose-ha.yaml`, `deploy/k8s-ha/`), parsed and
//! cross-checked: two coordinators on one state URL with their own advertised URLs, workers
//! listing both, PostgreSQL with its password from a secret.

use super::*;

fn docs(path: &Path) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// The `--name=VALUE` values in `text` (a command line or an argument list).
fn values<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.split_whitespace()
        .filter_map(|word| word.strip_prefix(&format!("{name}=")))
        .collect()
}

fn flat(y: &Yaml) -> String {
    match y {
        Yaml::Array(items) => items.iter().map(flat).collect::<Vec<_>>().join(" "),
        Yaml::String(s) => s.clone(),
        _ => String::new(),
    }
}

#[test]
fn the_compose_example_runs_two_coordinators_on_one_database_and_workers_follow_both() {
    let compose = &docs(&deploy_dir().join("compose-ha.yaml"))[0];
    let services = &compose["services"];
    assert!(!services["postgres"].is_badvalue(), "a postgres service");
    let mut advertised = Vec::new();
    for name in ["coordinator-a", "coordinator-b"] {
        let line = flat(&services[name]["entrypoint"]);
        assert!(
            line.contains("CONCUR_STATE_URL=\"postgres://concur:"),
            "{line}"
        );
        assert!(line.contains("/run/secrets/pg_password"), "{line}");
        let url = values(&line, "--advertise-url");
        assert_eq!(url.len(), 1, "{line}");
        assert_eq!(url[0], format!("http://{name}:7070"));
        advertised.push(url[0].to_string());
    }
    let worker = flat(&services["worker"]["command"]);
    assert_eq!(values(&worker, "--coordinator"), [advertised.join(",")]);
    let secret = &compose["secrets"]["pg_password"]["file"];
    assert_eq!(secret.as_str(), Some("./secrets/pg-password"));
}

#[test]
fn the_kubernetes_example_runs_two_advertised_coordinators_and_workers_list_both() {
    let dir = deploy_dir().join("k8s-ha");
    let coordinator = docs(&dir.join("coordinator.yaml"));
    let set = coordinator
        .iter()
        .find(|d| d["kind"].as_str() == Some("StatefulSet"))
        .expect("a StatefulSet");
    assert_eq!(set["spec"]["replicas"].as_i64(), Some(2));
    let pod = &set["spec"]["template"]["spec"]["containers"][0];
    let args = flat(&pod["args"]);
    assert_eq!(
        values(&args, "--advertise-url"),
        ["http://$(POD_NAME).coordinator.concur.svc:7070"]
    );
    let state = pod["env"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some("CONCUR_STATE_URL"))
        .expect("the state URL from a secret");
    assert_eq!(
        state["valueFrom"]["secretKeyRef"]["name"].as_str(),
        Some("concur-state")
    );
    assert_eq!(
        pod["readinessProbe"]["grpc"]["service"].as_str(),
        Some("concur.v1.JobService")
    );
    let worker = &docs(&dir.join("worker.yaml"))[0];
    let worker_args = flat(&worker["spec"]["template"]["spec"]["containers"][0]["args"]);
    let listed = values(&worker_args, "--coordinator");
    assert_eq!(
        listed,
        [
            "http://coordinator-0.coordinator.concur.svc:7070,http://coordinator-1.coordinator.concur.svc:7070"
        ]
    );
    let secret = &docs(&dir.join("secret.yaml"))[0];
    assert_eq!(secret["metadata"]["name"].as_str(), Some("concur-state"));
    assert_eq!(
        secret["stringData"]["url"].as_str(),
        Some(""),
        "no secret in git"
    );
    for file in [
        "postgres.yaml",
        "coordinator.yaml",
        "worker.yaml",
        "secret.yaml",
    ] {
        for doc in docs(&dir.join(file)) {
            assert_eq!(
                doc["metadata"]["namespace"].as_str(),
                Some("concur"),
                "{file}"
            );
        }
    }
}
