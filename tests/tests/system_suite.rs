//! Says, in one line, what `cargo test --workspace` leaves out: the system suite, which needs
//! root and tools a machine with only the Rust toolchain lacks. Runs nothing, asserts nothing.

fn main() {
    if cfg!(feature = "system") {
        return;
    }
    println!(
        "note: the system suite (network-namespace labs, a full disk on tmpfs, sshd, shellcheck, systemd-analyze, a Python gRPC client, headless Chromium, promtool, PostgreSQL failover; needs root) was not run; run it as root: cargo test -p concur-tests --features system --test system"
    );
}
