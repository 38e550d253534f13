//! A child process of a test: its output in a log file, killed when dropped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Every setting the stage binaries read from the environment: removed from their
/// environment, so that the test's own cannot change what they run.
const SETTINGS: &[&str] = &[
    "OW_BROKERS",
    "OW_SCHEMA_REGISTRY_URL",
    "OW_STATE_DIR",
    "OW_COMMIT_INTERVAL_MS",
    "OW_KAFKA_CONFIG",
    "OW_TOPIC_PREFIX",
    "OW_STREAM_THREADS",
    "OW_LISTEN",
    "OW_OVERFAST_URL",
    "OW_REPLAY",
    "OW_RECORD",
    "OW_TRACK",
    "OW_TRACK_FILE",
    "OW_PARTITIONS",
    "RUST_LOG",
];

/// A program and its arguments, to start (and start again) as a [`Process`].
#[derive(Clone, Debug)]
pub struct Spec {
    /// A name for logs and messages (`processor-1`).
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

/// A running (or exited) child process. Its stdout and stderr go to `<log dir>/<name>.log`
/// (appended across restarts); it is killed (SIGKILL) when dropped, so a failing test leaves
/// nothing behind.
#[derive(Debug)]
pub struct Process {
    spec: Spec,
    log: PathBuf,
    child: Option<Child>,
    starts: usize,
}

impl Process {
    /// Starts `spec`, logging into `log_dir`.
    ///
    /// # Panics
    /// When the program cannot be started.
    pub fn start(spec: Spec, log_dir: &Path) -> Process {
        let log = log_dir.join(format!("{}.log", spec.name));
        let mut process = Process {
            spec,
            log,
            child: None,
            starts: 0,
        };
        process.spawn();
        process
    }

    fn spawn(&mut self) {
        let out = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("log file {}: {e}", self.log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("log file {}: {e}", self.log.display()));
        let mut command = Command::new(&self.spec.program);
        for name in SETTINGS {
            command.env_remove(name);
        }
        let child = command
            .args(&self.spec.args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.spec.program.display()));
        tracing::info!(name = %self.spec.name, pid = child.id(), "started");
        self.child = Some(child);
        self.starts += 1;
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How many times it was started.
    pub fn starts(&self) -> usize {
        self.starts
    }

    /// Its exit status, if it has exited (`None` while it runs or when it was never started).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Whether it runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.exited().is_none()
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            tracing::info!(name = %self.spec.name, "killed");
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for it to exit; its exit status, or `None`
    /// when it did not stop in time (it is then killed).
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: `kill` has no memory effects; `pid` is our own unreaped child, so it
            // cannot name another process.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Starts it again (after [`Process::kill`] or an exit).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// How many lines of its log contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .map(|text| text.lines().filter(|l| l.contains(needle)).count())
            .unwrap_or(0)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `lines` lines of a file (empty when it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A free TCP port on 127.0.0.1 (bound, then released: another process could take it in
/// between, which the start-up checks of the harness would then report).
///
/// # Panics
/// When no port can be bound.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}
