//! What the report says about where it ran: the machine, the software, the durability settings,
//! and what each process used (CPU seconds, peak resident memory) from `/proc`.

use std::process::Command;

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds of all processes named `postgres` (the server and its backends).
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(cpu_seconds)
        .sum()
}

/// CPU used by a service (and by PostgreSQL) from when it was started.
#[derive(Debug)]
pub struct CpuMeter {
    service: Option<u32>,
    service_before: f64,
    postgres_before: f64,
}

impl CpuMeter {
    /// Starts measuring `service` (its pid, if known) and PostgreSQL.
    pub fn start(service: Option<u32>) -> CpuMeter {
        CpuMeter {
            service,
            service_before: service.and_then(cpu_seconds).unwrap_or(0.0),
            postgres_before: postgres_cpu_seconds(),
        }
    }

    /// Microseconds of CPU per request of `requests` since the start, for the service and
    /// PostgreSQL, as text (`n/a` without the service's pid or without requests).
    pub fn micros_per(&self, requests: u64) -> (String, String) {
        if requests == 0 {
            return ("n/a".into(), "n/a".into());
        }
        let per = |seconds: f64| format!("{:.0}", seconds * 1e6 / requests as f64);
        let service = self
            .service
            .and_then(cpu_seconds)
            .map_or("n/a".into(), |now| per(now - self.service_before));
        (service, per(postgres_cpu_seconds() - self.postgres_before))
    }
}

/// Peak resident memory of a process in MiB (`VmHWM`).
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// The `pid` in environment variable `name`, if set.
pub fn pid(name: &str) -> Option<u32> {
    std::env::var(name).ok()?.parse().ok()
}

fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Lines describing the machine and software, for the report.
pub fn description(database_url: &str) -> Vec<(String, String)> {
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or("?".into(), |kib| {
            format!("{:.1} GiB", kib / 1024.0 / 1024.0)
        });
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let psql = |sql: &str| output("psql", &["-X", "-At", "-d", database_url, "-c", sql]);
    vec![
        (
            "CPU".into(),
            format!("{} cores, {cpu}", output("nproc", &[])),
        ),
        ("memory".into(), memory),
        ("kernel".into(), output("uname", &["-sr"])),
        ("PostgreSQL".into(), psql("SHOW server_version")),
        (
            "durability".into(),
            format!(
                "synchronous_commit={}, fsync={}, full_page_writes={}",
                psql("SHOW synchronous_commit"),
                psql("SHOW fsync"),
                psql("SHOW full_page_writes")
            ),
        ),
        (
            "broker".into(),
            format!(
                "Apache Kafka {}, single-node KRaft, log on local disk flushed by the OS \
                 (Kafka's default: no log.flush.* settings); relay producer idempotent, \
                 acks=all, one replica",
                std::env::var("APACHE_KAFKA_VERSION")
                    .unwrap_or_else(|_| "(unknown version)".into())
            ),
        ),
        ("Rust".into(), output("rustc", &["--version"])),
        (
            "build".into(),
            "release profile (codegen-units 4, thin LTO)".into(),
        ),
    ]
}
