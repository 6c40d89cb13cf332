//! Secrets stay out of the logs: a database password, whether in the URL's user part or in a
//! query parameter, never appears in what a service prints while it waits for the database.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::binary;

#[test]
fn a_database_password_never_reaches_the_log() {
    for url in [
        "postgres://orders:s3cret@127.0.0.1:1/orders",
        "postgres://orders@127.0.0.1:1/orders?sslmode=disable&password=s3cret",
    ] {
        let mut service = Command::new(binary("command-service"))
            .env_clear()
            .env("DATABASE_URL", url)
            .env("HTTP_ADDR", "127.0.0.1:0")
            .env("AUTH_MODE", "disabled")
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the command service (built by scripts/test)");
        let stdout = service.stdout.take().expect("piped");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut waited = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("a log line");
            if line.contains("database not ready") {
                waited.push(line);
            }
            if waited.len() == 2 || Instant::now() > deadline {
                break;
            }
        }
        let _ = service.kill();
        let _ = service.wait();
        assert_eq!(waited.len(), 2, "no 'database not ready' lines for {url}");
        for line in waited {
            assert!(!line.contains("s3cret"), "{line}");
            assert!(
                line.contains("127.0.0.1:1"),
                "the log should still name the server: {line}"
            );
        }
    }
}
