//! The views' reads, answered together. A handler queues its read for one of a few reader tasks
//! of its view; a reader takes every read queued while its previous query ran and answers the
//! distinct ones with one query (see each [`View`]). On an idle service each read is a query of
//! its own, as before; under load PostgreSQL parses, plans and answers once per batch, the
//! service sends and receives once per batch instead of once per read, and identical reads
//! (every back-office screen polling the first page of the shipping dashboard) are read and
//! serialized once.
//!
//! Read-your-writes holds: a handler queues its read after its wait ended, and the query that
//! answers it starts after a reader took it from the queue, so it sees every commit the wait saw.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use platform::db::connections::Connections;
use platform::problem::Problem;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Reader tasks per view: each holds a connection while its query runs, so fewer readers make
/// larger batches and leave the pool's other connections to the other views.
const READERS: usize = 4;

/// The most reads one query answers.
const MOST_PER_QUERY: usize = 128;

/// A view whose reads can be answered together.
pub trait View: Send + Sync + 'static {
    /// What one read asks for.
    type Key: Eq + Hash + Clone + Send + Sync + 'static;
    /// What it gets: cheap to clone, as every read of the same key gets one.
    type Answer: Clone + Send + 'static;

    /// The answers to `keys` (distinct), in one query where the view allows; a key the view has
    /// no answer for is absent.
    fn read(
        db: &Connections,
        keys: Vec<Self::Key>,
    ) -> impl Future<Output = Result<HashMap<Self::Key, Self::Answer>, Problem>> + Send;
}

type Answered<V> = Result<Option<<V as View>::Answer>, Problem>;

/// A queued read.
struct Read<V: View> {
    key: V::Key,
    answer: oneshot::Sender<Answered<V>>,
}

/// Queues reads of `V` for its reader tasks; cheap to clone.
pub struct Batched<V: View>(mpsc::Sender<Read<V>>);

impl<V: View> Clone for Batched<V> {
    fn clone(&self) -> Self {
        Batched(self.0.clone())
    }
}

impl<V: View> std::fmt::Debug for Batched<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Batched")
            .field(&std::any::type_name::<V>())
            .finish()
    }
}

impl<V: View> Batched<V> {
    /// Starts the reader tasks, which read from `db` and end when the last handle is dropped.
    pub fn start(db: &Connections) -> Batched<V> {
        let (queue, queued) = mpsc::channel(READERS * MOST_PER_QUERY);
        let queued = Arc::new(Mutex::new(queued));
        for _ in 0..READERS {
            tokio::spawn(reader::<V>(db.clone(), queued.clone()));
        }
        Batched(queue)
    }

    /// The answer to `key`, `None` if the view has none.
    pub async fn read(&self, key: V::Key) -> Answered<V> {
        let (answer, answered) = oneshot::channel();
        let stopped = || Problem::unexpected(&anyhow::anyhow!("the view's readers stopped"));
        self.0
            .send(Read { key, answer })
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }

    /// The answer to `key`, for a view that answers every read.
    pub async fn answer(&self, key: V::Key) -> Result<V::Answer, Problem> {
        self.read(key).await?.ok_or_else(|| {
            Problem::unexpected(&anyhow::anyhow!(
                "{} gave no answer",
                std::any::type_name::<V>()
            ))
        })
    }
}

/// Answers queued reads, all that are waiting at once, until every [`Batched`] is dropped.
async fn reader<V: View>(db: Connections, queued: Arc<Mutex<mpsc::Receiver<Read<V>>>>) {
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
        batch.retain(|read: &Read<V>| !read.answer.is_closed());
        if batch.is_empty() {
            continue;
        }
        let mut seen = HashSet::with_capacity(batch.len());
        let keys: Vec<V::Key> = batch
            .iter()
            .filter(|read| seen.insert(&read.key))
            .map(|read| read.key.clone())
            .collect();
        match V::read(&db, keys).await {
            Ok(found) => {
                for read in batch.drain(..) {
                    let _gone = read.answer.send(Ok(found.get(&read.key).cloned()));
                }
            }
            Err(problem) => {
                for read in batch.drain(..) {
                    let _gone = read.answer.send(Err(problem.clone()));
                }
            }
        }
    }
}
