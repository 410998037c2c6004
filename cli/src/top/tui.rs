//! `top` on a terminal: the view redrawn in place every interval with ratatui, until `q`,
//! Esc or Ctrl-C. The terminal is restored on every way out: quitting, an error (a guard's
//! drop) and a panic (ratatui's hook).

use super::model::{self, Poll, View, duration};
use super::plain::bar;
use crate::client::Client;
use crate::exit::CliError;
use ratatui::Frame;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Paragraph, Row, Table};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// What the key reader tells the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    Quit,
    /// The terminal was resized: draw again now.
    Redraw,
}

/// Restores the terminal when dropped, so an early `?` return does not leave it raw.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

fn quits(key: &KeyEvent) -> bool {
    key.kind == KeyEventKind::Press
        && match key.code {
            KeyCode::Char('q') | KeyCode::Esc => true,
            // Raw mode turns Ctrl-C into a key, not a signal.
            KeyCode::Char('c') => key.modifiers.contains(KeyModifiers::CONTROL),
            _ => false,
        }
}

/// Reads keys on a plain thread (crossterm's reads block) until `stop` is set or a quit key.
fn read_keys(sender: mpsc::Sender<Input>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        if !event::poll(Duration::from_millis(100)).unwrap_or(false) {
            continue;
        }
        let input = match event::read() {
            Ok(Event::Key(key)) if quits(&key) => Input::Quit,
            Ok(Event::Resize(..)) => Input::Redraw,
            Ok(_) => continue,
            Err(_) => Input::Quit,
        };
        if sender.blocking_send(input).is_err() || input == Input::Quit {
            return;
        }
    }
}

/// Runs the live view until the user quits.
///
/// # Errors
/// The terminal cannot be set up or drawn on.
pub(crate) async fn run(
    client: &mut Client,
    url: &str,
    interval: Duration,
    limit: u32,
) -> Result<(), CliError> {
    let mut terminal = ratatui::try_init().map_err(anyhow::Error::from)?;
    let _restore = Restore;
    let (sender, mut inputs) = mpsc::channel(8);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || read_keys(sender, stop))
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous: Option<Poll> = None;
    let mut view = model::view(url, None, &Poll::default());
    let mut problem: Option<String> = None;
    let result = loop {
        tokio::select! {
            _ = ticker.tick() => {
                // A failed poll is shown, not fatal: the coordinator may be restarting.
                match super::poll(client, limit).await {
                    Ok(now) => {
                        view = model::view(url, previous.as_ref(), &now);
                        previous = Some(now);
                        problem = None;
                    }
                    Err(e) => problem = Some(e.to_string()),
                }
            }
            input = inputs.recv() => {
                if input != Some(Input::Redraw) {
                    break Ok(());
                }
            }
            _ = tokio::signal::ctrl_c() => break Ok(()),
        }
        if let Err(e) = terminal.draw(|frame| draw(frame, &view, interval, problem.as_deref())) {
            break Err(CliError::Other(e.into()));
        }
    };
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    result
}

fn draw(frame: &mut Frame, view: &View, interval: Duration, problem: Option<&str>) {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let worker_rows = u16::try_from(view.workers.len()).unwrap_or(u16::MAX);
    let [head, workers_area, jobs_area] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(worker_rows.saturating_add(3).min(frame.area().height / 2)),
        Constraint::Min(4),
    ])
    .areas(frame.area());
    let status = problem.map_or_else(
        || {
            format!(
                "{} workers, {} of {} jobs; every {}",
                view.workers.len(),
                view.jobs.len(),
                view.jobs_matched,
                humantime::format_duration(interval)
            )
        },
        |p| format!("poll failed: {p}"),
    );
    frame.render_widget(
        Paragraph::new(format!(
            "concur top — {} — {status}\nq, Esc or Ctrl-C quits",
            view.coordinator
        )),
        head,
    );
    let workers = Table::new(
        view.workers.iter().map(|w| {
            Row::new(vec![
                w.worker_id.to_string(),
                w.process.clone(),
                w.slots.to_string(),
                w.running.to_string(),
                w.state.clone(),
                w.shards_done.to_string(),
                format!("{:.1} s ago", w.last_heartbeat_s),
            ])
        }),
        [
            Constraint::Length(7),
            Constraint::Min(16),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(10),
            Constraint::Length(12),
            Constraint::Length(15),
        ],
    )
    .header(
        Row::new([
            "worker",
            "host:pid",
            "slots",
            "running",
            "state",
            "shards done",
            "heartbeat",
        ])
        .style(bold),
    )
    .block(Block::bordered().title(" workers "));
    frame.render_widget(workers, workers_area);
    let jobs = Table::new(
        view.jobs.iter().map(|j| {
            Row::new(vec![
                j.job_id.to_string(),
                j.state.clone(),
                j.what.clone(),
                format!("{} {:>3.0}%", bar(j.fraction(), 20), j.fraction() * 100.0),
                format!("{}/{}", j.items_done, j.items_total),
                j.items_failed.to_string(),
                j.rate.map_or_else(|| "-".into(), |r| format!("{r:.1}/s")),
                duration(j.eta_s),
                j.label.clone(),
            ])
            .style(if j.active() { bold } else { Style::default() })
        }),
        [
            Constraint::Length(6),
            Constraint::Length(10),
            Constraint::Length(24),
            Constraint::Length(27),
            Constraint::Length(16),
            Constraint::Length(7),
            Constraint::Length(10),
            Constraint::Length(7),
            Constraint::Min(8),
        ],
    )
    .header(
        Row::new([
            "job", "state", "workload", "progress", "done", "failed", "rate", "ETA", "label",
        ])
        .style(bold),
    )
    .block(Block::bordered().title(" jobs (newest first) "));
    frame.render_widget(jobs, jobs_area);
}
