//! Tests on several hosts: the namespace lab of `deploy/lab.sh` (network namespaces on a
//! bridge, each with its own address), with processes started and killed by their own PIDs.
//! The lab is removed when the handle drops, also when a test fails.

use crate::{CliOutput, Proc, bin, run_cli, scratch_dir, spawn_server};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A lab of hosts `0..n`; host 0 is meant for the coordinator.
#[derive(Debug)]
pub struct Lab {
    name: String,
    subnet: String,
}

/// The coordinator's port on host 0.
pub const PORT: u16 = 7070;

fn script() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/lab.sh"))
}

impl Lab {
    /// Builds `hosts` hosts named `NAME-h0..` on `SUBNET.1..`; `name` has at most 8 characters.
    /// Leftovers of an earlier run with the same name are removed first.
    pub fn new(name: &str, subnet: &str, hosts: u32) -> Self {
        let lab = Self {
            name: name.to_string(),
            subnet: subnet.to_string(),
        };
        lab.script(&["down"]);
        let out = lab.script(&["net", &hosts.to_string()]);
        assert!(
            out.status.success(),
            "cannot build the namespace lab (root and iproute2 are needed): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    fn script(&self, args: &[&str]) -> std::process::Output {
        Command::new("bash")
            .arg(script())
            .args(args)
            .env("LAB_NAME", &self.name)
            .env("LAB_SUBNET", &self.subnet)
            .stdin(Stdio::null())
            .output()
            .expect("run deploy/lab.sh")
    }

    /// Namespace of host `i`.
    pub fn host(&self, i: u32) -> String {
        format!("{}-h{i}", self.name)
    }

    /// Address of host `i`.
    pub fn addr(&self, i: u32) -> String {
        format!("{}.{}", self.subnet, i + 1)
    }

    /// The coordinator URL on host 0.
    pub fn url(&self) -> String {
        format!("http://{}:{PORT}", self.addr(0))
    }

    /// A command running `binary` on host `i`; `ip netns exec` execs it, so the PID is its own.
    pub fn command(&self, i: u32, binary: &str) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.host(i)])
            .arg(bin(binary));
        command
    }

    /// Starts the coordinator on host 0 with `extra` arguments (a scratch state directory
    /// unless they name one; `--insecure` unless they set tokens).
    pub fn start_coordinator(&self, extra: &[&str]) -> Proc {
        let mut command = self.command(0, "concur-coordinator");
        command
            .args(["--listen", &format!("{}:{PORT}", self.addr(0))])
            .args(extra);
        // The lab's bridge reaches only the lab's own namespaces; tests that want tokens pass
        // them, the others run unauthenticated on purpose.
        let has_tokens = extra.iter().any(|a| a.contains("token"));
        if !has_tokens {
            command.arg("--insecure");
        }
        let scratch = (!extra.contains(&"--state-dir")).then(|| scratch_dir("lab-state"));
        if let Some(dir) = &scratch {
            command.arg("--state-dir").arg(dir);
        }
        let mut proc = spawn_server(command);
        proc.scratch = scratch;
        proc
    }

    /// Starts a worker on host `i`, attached to the coordinator on host 0.
    pub fn start_worker(&self, i: u32) -> Proc {
        let child = self
            .command(i, "concur-worker")
            .args(["--coordinator", &self.url(), "--host-name", &self.host(i)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn worker in the lab");
        Proc {
            child,
            first_line: String::new(),
            scratch: None,
        }
    }

    /// Runs `concur-cli ARGS` on host 0.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        let mut command = self.command(0, "concur-cli");
        command.args(args);
        run_cli(command)
    }

    /// Pulls host `i`'s cable: neither end is told.
    pub fn cut(&self, i: u32) {
        assert!(self.script(&["cut", &i.to_string()]).status.success());
    }

    /// Plugs host `i` back in.
    pub fn restore(&self, i: u32) {
        assert!(self.script(&["restore", &i.to_string()]).status.success());
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.script(&["down"]);
    }
}
