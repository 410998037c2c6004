//! The Containerfile: builds from source into a non-root runtime.

use super::*;

#[test]
fn containerfile_builds_from_source_into_a_non_root_runtime() {
    let text = read(&deploy_dir().join("Containerfile"));
    // Instructions, with continuation lines joined and comments dropped.
    let joined = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ");
    let instructions: Vec<(&str, &str)> = joined
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().split_once(' ').unwrap_or((l.trim(), "")))
        .collect();
    const KNOWN: [&str; 12] = [
        "FROM",
        "RUN",
        "COPY",
        "WORKDIR",
        "USER",
        "ENV",
        "EXPOSE",
        "VOLUME",
        "CMD",
        "STOPSIGNAL",
        "ARG",
        "LABEL",
    ];
    for (op, _) in &instructions {
        assert!(KNOWN.contains(op), "unknown instruction {op}");
    }
    let froms: Vec<&str> = instructions
        .iter()
        .filter(|(op, _)| *op == "FROM")
        .map(|(_, a)| *a)
        .collect();
    assert_eq!(froms.len(), 2, "a build stage and a runtime stage");
    assert!(froms[0].contains("rust:") && froms[0].ends_with(" AS build"));
    let build_run = instructions
        .iter()
        .find(|(op, a)| *op == "RUN" && a.contains("cargo build"))
        .expect("cargo build")
        .1;
    assert!(build_run.contains("--release") && build_run.contains("--locked"));
    for name in ["concur-coordinator", "concur-worker", "concur-cli"] {
        assert!(
            build_run.contains(&format!("target/release/{name}")),
            "{name}"
        );
    }
    let runtime = &instructions[instructions
        .iter()
        .rposition(|(op, _)| *op == "FROM")
        .unwrap()..];
    assert!(
        runtime
            .iter()
            .any(|(op, a)| *op == "COPY" && a.starts_with("--from=build"))
    );
    let user = runtime
        .iter()
        .rev()
        .find(|(op, _)| *op == "USER")
        .expect("USER");
    assert!(!user.1.starts_with('0') && !user.1.starts_with("root"));
    assert!(runtime.iter().any(|(op, _)| *op == "CMD"));
    // The build context excludes the (huge) target directory.
    let ignore = read(&deploy_dir().join("Containerfile.dockerignore"));
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
    // Rust version of the build image: the workspace's rust-version.
    let manifest = read(&deploy_dir().join("../Cargo.toml"));
    let rust_version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("rust-version")
        .trim_matches('"');
    assert!(
        froms[0].contains(&format!("rust:{rust_version}")),
        "{} vs {rust_version}",
        froms[0]
    );
}
