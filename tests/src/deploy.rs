//! Helpers for checking `deploy/`: finding system tools (with the package that brings each),
//! running an sshd inside namespace-lab hosts with keys made at test time, and running
//! `concur-cli cluster` (or its wrapper `deploy/ssh-workers.sh`) from a lab host, or locally
//! through a stand-in for ssh. Everything started here is stopped by its own PID when its
//! handle drops, also when a test fails.

use crate::lab::Lab;
use crate::{Proc, bin, process_alive, scratch_dir};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository's `deploy/` directory.
pub fn deploy_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy"))
}

/// The path of system tool `name`, from PATH or the sbin directories; panics naming the
/// Debian package to install when it is missing, so a missing tool fails loudly.
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path
        .split(':')
        .map(PathBuf::from)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` is not installed; this check needs it: apt-get install -y --no-install-recommends {package} \
         (.ci/run installs it)"
    )
}

/// A finished command's exit code and text.
#[derive(Debug)]
pub struct Ran {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Ran {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Both streams, for assertion messages.
    pub fn text(&self) -> String {
        format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
    }
}

/// Runs `command` to completion with no input.
pub fn run(mut command: Command) -> Ran {
    Ran::from(
        command
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}")),
    )
}

/// sshd running on some lab hosts, reachable from the others with a key made for this run.
#[derive(Debug)]
pub struct SshHosts {
    dir: PathBuf,
    daemons: Vec<Proc>,
}

/// The port the test sshd listens on (each host has its own network stack, so it is free).
pub const SSH_PORT: u16 = 2222;

impl SshHosts {
    /// Starts an sshd on each of `hosts`, listening on the host's lab address, accepting only
    /// a key generated now (host key likewise), and waits until each accepts connections.
    pub fn start(lab: &Lab, hosts: &[u32]) -> Self {
        let sshd = require_tool("sshd", "openssh-server");
        let keygen = require_tool("ssh-keygen", "openssh-client");
        require_tool("ssh", "openssh-client");
        let dir = scratch_dir("sshd");
        for key in ["host_key", "client_key"] {
            let ran = run({
                let mut c = Command::new(&keygen);
                c.args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(dir.join(key));
                c
            });
            assert_eq!(ran.code, 0, "ssh-keygen failed: {}", ran.text());
        }
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys"))
            .expect("authorized_keys");
        // sshd insists on its privilege-separation directory (normally made by its package's
        // service unit, which does not run here).
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        std::fs::write(
            dir.join("ssh_config"),
            format!(
                "Host *\n  Port {SSH_PORT}\n  User root\n  IdentityFile {key}\n  IdentitiesOnly yes\n  \
                 StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n",
                key = dir.join("client_key").display()
            ),
        )
        .expect("ssh_config");
        let mut daemons = Vec::new();
        for &i in hosts {
            let config = dir.join(format!("sshd-h{i}.conf"));
            std::fs::write(
                &config,
                format!(
                    "ListenAddress {addr}\nPort {SSH_PORT}\nHostKey {dir}/host_key\n\
                     PidFile {dir}/sshd-h{i}.pid\nAuthorizedKeysFile {dir}/authorized_keys\n\
                     PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n",
                    addr = lab.addr(i),
                    dir = dir.display()
                ),
            )
            .expect("sshd config");
            let log = std::fs::File::create(dir.join(format!("sshd-h{i}.log"))).expect("log");
            // -D: stays in the foreground, so the PID we hold is the daemon's own.
            let child = Command::new("ip")
                .args(["netns", "exec", &lab.host(i)])
                .arg(&sshd)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn sshd");
            daemons.push(Proc {
                child,
                first_line: String::new(),
                scratch: None,
            });
        }
        let hosts_up = Self { dir, daemons };
        for &i in hosts {
            hosts_up.wait_listening(lab, i);
        }
        hosts_up
    }

    /// Waits until host `i`'s sshd runs a command for us (from host 0).
    fn wait_listening(&self, lab: &Lab, i: u32) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut ssh = Command::new("ip");
            ssh.args(["netns", "exec", &lab.host(0), "ssh", "-F"])
                .arg(self.config())
                .args(["-o", "BatchMode=yes", &lab.addr(i), "true"]);
            let ran = run(ssh);
            if ran.code == 0 {
                return;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join(format!("sshd-h{i}.log")));
                panic!(
                    "sshd on host {i} never accepted us: {}\nsshd log: {}",
                    ran.text(),
                    log.unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The ssh client configuration that reaches these hosts (port, key, no host-key prompts).
    pub fn config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }
}

impl Drop for SshHosts {
    fn drop(&mut self) {
        // Each Proc kills its own sshd by PID; sessions it forked end with their connections.
        self.daemons.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `concur-cli cluster` (or its wrapper `deploy/ssh-workers.sh`) run from a lab host, or
/// locally with a stand-in for ssh, with its run directory in a scratch directory. On drop,
/// workers it started and left running are killed by the PIDs it recorded.
#[derive(Debug)]
pub struct Launcher {
    namespace: Option<String>,
    ssh_config: Option<PathBuf>,
    run_dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Launcher {
    /// The launcher on host `from` of `lab`, using `hosts`' ssh configuration.
    pub fn new(lab: &Lab, from: u32, hosts: &SshHosts) -> Self {
        Self {
            namespace: Some(lab.host(from)),
            ssh_config: Some(hosts.config()),
            run_dir: scratch_dir("ssh-workers"),
            env: Vec::new(),
        }
    }

    /// The launcher on this machine, reaching "hosts" through [`fake_ssh`] (`CONCUR_SSH`): every
    /// host is this machine, so the whole flow runs without root or an sshd.
    pub fn local(fake_ssh: &Path) -> Self {
        Self {
            namespace: None,
            ssh_config: None,
            run_dir: scratch_dir("ssh-workers"),
            env: vec![("CONCUR_SSH".into(), fake_ssh.display().to_string())],
        }
    }

    /// Sets an environment variable for every run.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = match &self.namespace {
            Some(namespace) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", namespace]).arg(program);
                c
            }
            None => Command::new(program),
        };
        command
            .env_remove("CONCUR_COORDINATOR")
            .env_remove("CONCUR_WORKER_TOKEN")
            .env_remove("CONCUR_WORKER_BIN")
            .env_remove("CONCUR_RUN_DIR")
            .env_remove("CONCUR_TOKEN")
            .env("CONCUR_CLI", bin("concur-cli"))
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// The command `concur-cli cluster ACTION [-F CONFIG] --run-dir DIR ARGS...`.
    pub fn cluster_command(&self, action: &str, args: &[&str]) -> Command {
        let mut command = self.command(&bin("concur-cli"));
        command.args(["cluster", action]);
        if let Some(config) = &self.ssh_config {
            command.arg("-F").arg(config);
        }
        command.arg("--run-dir").arg(&self.run_dir).args(args);
        command
    }

    /// Runs `concur-cli cluster ACTION ... ARGS` (see [`Self::cluster_command`]).
    pub fn cluster(&self, action: &str, args: &[&str]) -> Ran {
        run(self.cluster_command(action, args))
    }

    /// Runs `deploy/ssh-workers.sh [-F CONFIG] --run-dir DIR ARGS...` (the wrapper).
    pub fn script(&self, args: &[&str]) -> Ran {
        let mut command = self.command(Path::new("bash"));
        command.arg(deploy_dir().join("ssh-workers.sh"));
        if let Some(config) = &self.ssh_config {
            command.arg("-F").arg(config);
        }
        command.arg("--run-dir").arg(&self.run_dir).args(args);
        run(command)
    }

    /// The run directory (shared by the lab's hosts, which share the file system).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The directory the launcher keeps for `host` (on the shared file system of the lab).
    pub fn host_dir(&self, host: &str) -> PathBuf {
        self.run_dir.join(host)
    }

    /// The worker PID recorded for `host`, if a PID file is there.
    pub fn recorded_pid(&self, host: &str) -> Option<u32> {
        std::fs::read_to_string(self.host_dir(host).join("worker.pid"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
    }

    /// (PID, the binary it was started as) of every worker with a PID file.
    fn recorded(&self) -> Vec<(u32, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(&self.run_dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let cmd = std::fs::read_to_string(self.host_dir(&name).join("worker.cmd")).ok()?;
                Some((self.recorded_pid(&name)?, PathBuf::from(cmd.trim_end())))
            })
            .collect()
    }
}

/// True when `pid` runs the program at `path` (so a reused PID is never killed).
pub fn runs(pid: u32, path: &Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        cmdline.split(|b| *b == 0).next() == Some(path.as_os_str().as_encoded_bytes())
    })
}

/// A process's command line, arguments joined by spaces.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .unwrap_or_default()
}

impl Drop for Launcher {
    fn drop(&mut self) {
        for (pid, program) in self.recorded() {
            if process_alive(pid) && runs(pid, &program) {
                // SAFETY: kill(2) on a worker this launcher started, checked by its command line.
                unsafe {
                    libc::kill(pid as i32, libc::SIGKILL);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// Writes, into `dir`, a stand-in for ssh: it skips ssh's options, appends its whole command
/// line to `dir/ssh-argv.log` (so tests can check no secret was on it), and runs the remote
/// command with `sh -c` here, standard input passed through.
pub fn fake_ssh(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("fake-ssh");
    let log = dir.join("ssh-argv.log");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{log}'\n\
             while [ $# -gt 0 ]; do case \"$1\" in --) shift; break ;; -F|-o) shift 2 ;; *) shift ;; esac; done\n\
             shift\nexec sh -c \"$*\"\n",
            log = log.display()
        ),
    )
    .expect("write fake ssh");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Spawns `command` with its output discarded, as a [`Proc`] killed when dropped.
pub fn spawn_quiet(mut command: Command) -> Proc {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {command:?}: {e}"));
    Proc {
        child,
        first_line: String::new(),
        scratch: None,
    }
}

/// A scratch directory removed when dropped, also when a test fails.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh, empty directory (see [`scratch_dir`]).
    pub fn new(name: &str) -> Self {
        Self(scratch_dir(name))
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file's text; panics naming the file.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The files in `dir` whose names end with `suffix`, sorted.
pub fn files_with(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list deploy dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

/// The long flags a binary's --help lists.
pub fn long_flags(binary: &str) -> BTreeSet<String> {
    let out = run({
        let mut c = Command::new(bin(binary));
        c.arg("--help");
        c
    });
    out.stdout
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.split('=').next().unwrap().to_string())
        .collect()
}

/// The seconds in "30s" or "45".
pub fn seconds(text: &str) -> u64 {
    text.trim_end_matches('s')
        .parse()
        .unwrap_or_else(|_| panic!("not whole seconds: {text:?}"))
}
