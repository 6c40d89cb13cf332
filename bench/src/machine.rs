//! What the report says about where it ran: the machine, the software, the durability settings,
//! and what each process used (CPU seconds, peak resident memory) from `/proc`.

use std::process::Command;

/// The fields of `/proc/<pid>/stat` after the command name (which is in parentheses and may
/// contain spaces): index 1 is the parent's pid, 11–14 utime, stime, cutime, cstime in ticks.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

/// The sum of `stat` fields `indices` of `pid`, in seconds.
fn ticks_seconds(fields: &[String], indices: &[usize]) -> Option<f64> {
    let mut ticks = 0.0;
    for &i in indices {
        ticks += fields.get(i)?.parse::<f64>().ok()?;
    }
    Some(ticks / clock_ticks())
}

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    ticks_seconds(&stat_fields(pid)?, &[11, 12])
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU seconds PostgreSQL has used so far: every live `postgres` process, plus what the
/// postmaster's exited children used (its cutime and cstime), so backends and autovacuum
/// workers that end during a measurement still count and the figure never goes down.
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let processes: Vec<(String, Vec<String>)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .filter_map(|pid| Some((pid.to_string(), stat_fields(pid)?)))
        .collect();
    let pids: std::collections::HashSet<&str> =
        processes.iter().map(|(pid, _)| pid.as_str()).collect();
    processes
        .iter()
        .filter_map(|(_, fields)| {
            let postmaster = !fields
                .get(1)
                .is_some_and(|parent| pids.contains(parent.as_str()));
            let indices: &[usize] = if postmaster {
                &[11, 12, 13, 14]
            } else {
                &[11, 12]
            };
            ticks_seconds(fields, indices)
        })
        .sum()
}

/// CPU used by named processes, and by PostgreSQL, from when the meter started.
#[derive(Debug)]
pub struct CpuMeter {
    processes: Vec<(String, Option<u32>)>,
    before: Vec<Option<f64>>,
}

impl CpuMeter {
    /// Starts measuring `processes` (name and pid, if known) and PostgreSQL (named `postgres`).
    pub fn start(processes: &[(&str, Option<u32>)]) -> CpuMeter {
        let processes: Vec<(String, Option<u32>)> = processes
            .iter()
            .map(|(name, pid)| ((*name).to_owned(), *pid))
            .chain([("postgres".to_owned(), None)])
            .collect();
        let before = processes.iter().map(Self::seconds).collect();
        CpuMeter { processes, before }
    }

    fn seconds((name, pid): &(String, Option<u32>)) -> Option<f64> {
        match pid {
            Some(pid) => cpu_seconds(*pid),
            None if name == "postgres" => Some(postgres_cpu_seconds()),
            None => None,
        }
    }

    /// Microseconds of CPU per request of `requests` since the start, per process (`None`
    /// without its pid or without requests).
    pub fn micros_per(&self, requests: u64) -> Vec<(String, Option<f64>)> {
        self.processes
            .iter()
            .zip(&self.before)
            .map(|(process, before)| {
                let used = Self::seconds(process).zip(*before).map(|(now, b)| now - b);
                let per = used
                    .filter(|_| requests > 0)
                    .map(|s| s * 1e6 / requests as f64);
                (process.0.clone(), per)
            })
            .collect()
    }
}

/// `µs` figures as table cells: the number, or `n/a`.
pub fn cells(figures: &[(String, Option<f64>)]) -> String {
    figures
        .iter()
        .map(|(_, us)| us.map_or("n/a".into(), |us| format!("{us:.0}")))
        .collect::<Vec<_>>()
        .join(" | ")
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
