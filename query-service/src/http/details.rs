//! The order detail reads of `GET /orders/{id}`, answered together. A handler queues its read
//! for one of a few reader tasks; a reader takes every read queued while its previous query ran
//! and answers them with one `order_id = ANY($1)` query. On an idle service each read is a query
//! of its own, as before; under load PostgreSQL parses, plans and answers once per batch, and
//! the service sends and receives once per batch instead of once per read.
//!
//! Read-your-writes holds: a handler queues its read after its wait ended, and the query that
//! answers it starts after a reader took it from the queue, so it sees every commit the wait saw.

use std::sync::Arc;

use platform::db::connections::Connections;
use platform::problem::Problem;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::projections::order_detail;

/// Reader tasks: each holds a connection while its query runs, so fewer readers make larger
/// batches and leave the pool's other connections to the other views.
const READERS: usize = 4;

/// The most reads one query answers.
const MOST_PER_QUERY: usize = 128;

/// The customer and the stored document of an order, if the view has it.
type Answer = Result<Option<(Uuid, String)>, Problem>;

/// A queued read.
struct Read {
    order_id: Uuid,
    answer: oneshot::Sender<Answer>,
}

/// Queues order detail reads for the reader tasks; cheap to clone.
#[derive(Debug, Clone)]
pub struct DetailReads(mpsc::Sender<Read>);

impl DetailReads {
    /// Starts the reader tasks, which read from `reads` and end when the last handle is dropped.
    pub fn start(reads: &Connections) -> DetailReads {
        let (queue, queued) = mpsc::channel(READERS * MOST_PER_QUERY);
        let queued = Arc::new(Mutex::new(queued));
        for _ in 0..READERS {
            tokio::spawn(reader(reads.clone(), queued.clone()));
        }
        DetailReads(queue)
    }

    /// The customer and the stored document (JSON text) of `order_id`.
    pub async fn find(&self, order_id: Uuid) -> Answer {
        let (answer, answered) = oneshot::channel();
        let stopped = || Problem::unexpected(&anyhow::anyhow!("the detail readers stopped"));
        self.0
            .send(Read { order_id, answer })
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// Answers queued reads, all that are waiting at once, until every [`DetailReads`] is dropped.
async fn reader(reads: Connections, queued: Arc<Mutex<mpsc::Receiver<Read>>>) {
    let mut batch = Vec::with_capacity(MOST_PER_QUERY);
    loop {
        if queued
            .lock()
            .await
            .recv_many(&mut batch, MOST_PER_QUERY)
            .await
            == 0
        {
            return;
        }
        // Reads whose client went away need no answer.
        batch.retain(|read| !read.answer.is_closed());
        if batch.is_empty() {
            continue;
        }
        let ids: Vec<Uuid> = batch.iter().map(|read| read.order_id).collect();
        match order_detail::find_many(&reads, &ids).await {
            Ok(found) => {
                for read in batch.drain(..) {
                    let _gone = read.answer.send(Ok(found.get(&read.order_id).cloned()));
                }
            }
            Err(error) => {
                let problem = Problem::from(error);
                for read in batch.drain(..) {
                    let _gone = read.answer.send(Err(problem.clone()));
                }
            }
        }
    }
}
