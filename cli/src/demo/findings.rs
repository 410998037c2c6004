//! The few plain sentences printed under the demo's table. Every claim is chosen by the
//! measured numbers (a threshold decides between two wordings), never assumed.

use super::scenarios::{JobKind, python_baseline};
use super::{Row, Settings};

/// A speedup counts as a real gain above this (below it, noise and overhead dominate).
const GAIN: f64 = 1.3;
/// Efficiency at which a row is "close to" its ideal.
const CLOSE: f64 = 0.7;

/// What a sentence citing `rows`' figures must add when the table flags one of them: a figure
/// that cannot be trusted is never quoted plainly.
fn caveat(rows: &[&Row]) -> String {
    let flagged: Vec<String> = rows
        .iter()
        .filter(|r| !r.flags.is_empty())
        .map(|r| format!("{}: {}", r.name, r.flags.join("; ")))
        .collect();
    if flagged.is_empty() {
        String::new()
    } else {
        format!(" (Read with care: the table flags {}.)", flagged.join(", "))
    }
}

fn find<'a>(rows: &'a [Row], name: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.name == name)
}

/// The findings for `rows`.
pub(crate) fn write(rows: &[Row], settings: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    let get = |name| find(rows, name);
    if let (Some(threads), Some(sync)) = (get("cpu-threads"), get("cpu-sync")) {
        let python = python_baseline(JobKind::Cpu) / 9.19;
        let with_care = caveat(&[threads, sync]);
        out.push(if threads.speedup >= GAIN {
            format!(
                "Threads helped the CPU job here: cpu-threads ran {:.2}x faster than cpu-sync on {} cores (CPU utilisation {:.0}% against {:.0}%). Rust threads compute in parallel — there is no GIL — so the cores, not the language, cap the gain; the post's Python threads gained {python:.2}x.",
                threads.speedup,
                settings.cores,
                threads.cpu_utilisation * 100.0,
                sync.cpu_utilisation * 100.0
            ) + &with_care
        } else {
            format!(
                "Threads did not help the CPU job here ({:.2}x) with {} core(s): there was no idle core to run them on. Unlike Python's (GIL-bound, {python:.2}x in the post), Rust threads would scale with more cores.",
                threads.speedup, settings.cores
            ) + &with_care
        });
    }
    if let (Some(processes), Some(threads), Some(rayon)) =
        (get("cpu-processes"), get("cpu-threads"), get("cpu-rayon"))
    {
        out.push(format!(
            "For CPU work, {} processes gave {:.2}x, 5 threads {:.2}x and rayon {:.2}x: once every core is busy, more processes or threads add nothing{}",
            processes.processes,
            processes.speedup,
            threads.speedup,
            rayon.speedup,
            if processes.speedup >= GAIN {
                " — in Python only processes get there (the post: 5.8x on its machine's cores)."
            } else {
                "."
            }
        ) + &caveat(&[processes, threads, rayon]));
    }
    if let (Some(a), Some(t5), Some(t10), Some(p)) = (
        get("io-async"),
        get("io-threads"),
        get("io-threads-10"),
        get("io-processes"),
    ) {
        let close = [a, t5, t10, p]
            .iter()
            .filter(|r| r.efficiency >= CLOSE)
            .count();
        out.push(format!(
            "The I/O job gains from overlapping waits, not from cores: async with one task per URL {:.1}x, 10 threads {:.1}x, 5 threads {:.1}x, {} sequential processes {:.1}x; {close} of these 4 reach at least {:.0}% of the requests they keep in flight (the latency floor). The post measured 4.6x for async and 4.1x for 5 threads against real sites.",
            a.speedup, t10.speedup, t5.speedup, p.processes, p.speedup, CLOSE * 100.0
        ));
    }
    if let (Some(blocking), Some(a)) = (get("io-async-blocking"), get("io-async")) {
        let mut sentence = format!(
            "Blocking calls inside async tasks {} the event loop's advantage: io-async-blocking {:.2}x against io-async's {:.1}x.",
            if blocking.speedup < GAIN {
                "threw away"
            } else {
                "cut into"
            },
            blocking.speedup,
            a.speedup
        );
        if let (Some(on_loop), Some(off_loop)) = (get("cpu-async-cpu"), get("cpu-async")) {
            sentence.push_str(&format!(
                " CPU work run on the event loop {} the CPU job: cpu-async-cpu {:.2}x, against {:.2}x for cpu-async, which moves it to a thread pool.",
                if on_loop.speedup < GAIN { "serialised" } else { "slowed" },
                on_loop.speedup,
                off_loop.speedup
            ));
        }
        out.push(sentence);
    }
    if let (Some(io), Some(cpu)) = (get("io-sync"), get("cpu-sync")) {
        out.push(format!(
            "CPU utilisation tells the two kinds of work apart: {:.0}% for io-sync (waiting on the network), {:.0}% for cpu-sync (computing).",
            io.cpu_utilisation * 100.0,
            cpu.cpu_utilisation * 100.0
        ));
        if settings.cpu_scale > 1 && cpu.wall_s > 0.0 {
            // The kernel's time is linear in n (see docs/benchmarks.md), so scaling back is fair.
            let at_post_size = cpu.wall_s / settings.cpu_scale as f64;
            out.push(format!(
                "The CPU rows use the post's n x {}: cpu-sync took {:.2} s, so the post's own job would take about {:.3} s here, {:.0}x less than Python's 9.24 s — at that size coordination, not computing, would dominate the wall time.",
                settings.cpu_scale,
                cpu.wall_s,
                at_post_size,
                python_baseline(JobKind::Cpu) / at_post_size
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, flags: &[&str]) -> Row {
        Row {
            name: name.into(),
            workload: "sum-squares".into(),
            processes: 1,
            strategy: "threads".into(),
            concurrency: 5,
            units: 5,
            wall_s: 1.0,
            speedup: 2.25,
            efficiency: 0.45,
            effective_parallelism: 4.0,
            cpu_utilisation: 1.0,
            items_ok: 1,
            items_failed: 0,
            cpu_cores_busy: 1.0,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            flagged: Vec::new(),
            python_s: None,
            python_speedup: None,
            about: String::new(),
        }
    }

    #[test]
    fn a_sentence_quoting_a_flagged_figure_says_so() {
        let flagged = row("cpu-threads", &["speedup 2.25x exceeds the 2 cores used"]);
        let plain = row("cpu-sync", &[]);
        let text = caveat(&[&flagged, &plain]);
        assert!(
            text.contains("cpu-threads: speedup 2.25x exceeds"),
            "{text}"
        );
        assert!(!text.contains("cpu-sync"), "{text}");
        assert_eq!(caveat(&[&plain]), "");
    }
}
