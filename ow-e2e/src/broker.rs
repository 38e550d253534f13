//! tansu, started and stopped by `infra/local-broker.sh` (so the scenarios run the same script
//! a user does), with its data in a directory of the test run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::binaries::{Binaries, workspace_root};

/// A tansu broker on 127.0.0.1. Killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Broker {
    dir: PathBuf,
    port: u16,
    partitions: i32,
    pid: Option<i32>,
}

impl Broker {
    /// `infra/local-broker.sh start DIR PORT` with `PARTITIONS=partitions`: tansu runs, answers,
    /// and has every topic of `infra/topics.txt`.
    ///
    /// # Panics
    /// When the script fails (its output says why).
    pub fn start(dir: &Path, port: u16, partitions: i32) -> Broker {
        let mut broker = Broker {
            dir: dir.to_path_buf(),
            port,
            partitions,
            pid: None,
        };
        broker.run_start();
        broker
    }

    fn script() -> PathBuf {
        workspace_root().join("infra/local-broker.sh")
    }

    fn run_start(&mut self) {
        let output = Command::new("sh")
            .arg(Broker::script())
            .arg("start")
            .arg(&self.dir)
            .arg(self.port.to_string())
            .env("OW_ADMIN", Binaries::get().path("ow-admin"))
            .env("PARTITIONS", self.partitions.to_string())
            .output()
            .unwrap_or_else(|e| panic!("cannot run local-broker.sh: {e}"));
        let pid = std::fs::read_to_string(self.dir.join("tansu.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok());
        self.pid = pid;
        assert!(
            output.status.success(),
            "local-broker.sh start failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        tracing::info!(port = self.port, pid = ?self.pid, "tansu started");
    }

    /// `host:port` for `--brokers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `infra/local-broker.sh stop DIR` (SIGTERM, SIGKILL after 10 s); returns how long it
    /// took.
    ///
    /// # Panics
    /// When the script fails.
    pub fn stop(&mut self) -> Duration {
        let started = Instant::now();
        let output = Command::new("sh")
            .arg(Broker::script())
            .arg("stop")
            .arg(&self.dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run local-broker.sh: {e}"));
        assert!(
            output.status.success(),
            "local-broker.sh stop failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.pid = None;
        started.elapsed()
    }

    /// Kills it with SIGKILL, as a crash or a pulled plug would (its connections drop at once;
    /// SQLite keeps what it committed), and waits until its port is closed; returns how long
    /// that took. Outages are made this way rather than with [`Broker::stop`]: during its
    /// SIGTERM shutdown tansu 0.6.0 keeps connections open with its storage already gone and
    /// answers produces with `UNKNOWN_SERVER_ERROR`, an error librdkafka does not retry
    /// (RELIABILITY.md).
    ///
    /// # Panics
    /// When it was not running, or its port is still open after 10 s.
    pub fn kill(&mut self) -> Duration {
        let started = Instant::now();
        let pid = self.pid.take().expect("the broker runs");
        // SAFETY: no memory effects; the pid is the broker this value started (from its pid
        // file), not yet stopped.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "tansu still answers 10 s after SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_file(self.dir.join("tansu.pid"));
        tracing::info!(port = self.port, pid, "tansu killed");
        started.elapsed()
    }

    /// Starts it again on the same directory and port (its data and topics are kept).
    pub fn restart(&mut self) {
        self.run_start();
    }

    /// What tansu's group coordinator holds for consumer group `group` (read from its SQLite
    /// database with the `sqlite3` command): `None` while the group is between generations
    /// (or unknown), else the members its current assignment names that are no longer members.
    ///
    /// tansu 0.6.0 lets a member expire while a rebalance is under way but still accepts the
    /// leader's assignment for the old member list, and goes to a formed generation without
    /// a new rebalance: the expired member's partitions are then assigned to nobody until the
    /// next membership change (RELIABILITY.md, "tansu 0.6.0 here"). Kafka starts a new
    /// rebalance instead. This is how a scenario sees it.
    ///
    /// # Panics
    /// When `sqlite3` cannot run or the group's record is not the JSON tansu 0.6.0 writes.
    pub fn orphaning_members(&self, group: &str) -> Option<Vec<String>> {
        let query = format!(
            "select d.detail from consumer_group_detail d join consumer_group g \
             on d.consumer_group = g.id where g.name = '{}'",
            group.replace('\'', "''")
        );
        let output = Command::new("sqlite3")
            .arg("-readonly")
            .args(["-cmd", ".timeout 10000"])
            .arg(self.dir.join("ow.db"))
            .arg(query)
            .output()
            .unwrap_or_else(|e| panic!("cannot run sqlite3: {e}"));
        assert!(
            output.status.success(),
            "sqlite3 failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        if text.trim().is_empty() {
            return None;
        }
        let detail: serde_json::Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("tansu's record of group {group} is not JSON: {e}"));
        let assignments = detail["state"]["Formed"]["assignments"].as_object()?;
        let members = detail["members"]
            .as_object()
            .unwrap_or_else(|| panic!("tansu's record of group {group} has no members: {detail}"));
        Some(
            assignments
                .keys()
                .filter(|m| !members.contains_key(*m))
                .cloned()
                .collect(),
        )
    }

    /// The end of tansu's log.
    pub fn log_tail(&self, lines: usize) -> String {
        crate::process::tail(&self.dir.join("tansu.log"), lines)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            // SAFETY: no memory effects; the pid is the broker this value started (from its
            // pid file), not yet stopped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}
