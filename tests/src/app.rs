//! The services under test: both started in-process on random ports against a fresh pair of
//! databases and a fresh topic, with request helpers and direct looks at their databases.

use std::sync::Once;
use std::time::Duration;

use platform::config::DatabaseUrl;
use platform::db::DbSettings;
use platform::kafka::KafkaSettings;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use shared_events::EventEnvelope;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

mod process;

pub use process::{ServiceProcess, binary};

use crate::assertions::created_id;
use crate::fixtures::order_body;
use crate::tokens::{client_as, edge_settings, token};
use crate::{EVENTUALLY, wait_for};

/// A running service: its URL and how to stop it.
#[derive(Debug)]
pub struct Running {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops the service abruptly, as a crash would: its tasks are dropped mid-work and its
    /// connections closed without any goodbye.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// Stops the service gracefully and waits for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let outcome = self.task.await.expect("service task panicked");
        outcome.expect("service ended with an error");
    }
}

/// Both services on their own databases and topic.
#[derive(Debug)]
pub struct TestApp {
    /// The command service.
    pub command: Running,
    /// The query service.
    pub query: Running,
    /// The write database.
    pub command_db: PgPool,
    /// The read database.
    pub query_db: PgPool,
    /// This test's topic.
    pub topic: String,
    /// This test's consumer group.
    pub group: String,
    /// HTTP client.
    pub http: reqwest::Client,
    names: Names,
}

#[derive(Debug, Clone)]
struct Names {
    server: DatabaseUrl,
    brokers: String,
    command_db: String,
    query_db: String,
    edge: platform::http::EdgeSettings,
}

fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_test_writer()
                .init();
        }
    });
}

impl TestApp {
    /// Starts both services on fresh databases and a fresh topic, and waits until both are
    /// ready.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    /// [`TestApp::spawn`], with both services' edge settings changed by `configure`.
    pub async fn spawn_with(configure: impl Fn(&mut platform::http::EdgeSettings)) -> TestApp {
        init_logs();
        let unique = Uuid::now_v7().simple().to_string();
        let server: DatabaseUrl = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
            .parse()
            .expect("DATABASE_URL must be a postgres:// URL");
        let mut edge = edge_settings();
        configure(&mut edge);
        let names = Names {
            server,
            brokers: std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into()),
            command_db: format!("e2e_cmd_{unique}"),
            query_db: format!("e2e_qry_{unique}"),
            edge,
        };
        let topic = format!("e2e-{unique}");
        let group = format!("e2e-{unique}");
        let command = start_command_service(&names, &topic).await;
        let query = start_query_service(&names, &topic, &group).await;
        let app = TestApp {
            command_db: connect(&db_settings(&names, &names.command_db)).await,
            query_db: connect(&query_config(&names, &topic, &group).db).await,
            command,
            query,
            topic,
            group,
            http: client_as(&token("admin", "e2e-admin")),
            names,
        };
        app.wait_until_ready(&app.command.url).await;
        app.wait_until_ready(&app.query.url).await;
        app
    }

    async fn wait_until_ready(&self, url: &str) {
        let readyz = format!("{url}/readyz");
        wait_for(&format!("{readyz} to answer 200"), || async {
            let response = self.http.get(&readyz).send().await.ok()?;
            response.status().is_success().then_some(())
        })
        .await;
    }

    /// Starts a query service from `config` (see [`TestApp::query_config`]).
    pub async fn spawn_query_service_with(&self, config: query_service::Config) -> Running {
        let running = start_query_service_from(config).await;
        self.wait_until_ready(&running.url).await;
        running
    }

    /// Starts another query service on the same read database and topic, in `group`.
    pub async fn spawn_query_service(&self, group: &str) -> Running {
        let running = start_query_service(&self.names, &self.topic, group).await;
        self.wait_until_ready(&running.url).await;
        running
    }

    /// Stops the query service gracefully and starts a fresh instance in consumer group `group`
    /// on the same read database. A new group starts from the beginning of the topic.
    pub async fn restart_query_service_in(&mut self, group: &str) {
        let fresh = self.spawn_query_service(group).await;
        std::mem::replace(&mut self.query, fresh).stop().await;
    }

    /// Tells the active relay that events were appended (what the command service does after a
    /// commit).
    pub async fn notify_relay(&self) {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(command_service::relay::CHANNEL)
            .execute(&self.command_db)
            .await
            .expect("notify the relay");
    }

    /// Waits until the views applied the last version of every aggregate in the event log.
    pub async fn wait_until_views_caught_up(&self) {
        wait_for("the views to apply every event of the log", || async {
            let logged: Vec<(Uuid, i64)> = sqlx::query_as(
                "SELECT aggregate_id, max(aggregate_version) FROM event_log GROUP BY aggregate_id ORDER BY aggregate_id",
            )
            .fetch_all(&self.command_db)
            .await
            .ok()?;
            let applied: Vec<(Uuid, i64)> = sqlx::query_as(
                "SELECT aggregate_id, version FROM views.applied_versions ORDER BY aggregate_id",
            )
            .fetch_all(&self.query_db)
            .await
            .ok()?;
            (logged == applied).then_some(())
        })
        .await;
    }

    /// Waits until the relay has published everything in the outbox.
    pub async fn wait_for_empty_outbox(&self) {
        wait_for("the outbox to be empty", || async {
            (self.command_rows("outbox").await == 0).then_some(())
        })
        .await;
    }

    /// `POST {command}/orders` with `body`.
    pub async fn place_order(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/orders", self.command.url))
            .json(body)
            .send()
            .await
            .expect("POST /orders")
    }

    /// Places an order for `customer_id` and returns its id.
    pub async fn place_order_for(&self, customer_id: Uuid) -> Uuid {
        let response = self.place_order(&order_body(customer_id)).await;
        created_id(response, "order_id").await
    }

    /// `POST {command}{path}` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.command.url))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// Registers a customer with a unique email address and returns their id.
    pub async fn register_customer(&self) -> Uuid {
        let email = format!("{}@example.com", Uuid::now_v7().simple());
        let body = serde_json::json!({ "name": "Ada Lovelace", "email": email });
        created_id(self.post("/customers", &body).await, "customer_id").await
    }

    /// Registers a customer the way a shopper does, under the subject of their own customer
    /// token, and returns their id and a client sending that token.
    pub async fn register_customer_with_token(&self) -> (Uuid, reqwest::Client) {
        let id = Uuid::now_v7();
        let http = client_as(&token("customer", &id.to_string()));
        let email = format!("{}@example.com", id.simple());
        let registered = http
            .post(format!("{}/customers", self.command.url))
            .json(&serde_json::json!({ "name": "Grace Hopper", "email": email }))
            .send()
            .await
            .expect("POST /customers");
        assert_eq!(
            created_id(registered, "customer_id").await,
            id,
            "a customer registers under their token's subject"
        );
        (id, http)
    }

    /// The configuration of a query service of this test in consumer group `group`.
    pub fn query_config(&self, group: &str) -> query_service::Config {
        query_config(&self.names, &self.topic, group)
    }

    /// Starts another command service on the same write database and topic.
    pub async fn spawn_command_service(&self) -> Running {
        let running = start_command_service(&self.names, &self.topic).await;
        self.wait_until_ready(&running.url).await;
        running
    }

    /// `GET {query}/orders/{id}`.
    pub async fn get_order(&self, id: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/orders/{id}", self.query.url))
            .send()
            .await
            .expect("GET /orders/{id}")
    }

    /// Waits until the query service shows order `id` and returns its JSON.
    pub async fn wait_for_order(&self, id: Uuid) -> Value {
        wait_for(&format!("order {id} in the query service"), || async {
            let response = self.get_order(&id.to_string()).await;
            if response.status() == 200 {
                response.json().await.ok()
            } else {
                None
            }
        })
        .await
    }

    /// The settings the command service connects to its database with.
    pub fn command_db_settings(&self) -> DbSettings {
        db_settings(&self.names, &self.names.command_db)
    }

    /// Waits until the query service shows customer `id`'s profile.
    pub async fn wait_for_customer(&self, id: Uuid) {
        wait_for(&format!("customer {id}'s profile"), || async {
            let response = self.query(&format!("/customers/{id}")).await;
            (response.status() == 200).then_some(())
        })
        .await;
    }

    /// A producer on the test's broker, for injecting messages.
    pub fn producer(&self) -> FutureProducer {
        KafkaSettings {
            brokers: self.names.brokers.clone(),
            topic: self.topic.clone(),
            properties: Vec::new(),
        }
        .client_config()
        .create()
        .expect("test producer")
    }

    /// Produces `payload` to the test's topic under `key`.
    pub async fn produce(&self, key: &str, payload: &[u8]) {
        self.producer()
            .send(
                FutureRecord::to(&self.topic).key(key).payload(payload),
                Duration::from_secs(10),
            )
            .await
            .expect("produce to the test topic");
    }

    /// Produces envelopes to the test's topic, in order, each under its partition key.
    pub async fn publish(&self, envelopes: &[EventEnvelope]) {
        let producer = self.producer();
        for envelope in envelopes {
            let payload = envelope.to_vec();
            let record = FutureRecord::to(&self.topic)
                .key(&envelope.partition_key)
                .payload(&payload);
            producer
                .send(record, Duration::from_secs(10))
                .await
                .expect("produce to the test topic");
        }
    }

    /// `GET {query}{path}`.
    pub async fn query(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.query.url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `GET {query}{path}` as JSON, after checking it is a 200.
    pub async fn query_json(&self, path: &str) -> Value {
        let response = self.query(path).await;
        let status = response.status();
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Reads the test's topic from the beginning until `count` messages were seen.
    pub async fn read_topic(&self, count: usize) -> Vec<OwnedMessage> {
        self.read_topic_named(&self.topic.clone(), count).await
    }

    /// Reads `topic` from the beginning until `count` messages were seen.
    pub async fn read_topic_named(&self, topic: &str, count: usize) -> Vec<OwnedMessage> {
        let consumer: StreamConsumer = KafkaSettings {
            brokers: self.names.brokers.clone(),
            topic: topic.to_owned(),
            properties: Vec::new(),
        }
        .client_config()
        .set("group.id", format!("reader-{}", Uuid::now_v7()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("test consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let mut messages = Vec::new();
        while messages.len() < count {
            let message = tokio::time::timeout(EVENTUALLY, consumer.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("only {} of {count} messages on the topic", messages.len())
                })
                .expect("consume");
            messages.push(message.detach());
        }
        messages
    }

    /// Number of rows of `table` in the write database.
    pub async fn command_rows(&self, table: &str) -> i64 {
        count_rows(&self.command_db, table).await
    }

    /// Every order detail document, by id, as stored.
    pub async fn order_views(&self) -> Vec<(Uuid, i64, String)> {
        sqlx::query_as("SELECT order_id, version, body::text FROM order_detail ORDER BY order_id")
            .fetch_all(&self.query_db)
            .await
            .expect("read order_detail")
    }
}

async fn count_rows(pool: &PgPool, table: &str) -> i64 {
    let sql = format!(
        "SELECT count(*) FROM {}",
        table.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "")
    );
    sqlx::query_scalar(&sql)
        .fetch_one(pool)
        .await
        .expect("count rows")
}

async fn connect(settings: &DbSettings) -> PgPool {
    platform::db::connect(settings)
        .await
        .expect("connect to a test database")
}

fn db_settings(names: &Names, database: &str) -> DbSettings {
    DbSettings {
        url: names.server.with_database(database),
        max_connections: 5,
        min_connections: 5,
        statement_timeout: Duration::from_secs(10),
        acquire_timeout: Duration::from_secs(10),
        search_path: None,
        synchronous_commit: true,
    }
}

fn kafka(names: &Names, topic: &str) -> KafkaSettings {
    KafkaSettings {
        brokers: names.brokers.clone(),
        topic: topic.to_owned(),
        properties: Vec::new(),
    }
}

/// The test command services' relays vacuum the outbox after this many published events.
pub const VACUUM_EVERY: u64 = 20;

async fn start_command_service(names: &Names, topic: &str) -> Running {
    let config = command_service::Config {
        http_addr: ([127, 0, 0, 1], 0).into(),
        edge: names.edge.clone(),
        db: db_settings(names, &names.command_db),
        kafka: kafka(names, topic),
        topic_partitions: 3,
        topic_replication: 1,
        producer_linger: Duration::from_millis(1),
        idempotency_ttl: Duration::from_secs(3600),
        relay: command_service::relay::RelaySettings {
            batch_size: 100,
            poll_interval: Duration::from_millis(200),
            vacuum_every: VACUUM_EVERY,
        },
    };
    let shutdown = CancellationToken::new();
    let app = command_service::Application::build(config, shutdown.clone())
        .await
        .expect("build the command service");
    let url = format!("http://127.0.0.1:{}", app.port());
    Running {
        url,
        shutdown,
        task: tokio::spawn(app.run_until_stopped()),
    }
}

fn query_config(names: &Names, topic: &str, group: &str) -> query_service::Config {
    query_service::Config {
        http_addr: ([127, 0, 0, 1], 0).into(),
        edge: names.edge.clone(),
        db: DbSettings {
            search_path: Some(query_service::config::VIEWS_SEARCH_PATH.into()),
            ..db_settings(names, &names.query_db)
        },
        kafka: kafka(names, topic),
        consumer: query_service::consumer::ConsumerSettings {
            group_id: group.to_owned(),
            batch_size: 100,
            batch_wait: Duration::from_millis(5),
            fetch_wait: Duration::from_millis(50),
            lanes: 2,
            dead_letter_topic: format!("{topic}.dead-letters"),
        },
        topic_replication: 1,
        ready_max_lag: 10_000,
        consistency_wait: Duration::from_secs(2),
        stream_ticket_lifetime: Duration::from_secs(60),
        streams_per_client: 32,
    }
}

async fn start_query_service(names: &Names, topic: &str, group: &str) -> Running {
    start_query_service_from(query_config(names, topic, group)).await
}

async fn start_query_service_from(config: query_service::Config) -> Running {
    let shutdown = CancellationToken::new();
    let app = query_service::Application::build(config, shutdown.clone())
        .await
        .expect("build the query service");
    let url = format!("http://127.0.0.1:{}", app.port());
    Running {
        url,
        shutdown,
        task: tokio::spawn(app.run_until_stopped()),
    }
}
