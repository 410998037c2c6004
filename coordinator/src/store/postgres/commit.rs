//! One write transaction in one round trip: `BEGIN`, the fence, every statement and `COMMIT`
//! are sent together (pipelined) and answered together. A committed shard thus costs one round
//! trip, not one per statement.
//!
//! Why this is still all or nothing: the server aborts a transaction at its first failing
//! statement and then answers the pipelined `COMMIT` by rolling back. The fence fails on the
//! server too (a division by zero when the epoch moved on). What the server never sees is a
//! statement that fails in the client (a parameter that does not encode): that shows on its
//! first poll, before `COMMIT` is sent, and then `ROLLBACK` is sent instead.

use super::conn::PgResult;
use crate::store::StoreError;
use deadpool_postgres::Object;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use tokio_postgres::types::ToSql;

/// A statement's parameter, owned so a whole batch can be built before anything is sent.
pub(super) type Param = Box<dyn ToSql + Sync + Send>;

/// One statement of a write and its parameters.
pub(super) struct Stmt {
    pub(super) sql: &'static str,
    pub(super) params: Vec<Param>,
}

/// Builds a [`Stmt`] from SQL and parameter expressions (each boxed).
macro_rules! stmt {
    ($sql:expr $(, $param:expr)* $(,)?) => {
        $crate::store::postgres::commit::Stmt {
            sql: $sql,
            params: vec![$(Box::new($param) as $crate::store::postgres::commit::Param),*],
        }
    };
}
pub(super) use stmt;

/// Fails (SQLSTATE 22012, division by zero) unless the lease's epoch is `$1`, and share-locks
/// the lease row until the transaction ends (see `leadership`).
const FENCE: &str = "SELECT 1 / count(*)::INT FROM \
    (SELECT 1 FROM leadership WHERE id = 1 AND epoch = $1 FOR SHARE) AS held";

type Answer<'a> = Pin<Box<dyn Future<Output = Result<u64, tokio_postgres::Error>> + 'a>>;

/// Sends `answer`'s request (the driver sends on the first poll) and returns its result if it
/// is already known (a failure in the client).
async fn send(answer: &mut Answer<'_>) -> Option<Result<u64, tokio_postgres::Error>> {
    match futures::poll!(answer.as_mut()) {
        Poll::Ready(result) => Some(result),
        Poll::Pending => None,
    }
}

/// Runs `stmts` in one transaction fenced by `epoch` (`None`: unfenced) and commits it.
/// Nothing of it is stored unless this returns `Ok`.
pub(super) async fn commit(client: Object, epoch: Option<u64>, stmts: &[Stmt]) -> PgResult<()> {
    // Prepare first (cached after the first use): a prepare inside the pipeline would let a
    // later statement overtake it.
    let fence = client.prepare_cached(FENCE).await?;
    let mut prepared = Vec::with_capacity(stmts.len());
    for stmt in stmts {
        prepared.push(client.prepare_cached(stmt.sql).await?);
    }
    let epoch_param = epoch.map(|e| e as i64);
    let mut params: Vec<Vec<&(dyn ToSql + Sync)>> = Vec::with_capacity(stmts.len() + 1);
    let mut statements = Vec::with_capacity(stmts.len() + 1);
    if let Some(epoch) = &epoch_param {
        params.push(vec![epoch]);
        statements.push(&fence);
    }
    for (stmt, statement) in stmts.iter().zip(&prepared) {
        params.push(stmt.params.iter().map(|p| p.as_ref() as _).collect());
        statements.push(statement);
    }
    let mut answers: Vec<Answer<'_>> = Vec::with_capacity(statements.len() + 2);
    answers.push(Box::pin(async {
        client.batch_execute("BEGIN").await.map(|()| 0)
    }));
    for (statement, params) in statements.iter().zip(&params) {
        answers.push(Box::pin(client.execute(*statement, params)));
    }
    let mut results = Vec::with_capacity(answers.len() + 1);
    for answer in &mut answers {
        results.push(send(answer).await);
    }
    let refused_by_client = results.iter().any(|r| matches!(r, Some(Err(_))));
    let end = if refused_by_client {
        "ROLLBACK"
    } else {
        "COMMIT"
    };
    let conn = &client;
    answers.push(Box::pin(async move {
        conn.batch_execute(end).await.map(|()| 0)
    }));
    let last = answers.len() - 1;
    results.push(send(&mut answers[last]).await);
    let mut first_error = None;
    for (answer, result) in answers.iter_mut().zip(results) {
        let result = match result {
            Some(result) => result,
            None => answer.as_mut().await,
        };
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    drop(answers);
    let Some(e) = first_error else {
        return Ok(());
    };
    // The pipelined COMMIT or ROLLBACK ended the transaction unless the connection broke;
    // a broken connection is not handed back to the pool.
    if client.is_closed() {
        drop(Object::take(client));
        return Err(e.into());
    }
    match (epoch, e.code()) {
        (Some(epoch), Some(code)) if code == &tokio_postgres::error::SqlState::DIVISION_BY_ZERO => {
            let current: i64 = client
                .query_one("SELECT epoch FROM leadership WHERE id = 1", &[])
                .await?
                .get(0);
            Err(StoreError::Fenced {
                epoch,
                current: current.max(0) as u64,
            }
            .into())
        }
        _ => Err(e.into()),
    }
}
