//! YAML: the compose file and the Kubernetes manifests, parsed and cross-checked.

use super::*;

fn yaml_docs(path: &Path) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn s(y: &Yaml) -> &str {
    y.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {y:?}"))
}

/// The value of `--name=VALUE` among `args`.
fn flag<'a>(args: &'a [Yaml], name: &str) -> Option<&'a str> {
    args.iter()
        .filter_map(Yaml::as_str)
        .find_map(|a| a.strip_prefix(&format!("{name}=")))
}

#[test]
fn compose_file_has_a_coordinator_and_a_scalable_worker() {
    let docs = yaml_docs(&deploy_dir().join("compose.yaml"));
    assert_eq!(docs.len(), 1);
    let compose = &docs[0];
    let services = &compose["services"];
    let coordinator = &services["coordinator"];
    let worker = &services["worker"];
    assert!(!coordinator.is_badvalue() && !worker.is_badvalue());
    for service in [coordinator, worker] {
        // Merged from the x-image anchor: both build the same image from the Containerfile.
        let build = if service["build"].is_badvalue() {
            &compose["x-image"]["build"]
        } else {
            &service["build"]
        };
        let dockerfile = deploy_dir().join("..").join(s(&build["dockerfile"]));
        assert!(dockerfile.is_file(), "{}", dockerfile.display());
    }
    let c_args = coordinator["command"]
        .as_vec()
        .expect("coordinator command");
    assert_eq!(s(&c_args[0]), "concur-coordinator");
    let w_args = worker["command"].as_vec().expect("worker command");
    assert_eq!(s(&w_args[0]), "concur-worker");
    // Tokens come from compose secrets, declared at the top level with files.
    for (args, flag_name, secret) in [
        (c_args, "--token-file", "client_token"),
        (c_args, "--worker-token-file", "worker_token"),
        (w_args, "--token-file", "worker_token"),
    ] {
        assert_eq!(
            flag(args, flag_name),
            Some(format!("/run/secrets/{secret}").as_str())
        );
        assert!(
            !compose["secrets"][secret]["file"].is_badvalue(),
            "secret {secret}"
        );
    }
    assert_eq!(
        flag(w_args, "--coordinator"),
        Some("http://coordinator:7070")
    );
    // Scalable: no fixed name or published port on workers; drains fit the grace period.
    assert!(worker["container_name"].is_badvalue() && worker["ports"].is_badvalue());
    let drain = seconds(flag(w_args, "--drain-timeout").expect("--drain-timeout"));
    assert!(seconds(s(&worker["stop_grace_period"])) > drain);
    assert_eq!(s(&worker["stop_signal"]), "SIGTERM");
    assert!(!worker["deploy"]["replicas"].is_badvalue());
    // The coordinator's state is a named volume; its port is published on loopback only.
    let volumes = coordinator["volumes"].as_vec().expect("volumes");
    assert!(
        volumes
            .iter()
            .any(|v| s(v).ends_with(":/var/lib/concur") && !s(v).starts_with('/'))
    );
    for port in coordinator["ports"].as_vec().expect("ports") {
        assert!(s(port).starts_with("127.0.0.1:"), "{port:?}");
    }
}

/// Every Kubernetes document in deploy/k8s, with the file it came from.
fn k8s_docs() -> Vec<(PathBuf, Yaml)> {
    let files = files_with(&deploy_dir().join("k8s"), ".yaml");
    assert!(files.len() >= 4, "{files:?}");
    files
        .into_iter()
        .flat_map(|f| yaml_docs(&f).into_iter().map(move |d| (f.clone(), d)))
        .collect()
}

fn find<'a>(docs: &'a [(PathBuf, Yaml)], kind: &str, name: &str) -> &'a Yaml {
    docs.iter()
        .map(|(_, d)| d)
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn kubernetes_manifests_are_complete_and_consistent() {
    let docs = k8s_docs();
    for (file, doc) in &docs {
        for key in ["apiVersion", "kind"] {
            assert!(doc[key].as_str().is_some(), "{}: {key}", file.display());
        }
        assert!(
            doc["metadata"]["name"].as_str().is_some(),
            "{}",
            file.display()
        );
        if doc["kind"].as_str() != Some("Namespace") {
            assert_eq!(
                doc["metadata"]["namespace"].as_str(),
                Some("concur"),
                "{}",
                file.display()
            );
        }
    }
    find(&docs, "Namespace", "concur");
    // The Secret ships empty tokens: applied unedited, the coordinator refuses to start.
    let secret = find(&docs, "Secret", "concur-tokens");
    for key in ["client-token", "worker-token"] {
        assert_eq!(secret["stringData"][key].as_str(), Some(""), "{key}");
    }
    let pvc = find(&docs, "PersistentVolumeClaim", "concur-coordinator-state");
    assert!(
        pvc["spec"]["resources"]["requests"]["storage"]
            .as_str()
            .is_some()
    );

    let coordinator = find(&docs, "Deployment", "concur-coordinator");
    assert_eq!(coordinator["spec"]["replicas"].as_i64(), Some(1));
    assert_eq!(
        coordinator["spec"]["strategy"]["type"].as_str(),
        Some("Recreate")
    );
    let pod = &coordinator["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    let args = container["args"].as_vec().expect("coordinator args");
    assert_eq!(s(&args[0]), "concur-coordinator");
    let state_dir = flag(args, "--state-dir").expect("--state-dir");
    let mount = |name: &str| {
        container["volumeMounts"]
            .as_vec()
            .expect("volumeMounts")
            .iter()
            .find(|m| m["name"].as_str() == Some(name))
            .map(|m| s(&m["mountPath"]).to_string())
    };
    assert_eq!(mount("state").as_deref(), Some(state_dir));
    let volume = |name: &str| -> Yaml {
        pod["spec"]["volumes"]
            .as_vec()
            .expect("volumes")
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .cloned()
            .unwrap_or_else(|| panic!("volume {name}"))
    };
    assert_eq!(
        volume("state")["persistentVolumeClaim"]["claimName"].as_str(),
        Some("concur-coordinator-state")
    );
    assert_eq!(
        volume("tokens")["secret"]["secretName"].as_str(),
        Some("concur-tokens")
    );
    let tokens = mount("tokens").expect("tokens mount");
    assert_eq!(
        flag(args, "--token-file"),
        Some(format!("{tokens}/client-token").as_str())
    );
    assert_eq!(
        flag(args, "--worker-token-file"),
        Some(format!("{tokens}/worker-token").as_str())
    );
    // gRPC health probes on the port it listens on, which the Service targets.
    let port = container["ports"][0]["containerPort"]
        .as_i64()
        .expect("port");
    assert_eq!(
        flag(args, "--listen"),
        Some(format!("0.0.0.0:{port}").as_str())
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            container[probe]["grpc"]["port"].as_i64(),
            Some(port),
            "{probe}"
        );
    }
    let service = find(&docs, "Service", "concur-coordinator");
    let labels = &pod["metadata"]["labels"];
    for (key, value) in service["spec"]["selector"].as_hash().expect("selector") {
        assert_eq!(
            &labels[s(key)],
            value,
            "Service selects the coordinator pod"
        );
    }
    assert_eq!(service["spec"]["ports"][0]["port"].as_i64(), Some(port));

    let worker = find(&docs, "Deployment", "concur-worker");
    assert!(
        worker["spec"]["replicas"].as_i64() >= Some(1),
        "replicas is the knob"
    );
    let wpod = &worker["spec"]["template"]["spec"];
    let wargs = wpod["containers"][0]["args"].as_vec().expect("worker args");
    assert_eq!(s(&wargs[0]), "concur-worker");
    assert_eq!(
        flag(wargs, "--coordinator"),
        Some(format!("http://concur-coordinator:{port}").as_str())
    );
    let drain = seconds(flag(wargs, "--drain-timeout").expect("--drain-timeout"));
    let grace = wpod["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("grace period") as u64;
    assert!(
        grace > drain,
        "grace {grace}s must exceed the drain {drain}s"
    );
    assert!(flag(wargs, "--token-file").is_some_and(|f| f.ends_with("/worker-token")));
    // Both pods: non-root, no privilege escalation, no capabilities (restricted profile).
    for spec in [&pod["spec"], wpod] {
        assert_eq!(
            spec["securityContext"]["runAsNonRoot"].as_bool(),
            Some(true)
        );
        let c = &spec["containers"][0]["securityContext"];
        assert_eq!(c["allowPrivilegeEscalation"].as_bool(), Some(false));
        assert_eq!(c["capabilities"]["drop"][0].as_str(), Some("ALL"));
    }
}
