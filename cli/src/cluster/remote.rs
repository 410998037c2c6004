//! The POSIX sh scripts run on the hosts (fed to `sh -s` over ssh's standard input) and the
//! `@key=value` lines they answer with.
//!
//! Every value a script needs is set as a quoted variable at its top, so nothing from the user
//! is ever spliced into the script's code. Scripts print `@key=value` lines for us to read and
//! free text for the person running the command.

use super::ssh::sh_quote;
use std::collections::BTreeMap;

/// Shell lines setting variables, each value quoted.
#[derive(Debug, Default)]
pub(crate) struct Vars(String);

impl Vars {
    /// Adds `name=value`.
    pub(crate) fn set(mut self, name: &str, value: impl AsRef<str>) -> Self {
        self.0
            .push_str(&format!("{name}={}\n", sh_quote(value.as_ref())));
        self
    }

    /// The full script: these variables, the prelude, then `body`.
    pub(crate) fn script(self, body: &str) -> String {
        format!("{}{PRELUDE}{body}", self.0)
    }
}

/// Strict mode; `$base` (the run directory) and `$dir` (this host's directory) made absolute
/// and private; `running_pid`, the recorded worker's PID if that process is still the worker
/// (a PID the kernel reused for another program is not ours: argv[0] must be the binary we
/// started), never a match by name. Needs the variables `run_dir` and `name`.
const PRELUDE: &str = r#"
set -eu
umask 077
mkdir -p "$run_dir/$name"
base=$(cd "$run_dir" && pwd)
dir="$base/$name"
chmod 700 "$dir"
running_pid() {
    [ -f "$dir/worker.pid" ] || return 1
    pid=$(cat "$dir/worker.pid")
    case "$pid" in ""|*[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    if [ -r "/proc/$pid/cmdline" ] && [ -f "$dir/worker.cmd" ]; then
        first=$(tr "\000" "\n" < "/proc/$pid/cmdline" | head -n 1)
        [ "$first" = "$(cat "$dir/worker.cmd")" ] || return 1
        # A zombie has exited already.
        case "$(sed -n "s/^State:[[:space:]]*\([A-Z]\).*/\1/p" "/proc/$pid/status" 2>/dev/null)" in
            Z|X) return 1 ;;
        esac
    fi
    echo "$pid"
}
"#;

/// The sha256 of `$base/concur-worker`, `missing`, or `unknown` without a hashing tool.
pub(crate) const PROBE_BINARY: &str = r#"
f="$base/concur-worker"
if [ ! -f "$f" ]; then
    echo "@sha256=missing"
elif command -v sha256sum >/dev/null 2>&1; then
    echo "@sha256=$(sha256sum < "$f" | cut -d " " -f 1)"
elif command -v shasum >/dev/null 2>&1; then
    echo "@sha256=$(shasum -a 256 < "$f" | cut -d " " -f 1)"
else
    echo "@sha256=unknown"
fi
"#;

/// The remote command (for the login shell) that stores standard input as the worker binary:
/// into a temporary file unique to this session (hosts may share a home directory), checked to
/// have all `size` bytes (a killed local ssh looks like a normal end of input there), then
/// renamed over the old one in one step, so a running worker keeps its file and a new start
/// never sees half a binary.
pub(crate) fn copy_binary_command(run_dir: &str, size: u64) -> String {
    let dir = sh_quote(run_dir);
    format!(
        "umask 077 && mkdir -p {dir} && t={dir}/concur-worker.part.$$ && cat > \"$t\" && \
         if [ \"$(wc -c < \"$t\" | tr -d ' ')\" != {size} ]; then rm -f \"$t\"; echo 'incomplete copy' >&2; exit 1; fi && \
         chmod 755 \"$t\" && mv -f \"$t\" {dir}/concur-worker"
    )
}

/// Starts the worker detached unless it runs already. Needs `coordinator`, `slots`,
/// `report_name` (empty: the machine's own name), `token`, `remote_token_file`, `bin` (empty:
/// the copied binary), `extra` (more arguments, each already quoted).
pub(crate) const START: &str = r#"
if pid=$(running_pid); then
    echo "@state=already-running"
    echo "@pid=$pid"
    echo "@node=$(cat "$dir/worker.name" 2>/dev/null || true)"
    echo "already running (pid $pid)"
    exit 0
fi
[ -n "$bin" ] || bin="$base/concur-worker"
case "$bin" in
    */*) [ -x "$bin" ] || { echo "no executable $bin" >&2; exit 1; } ;;
    *) command -v "$bin" >/dev/null 2>&1 || { echo "$bin is not on PATH (give --bin /path, or let concur-cli copy it)" >&2; exit 1; } ;;
esac
command -v setsid >/dev/null 2>&1 || { echo "setsid is missing (util-linux)" >&2; exit 1; }
set -- --coordinator "$coordinator" --slots "$slots"
if [ -n "$report_name" ]; then
    set -- "$@" --host-name "$report_name"
else
    report_name=$(uname -n)
fi
rm -f "$dir/token"
if [ -n "$token" ]; then
    # printf is a shell builtin: the token is on no process's command line.
    printf "%s\n" "$token" > "$dir/token"
    chmod 600 "$dir/token"
    set -- "$@" --token-file "$dir/token"
elif [ -n "$remote_token_file" ]; then
    set -- "$@" --token-file "$remote_token_file"
fi
eval "set -- \"\$@\" $extra"
printf "%s\n" "$bin" > "$dir/worker.cmd"
printf "%s\n" "$report_name" > "$dir/worker.name"
printf "\n==== %s start: %s %s\n" "$(date "+%Y-%m-%dT%H:%M:%S%z")" "$bin" "$*" >> "$dir/worker.log"
# A new session, no terminal, stdin closed: it outlives this ssh session and its SIGHUP.
# (Without job control the child is no group leader, so setsid execs in place: $! is the worker.)
NO_COLOR=1 setsid nohup "$bin" "$@" < /dev/null >> "$dir/worker.log" 2>&1 &
pid=$!
echo "$pid" > "$dir/worker.pid"
# A worker that cannot start (bad flag, bad token file) exits at once: report it.
sleep 1
if ! running_pid >/dev/null; then
    rm -f "$dir/worker.pid" "$dir/token"
    echo "@state=exited"
    echo "worker exited at once; last lines of $dir/worker.log:" >&2
    tail -n 5 "$dir/worker.log" >&2
    exit 1
fi
echo "@state=started"
echo "@pid=$pid"
echo "@node=$report_name"
echo "started (pid $pid, log $dir/worker.log)"
"#;

/// SIGTERM (drain) to the recorded worker, exactly that PID.
pub(crate) const SIGNAL: &str = r#"
if ! pid=$(running_pid); then
    rm -f "$dir/worker.pid" "$dir/token"
    echo "@state=not-running"
    echo "not running"
    exit 0
fi
kill -TERM "$pid"
echo "@state=draining"
echo "@pid=$pid"
echo "draining (pid $pid)"
"#;

/// Waits for the signalled worker to exit, `stop_timeout` seconds at most; SIGKILL after that
/// when `force` is `yes`. Removes the PID and token files once it is gone.
pub(crate) const WAIT: &str = r#"
pid=$(cat "$dir/worker.pid" 2>/dev/null || true)
if [ -z "$pid" ]; then
    echo "@state=stopped"
    echo "stopped"
    exit 0
fi
waited=0
while running_pid >/dev/null; do
    if [ "$waited" -ge "$stop_timeout" ]; then
        if [ "$force" = yes ]; then
            kill -KILL "$pid" 2>/dev/null || true
            sleep 1
            rm -f "$dir/worker.pid" "$dir/token"
            echo "@state=killed"
            echo "killed (pid $pid still running after ${stop_timeout}s)"
            exit 0
        fi
        echo "@state=still-running"
        echo "still running after ${stop_timeout}s (pid $pid); --force kills it" >&2
        exit 1
    fi
    sleep 1
    waited=$((waited + 1))
done
rm -f "$dir/worker.pid" "$dir/token"
echo "@state=stopped"
echo "stopped (pid $pid, drained in about ${waited}s)"
"#;

/// Whether the worker runs, its PID and reported name, and the log's last `log_lines` lines.
pub(crate) const STATUS: &str = r#"
if pid=$(running_pid); then
    echo "@state=running"
    echo "@pid=$pid"
    echo "@node=$(cat "$dir/worker.name" 2>/dev/null || true)"
else
    echo "@state=not-running"
fi
[ ! -f "$dir/worker.log" ] || echo "@log=$dir/worker.log"
if [ "$log_lines" -gt 0 ] && [ -f "$dir/worker.log" ]; then
    tail -n "$log_lines" "$dir/worker.log" | sed "s/^/@line=/"
fi
"#;

/// A script's answer: its `@key=value` lines (a key given twice keeps every value, e.g.
/// `@line`), and the rest as text for people.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    fields: BTreeMap<String, Vec<String>>,
    /// Lines that were not `@key=value`.
    pub(crate) text: Vec<String>,
}

impl Answer {
    /// Reads a script's standard output.
    pub(crate) fn parse(stdout: &str) -> Self {
        let mut answer = Self::default();
        for line in stdout.lines() {
            match line.strip_prefix('@').and_then(|l| l.split_once('=')) {
                Some((key, value)) => answer
                    .fields
                    .entry(key.to_string())
                    .or_default()
                    .push(value.to_string()),
                None if !line.trim().is_empty() => answer.text.push(line.to_string()),
                None => {}
            }
        }
        answer
    }

    /// The last value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key)?.last().map(String::as_str)
    }

    /// Every value of `key`, in order.
    pub(crate) fn all(&self, key: &str) -> &[String] {
        self.fields.get(key).map_or(&[], Vec::as_slice)
    }

    /// `@pid` as a number.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.get("pid")?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_split_fields_from_text() {
        let a = Answer::parse("@state=running\n@pid=42\nhello\n@line=a=b\n@line=\n\n");
        assert_eq!(a.get("state"), Some("running"));
        assert_eq!(a.pid(), Some(42));
        assert_eq!(a.all("line"), ["a=b", ""]);
        assert_eq!(a.text, ["hello"]);
        assert_eq!(a.get("nope"), None);
    }

    #[test]
    fn a_copy_lands_whole_or_not_at_all() {
        let dir = std::env::temp_dir().join(format!("concur-copy-{}", std::process::id()));
        let run_dir = dir.join("run dir");
        let copy = |bytes: &[u8], size: u64| {
            use std::io::Write;
            let mut child = std::process::Command::new("sh")
                .arg("-c")
                .arg(copy_binary_command(run_dir.to_str().unwrap(), size))
                .stdin(std::process::Stdio::piped())
                .spawn()
                .expect("sh");
            child.stdin.take().unwrap().write_all(bytes).unwrap();
            child.wait().unwrap().success()
        };
        assert!(copy(b"whole", 5));
        assert_eq!(
            std::fs::read(run_dir.join("concur-worker")).unwrap(),
            b"whole"
        );
        assert!(!copy(b"cut", 5), "a short copy fails");
        assert_eq!(
            std::fs::read(run_dir.join("concur-worker")).unwrap(),
            b"whole"
        );
        assert_eq!(
            std::fs::read_dir(&run_dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn scripts_parse_as_posix_sh_and_values_stay_data() {
        for body in [PROBE_BINARY, START, SIGNAL, WAIT, STATUS] {
            let script = Vars::default()
                .set("run_dir", "/tmp/x")
                .set("name", "h")
                .script(body);
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", &script])
                .output()
                .expect("sh");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // A hostile value is data: the script prints it back instead of running it.
        let script =
            Vars::default().set("v", "$(echo pwned)'; echo pwned; '").0 + "printf %s \"$v\"";
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("sh");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "$(echo pwned)'; echo pwned; '"
        );
    }
}
