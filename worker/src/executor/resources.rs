//! What a slot keeps from one shard to the next: its event loop, its I/O runtime and its HTTP
//! clients. Consecutive shards of a fetch job then reuse warm connections instead of opening
//! new ones for every shard, and no runtime is built per shard.

use super::HttpConfig;
use super::fetch::{BlockingClient, Fetcher, IoRuntime, async_client};
use super::lane::Lane;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// Idle connections older than this are closed rather than reused, as reqwest's pool does.
const IDLE_CONNECTIONS_KEPT: Duration = Duration::from_secs(90);

/// A slot's runtimes and clients, made on first use.
#[derive(Debug)]
pub struct SlotResources {
    /// Threads a shard may start at most (also bounds the event loop's blocking pool).
    pub(super) max_threads: u32,
    event_loop: Option<Runtime>,
    io: Option<IoRuntime>,
    async_client: Option<(HttpConfig, Fetcher)>,
    blocking_clients: Option<(HttpConfig, Vec<BlockingClient>)>,
    /// The async strategies' lanes, with the config their connections were opened under and
    /// when they were last put back.
    lanes: Option<(HttpConfig, Vec<Lane>, Instant)>,
    /// The rayon strategy's pool and its thread count: starting threads per shard cost more
    /// than a small shard's work.
    rayon: Option<(u32, rayon::ThreadPool)>,
}

impl SlotResources {
    /// Nothing made yet; shards start at most `max_threads` threads.
    pub fn new(max_threads: u32) -> Self {
        Self {
            max_threads: max_threads.max(1),
            event_loop: None,
            io: None,
            async_client: None,
            blocking_clients: None,
            lanes: None,
            rayon: None,
        }
    }

    /// A rayon pool of `threads` threads, kept while consecutive shards ask for that many.
    ///
    /// # Errors
    /// The pool's threads cannot be started.
    pub(super) fn rayon_pool(&mut self, threads: u32) -> Result<&rayon::ThreadPool, String> {
        if self.rayon.as_ref().is_none_or(|(n, _)| *n != threads) {
            // The old pool's threads end once it is dropped here.
            self.rayon = None;
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads as usize)
                .thread_name(|i| format!("concur-rayon-{i}"))
                .build()
                .map_err(|e| format!("cannot build rayon pool: {e}"))?;
            self.rayon = Some((threads, pool));
        }
        Ok(&self.rayon.as_ref().expect("made above").1)
    }

    /// At least `n` lanes for `http`, with the connections the previous shard left open if it
    /// ran under the same config (host rules decide which connections may exist at all) and
    /// ended recently. Give them back with [`SlotResources::keep_lanes`].
    pub(super) fn take_lanes(&mut self, http: &HttpConfig, n: usize) -> Vec<Lane> {
        let mut lanes = match self.lanes.take() {
            Some((cached, lanes, since))
                if cached == *http && since.elapsed() < IDLE_CONNECTIONS_KEPT =>
            {
                lanes
            }
            _ => Vec::new(),
        };
        if lanes.len() < n {
            lanes.resize_with(n, Lane::default);
        }
        lanes
    }

    /// Keeps `lanes` (and their open connections) for the next shard.
    pub(super) fn keep_lanes(&mut self, http: &HttpConfig, lanes: Vec<Lane>) {
        self.lanes = Some((http.clone(), lanes, Instant::now()));
    }

    /// The slot's event loop: one single-threaded runtime (CPU work it moves off goes to a
    /// blocking pool of at most `max_threads`).
    ///
    /// # Errors
    /// The runtime cannot be built.
    pub(super) fn event_loop(&mut self) -> Result<&Runtime, String> {
        if self.event_loop.is_none() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .max_blocking_threads(self.max_threads as usize)
                .build()
                .map_err(|e| format!("cannot build async runtime: {e}"))?;
            self.event_loop = Some(runtime);
        }
        Ok(self.event_loop.as_ref().expect("made above"))
    }

    /// The shared async client for `http` (its connections live on the event loop).
    ///
    /// # Errors
    /// The TLS backend cannot be initialised.
    pub(super) fn async_client(&mut self, http: &HttpConfig) -> Result<Fetcher, String> {
        if let Some((cached, client)) = &self.async_client
            && cached == http
        {
            return Ok(client.clone());
        }
        let client = async_client(http)?;
        self.async_client = Some((http.clone(), client.clone()));
        Ok(client)
    }

    /// `n` blocking clients for `http`, one per thread, each with its own connection pool.
    ///
    /// # Errors
    /// The I/O runtime cannot be built or the TLS backend initialised.
    pub(super) fn blocking_clients(
        &mut self,
        http: &HttpConfig,
        n: usize,
    ) -> Result<Vec<BlockingClient>, String> {
        if self.io.is_none() {
            self.io = Some(IoRuntime::new(crate::system::cores() as usize)?);
        }
        let io = self.io.as_ref().expect("made above");
        let clients = match &mut self.blocking_clients {
            Some((cached, clients)) if cached == http => clients,
            slot => &mut slot.insert((http.clone(), Vec::new())).1,
        };
        while clients.len() < n {
            clients.push(io.client(http)?);
        }
        Ok(clients[..n].to_vec())
    }
}
