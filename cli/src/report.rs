//! Printing a job's report as it streams in: the summary, then shards and items chunk by
//! chunk, so a job of a million items is printed in constant memory.
//!
//! JSON is one object with the summary's keys, then `shards` and `items`; the human report is
//! the summary, a bounded table of shards, and (unless asked otherwise) the failures and a
//! sample of the items, not a million rows.

use crate::args::{ItemsShown, OutputFormat};
use crate::client::Client;
use crate::exit::{CliError, Exit};
use crate::stdout::{self, outln};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use concur_core::report::{ItemRow, JobRecord, JobState, JobSummary, ShardRow};
use concur_proto::convert::item_row_of;
use concur_proto::pb;

/// Shards shown in the human report; the rest are counted.
const SHARDS_SHOWN: u32 = 20;
/// A job this small gets all its items in one table.
const SMALL_JOB: u64 = 20;
/// Items in the human report's sample, and failures listed at most.
const SAMPLE: u64 = 10;
const FAILURES_SHOWN: u64 = 20;

/// A job's summary record.
pub(crate) async fn fetch_record(client: &mut Client, job_id: u64) -> Result<JobRecord, CliError> {
    let report = client
        .get_job(pb::GetJobRequest { job_id })
        .await?
        .into_inner();
    Ok(JobRecord::from(&report))
}

/// A job's summary with every derived figure.
pub(crate) async fn fetch_summary(
    client: &mut Client,
    job_id: u64,
) -> Result<JobSummary, CliError> {
    Ok(fetch_record(client, job_id).await?.summary())
}

/// Prints the report of `job_id` and maps its state to an exit outcome.
pub(crate) async fn print(
    client: &mut Client,
    job_id: u64,
    format: OutputFormat,
    items: Option<ItemsShown>,
) -> Result<Exit, CliError> {
    let record = fetch_record(client, job_id).await?;
    let summary = record.summary();
    match format {
        OutputFormat::Json => {
            print_json(client, &summary, items.unwrap_or(ItemsShown::All)).await?
        }
        OutputFormat::Human => print_human(client, &record, &summary, items).await?,
    }
    stdout::flush();
    Ok(match summary.state {
        JobState::Succeeded | JobState::Pending | JobState::Running => Exit::Success,
        JobState::Failed | JobState::Cancelled => Exit::No,
    })
}

fn filter(items: ItemsShown) -> pb::ItemFilter {
    match items {
        ItemsShown::All | ItemsShown::None => pb::ItemFilter::All,
        ItemsShown::Ok => pb::ItemFilter::Ok,
        ItemsShown::Failed => pb::ItemFilter::Failed,
        ItemsShown::Unfinished => pb::ItemFilter::Unfinished,
    }
}

/// Calls `each` for every shard row from the first, at most `limit` (0 = all).
pub(crate) async fn shards(
    client: &mut Client,
    job_id: u64,
    limit: u32,
    mut each: impl FnMut(ShardRow),
) -> Result<(), CliError> {
    let request = pb::ListJobShardsRequest {
        job_id,
        offset: 0,
        limit,
    };
    let mut stream = client.list_job_shards(request).await?.into_inner();
    while let Some(chunk) = stream.message().await? {
        chunk.shards.iter().map(ShardRow::from).for_each(&mut each);
    }
    Ok(())
}

/// Calls `each` for every item passing `filter`, at most `limit` (0 = all).
async fn items(
    client: &mut Client,
    job_id: u64,
    filter: pb::ItemFilter,
    limit: u64,
    workload: &str,
    mut each: impl FnMut(ItemRow),
) -> Result<(), CliError> {
    let request = pb::ListJobItemsRequest {
        job_id,
        filter: filter.into(),
        offset: 0,
        limit,
    };
    let mut stream = client.list_job_items(request).await?.into_inner();
    while let Some(chunk) = stream.message().await? {
        for item in &chunk.items {
            each(item_row_of(item, workload));
        }
    }
    Ok(())
}

/// One JSON object: the summary's keys, then `shards` and `items`, each element written as
/// it arrives.
async fn print_json(
    client: &mut Client,
    summary: &JobSummary,
    shown: ItemsShown,
) -> Result<(), CliError> {
    let head = serde_json::to_string_pretty(summary).map_err(anyhow::Error::from)?;
    // The summary object without its closing brace: the arrays follow inside it.
    let head = head.trim_end().trim_end_matches('}').trim_end();
    stdout::write(head);
    stdout::write(",\n  \"shards\": [");
    let job_id = summary.job_id.get();
    let mut first = true;
    shards(client, job_id, 0, |row| {
        element(&mut first, &serde_json::to_string(&row).unwrap_or_default());
    })
    .await?;
    stdout::write(if first { "],\n" } else { "\n  ],\n" });
    stdout::write("  \"items\": [");
    let mut first = true;
    if shown != ItemsShown::None {
        items(client, job_id, filter(shown), 0, &summary.workload, |row| {
            element(&mut first, &serde_json::to_string(&row).unwrap_or_default());
        })
        .await?;
    }
    stdout::write(if first { "]\n}\n" } else { "\n  ]\n}\n" });
    Ok(())
}

fn element(first: &mut bool, json: &str) {
    stdout::write(if *first { "\n    " } else { ",\n    " });
    stdout::write(json);
    *first = false;
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header(header);
    table
}

async fn print_human(
    client: &mut Client,
    record: &JobRecord,
    summary: &JobSummary,
    shown: Option<ItemsShown>,
) -> Result<(), CliError> {
    outln!(
        "job {}  {}  {}  strategy {} {}  {} shards  {} items ({} ok, {} failed, {} unfinished)",
        summary.job_id,
        summary.state,
        summary.workload,
        summary.strategy,
        concur_core::pacing::describe_recorded(summary.concurrency),
        record.shards_total,
        summary.items_total,
        summary.items_ok,
        summary.items_failed,
        summary.items_unfinished,
    );
    outln!("{}", crate::output::summary_table(summary));
    let mut rows = table(&[
        "shard",
        "worker",
        "host",
        "pid",
        "attempt",
        "items",
        "conc.",
        "queue",
        "run",
        "cpu",
        "task par.",
        "CPU util.",
        "note",
    ]);
    let job_id = summary.job_id.get();
    // An auto job's limit over time needs every shard; one pass reads them and fills the
    // table with the first ones.
    let auto = summary.concurrency == 0;
    let (mut limits, mut listed) = (Vec::new(), 0u32);
    shards(client, job_id, if auto { 0 } else { SHARDS_SHOWN }, |s| {
        if auto && s.concurrency > 0 {
            limits.push((s.start_s, s.concurrency));
        }
        if listed == SHARDS_SHOWN {
            return;
        }
        listed += 1;
        let note = s.error.clone().unwrap_or_else(|| {
            if s.done {
                String::new()
            } else {
                "not done".into()
            }
        });
        rows.add_row(vec![
            s.shard_id.to_string(),
            s.worker_id.to_string(),
            s.host.clone(),
            s.pid.to_string(),
            s.attempt.to_string(),
            s.items.to_string(),
            s.concurrency.to_string(),
            format!("{:.3} s", s.queue_s),
            format!("{:.3} s", s.run_s),
            format!("{:.3} s", s.cpu_s),
            format!("{:.2}", s.task_parallelism),
            format!("{:.0}%", s.cpu_utilisation * 100.0),
            note,
        ]);
    })
    .await?;
    if let Some(line) = limit_over_time(limits) {
        outln!("{line}");
    }
    outln!("{rows}");
    if record.shards_total > SHARDS_SHOWN {
        outln!(
            "({} more shards not shown; --output json lists them all)",
            record.shards_total - SHARDS_SHOWN
        );
    }
    // Exec items have a status (exit code) and bytes (stdout) too.
    let is_fetch = matches!(summary.workload.as_str(), "fetch" | "exec");
    match shown {
        Some(ItemsShown::None) => {}
        Some(shown) => {
            let mut count = 0u64;
            items(
                client,
                job_id,
                filter(shown),
                0,
                &summary.workload,
                |item| {
                    outln!("{}", item_line(&item, is_fetch));
                    count += 1;
                },
            )
            .await?;
            outln!("({count} items)");
        }
        None if summary.items_total <= SMALL_JOB => {
            let mut rows = item_table(is_fetch);
            items(
                client,
                job_id,
                pb::ItemFilter::All,
                0,
                &summary.workload,
                |item| {
                    rows.add_row(item_cells(&item, is_fetch));
                },
            )
            .await?;
            outln!("{rows}");
        }
        None => {
            let mut rows = item_table(is_fetch);
            items(
                client,
                job_id,
                pb::ItemFilter::All,
                SAMPLE,
                &summary.workload,
                |item| {
                    rows.add_row(item_cells(&item, is_fetch));
                },
            )
            .await?;
            outln!("first {SAMPLE} items:\n{rows}");
            if summary.items_failed > 0 {
                let mut rows = item_table(is_fetch);
                items(
                    client,
                    job_id,
                    pb::ItemFilter::Failed,
                    FAILURES_SHOWN,
                    &summary.workload,
                    |item| {
                        rows.add_row(item_cells(&item, is_fetch));
                    },
                )
                .await?;
                outln!("failed items (first {FAILURES_SHOWN}):\n{rows}");
            }
            outln!(
                "({} items; --items failed|ok|unfinished|all lists them one per line, --output json lists everything)",
                summary.items_total
            );
        }
    }
    Ok(())
}

/// Points of the tuned limit shown at most.
const LIMIT_POINTS: usize = 12;

/// `tuned limit over time (shard start: limit): 0.00 s: 6, 0.41 s: 17, …` from the shards'
/// (start, limit) pairs, evenly sampled; `None` without any.
fn limit_over_time(mut limits: Vec<(f64, u32)>) -> Option<String> {
    if limits.is_empty() {
        return None;
    }
    limits.sort_by(|a, b| a.0.total_cmp(&b.0));
    let step = limits.len().div_ceil(LIMIT_POINTS);
    let points: Vec<String> = limits
        .iter()
        .step_by(step)
        .map(|(start, limit)| format!("{start:.2} s: {limit}"))
        .collect();
    Some(format!(
        "tuned limit over time (shard start: its mean limit; {} shards): {}",
        limits.len(),
        points.join(", ")
    ))
}

fn item_table(is_fetch: bool) -> Table {
    table(if is_fetch {
        &["input", "ok", "duration", "status", "bytes", "error"]
    } else {
        &["n", "ok", "duration", "sum of squares", "error"]
    })
}

fn item_cells(item: &ItemRow, is_fetch: bool) -> Vec<String> {
    let mut row = vec![
        item.input.clone(),
        if item.ok { "yes" } else { "NO" }.to_string(),
        format!("{:.4} s", item.duration_s),
    ];
    if is_fetch {
        row.push(item.status.unwrap_or(0).to_string());
        row.push(item.bytes.unwrap_or(0).to_string());
    } else {
        row.push(item.value.clone().unwrap_or_default());
    }
    row.push(item.error.clone().unwrap_or_default());
    row
}

/// One item on one line, for long listings that a table would hold in memory.
fn item_line(item: &ItemRow, is_fetch: bool) -> String {
    let detail = if is_fetch {
        format!("{} {}B", item.status.unwrap_or(0), item.bytes.unwrap_or(0))
    } else {
        item.value.clone().unwrap_or_default()
    };
    let mark = if item.ok { "ok" } else { "NO" };
    let error = item.error.as_deref().unwrap_or_default();
    format!(
        "{mark}  {:>10.4} s  {detail:<14}  {}  {error}",
        item.duration_s, item.input
    )
    .trim_end()
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_over_time_is_sampled_in_start_order() {
        assert_eq!(limit_over_time(Vec::new()), None);
        let line = limit_over_time(vec![(0.5, 9), (0.0, 4), (1.0, 17)]).unwrap();
        assert!(line.ends_with("0.00 s: 4, 0.50 s: 9, 1.00 s: 17"), "{line}");
        let many: Vec<(f64, u32)> = (0..100).map(|i| (f64::from(i), i as u32 + 1)).collect();
        let line = limit_over_time(many).unwrap();
        assert!(line.contains("100 shards"), "{line}");
        assert_eq!(line.matches(" s: ").count(), LIMIT_POINTS, "{line}");
    }
}
