//! The whole pipeline as separate processes: tansu, `ow-registry`, the OverFast stand-in
//! (in the test's process, over loopback HTTP), `ow-producer`, one or more `ow-processor`
//! instances and `ow-web`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ow_producer::fixture_server::FixtureServer;
use serde_json::Value;

use crate::binaries::Binaries;
use crate::bodies::{body_stat, web_stat};
use crate::broker::Broker;
use crate::process::{Process, Spec, free_port};

/// How the pipeline is started.
#[derive(Clone, Debug)]
pub struct Options {
    /// Partitions of every topic of the manifest.
    pub partitions: i32,
    /// `ow-processor` instances, all in one consumer group.
    pub processors: usize,
    /// Extra arguments of `ow-producer`.
    pub producer_args: Vec<String>,
    /// Extra arguments of every `ow-processor`.
    pub processor_args: Vec<String>,
    /// Extra arguments of `ow-web`.
    pub web_args: Vec<String>,
    /// `--commit-interval-ms` of every stage.
    pub commit_interval_ms: u64,
    /// Body sequences the OverFast stand-in serves from the start, per player (see
    /// `FixtureServer::add_profile_sequence`): players the producer tracks must be here, or
    /// its first fetch finds them unknown and waits OverFast's retry time.
    pub profiles: Vec<(String, Vec<Vec<u8>>)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            partitions: 2,
            processors: 1,
            producer_args: Vec::new(),
            processor_args: Vec::new(),
            web_args: Vec::new(),
            commit_interval_ms: 200,
            profiles: Vec::new(),
        }
    }
}

/// The running pipeline. Dropping it kills every process; when the test is failing, the end
/// of every log is printed first, and the run directory is kept (its path is printed).
#[derive(Debug)]
pub struct Pipeline {
    dir: Option<tempfile::TempDir>,
    /// The broker.
    pub broker: Broker,
    /// `ow-registry`.
    pub registry: Process,
    registry_url: String,
    /// The OverFast stand-in.
    pub overfast: FixtureServer,
    /// `ow-producer`.
    pub producer: Process,
    /// The `ow-processor` instances.
    pub processors: Vec<Process>,
    /// `ow-web`.
    pub web: Process,
    web_url: String,
    http: reqwest::Client,
}

impl Pipeline {
    /// Starts everything and waits until the registry and the web answer.
    ///
    /// # Panics
    /// When a part does not start.
    pub async fn start(options: Options) -> Pipeline {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_test_writer()
            .try_init();
        let binaries = Binaries::get();
        let dir = tempfile::Builder::new()
            .prefix("ow-e2e-")
            .tempdir()
            .expect("a temporary directory");
        let root = dir.path().to_path_buf();
        let logs = root.join("logs");
        std::fs::create_dir_all(&logs).expect("the log directory");
        eprintln!("e2e run directory: {}", root.display());

        let broker = Broker::start(&root.join("tansu"), free_port(), options.partitions);

        let registry_port = free_port();
        let registry_url = format!("http://127.0.0.1:{registry_port}");
        let registry = Process::start(
            Spec {
                name: "registry".into(),
                program: binaries.path("ow-registry"),
                args: vec![
                    "--listen".into(),
                    format!("127.0.0.1:{registry_port}"),
                    "--state-dir".into(),
                    root.join("registry").display().to_string(),
                ],
            },
            &logs,
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client");
        let subjects = format!("{registry_url}/subjects");
        eventually("the registry answers", Duration::from_secs(60), || {
            let http = http.clone();
            let subjects = subjects.clone();
            async move {
                let r = http.get(&subjects).send().await.ok()?;
                r.status().is_success().then_some(())
            }
        })
        .await;

        let overfast = FixtureServer::start().await.expect("the OverFast stand-in");
        // No cache headers: the producer may fetch a player again as soon as it is asked.
        overfast.set_cache_headers(None, None);
        for (player, bodies) in &options.profiles {
            overfast.add_profile_sequence(player, bodies.iter().cloned());
        }

        let common = |name: &str| -> Vec<String> {
            vec![
                "--brokers".into(),
                broker.bootstrap(),
                "--schema-registry-url".into(),
                registry_url.clone(),
                "--state-dir".into(),
                root.join("state").join(name).display().to_string(),
                "--commit-interval-ms".into(),
                options.commit_interval_ms.to_string(),
                "--log".into(),
                "info,ow_stream_core=info".into(),
            ]
        };

        let processors: Vec<Process> = (1..=options.processors)
            .map(|i| {
                let name = format!("processor-{i}");
                let mut args = common(&name);
                args.extend(options.processor_args.iter().cloned());
                Process::start(
                    Spec {
                        name,
                        program: binaries.path("ow-processor"),
                        args,
                    },
                    &logs,
                )
            })
            .collect();

        let mut producer_args = common("producer");
        producer_args.extend(["--overfast-url".into(), overfast.url()]);
        // The harness's OverFast client settings, unless the scenario sets its own.
        for (flag, value) in [
            ("--overfast-rate", "100"),
            ("--overfast-burst", "100"),
            ("--overfast-concurrency", "8"),
        ] {
            if !options.producer_args.iter().any(|a| a == flag) {
                producer_args.extend([flag.into(), value.into()]);
            }
        }
        producer_args.extend(options.producer_args.iter().cloned());
        let producer = Process::start(
            Spec {
                name: "producer".into(),
                program: binaries.path("ow-producer"),
                args: producer_args,
            },
            &logs,
        );

        let web_port = free_port();
        let web_url = format!("http://127.0.0.1:{web_port}");
        let mut web_args = common("web");
        web_args.extend([
            "--listen".into(),
            format!("127.0.0.1:{web_port}"),
            "--refresh-cooldown".into(),
            "1s".into(),
            "--client-requests-per-minute".into(),
            "1000".into(),
        ]);
        web_args.extend(options.web_args.iter().cloned());
        let web = Process::start(
            Spec {
                name: "web".into(),
                program: binaries.path("ow-web"),
                args: web_args,
            },
            &logs,
        );
        let pipeline = Pipeline {
            dir: Some(dir),
            broker,
            registry,
            registry_url,
            overfast,
            producer,
            processors,
            web,
            web_url,
            http,
        };
        pipeline.wait_healthy(Duration::from_secs(120)).await;
        pipeline
    }

    /// The run directory (logs in `logs/`, tansu's data in `tansu/`).
    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or_else(|| Path::new("."), tempfile::TempDir::path)
    }

    /// The registry's URL.
    pub fn registry_url(&self) -> &str {
        &self.registry_url
    }

    /// The web's URL, `http://127.0.0.1:<port>`.
    pub fn web_url(&self) -> &str {
        &self.web_url
    }

    /// An HTTP client with a 10 s timeout.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `GET <web><path>`: the status and the body (JSON when it parses, else a string).
    ///
    /// # Panics
    /// When the web does not answer.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.try_get(path)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `GET <web><path>`, or why there is no answer.
    pub async fn try_get(&self, path: &str) -> Result<(u16, Value), reqwest::Error> {
        let response = self
            .http
            .get(format!("{}{path}", self.web_url))
            .send()
            .await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, body))
    }

    /// `POST <web><path>` (no redirects followed): the status.
    ///
    /// # Panics
    /// When the web does not answer.
    pub async fn post(&self, path: &str) -> u16 {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client");
        client
            .post(format!("{}{path}", self.web_url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
            .status()
            .as_u16()
    }

    /// Sends `<method> <path>` to the web over a plain TCP connection, byte for byte (an HTTP
    /// client library would normalize the path first: `%2E%2E` becomes `..` and is resolved
    /// away); HTTP/1.0, so the answer is never chunked. The status and the body.
    ///
    /// # Panics
    /// When the web does not answer with an HTTP response.
    pub async fn raw_request(&self, method: &str, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let addr = self.web_url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect to the web: {e}"));
        let request =
            format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("{method} {path}: no answer within 10 s"))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{method} {path}: not an HTTP answer: {head}"));
        (status, body.to_owned())
    }

    /// Waits until `/healthz` is 200.
    ///
    /// # Panics
    /// After `timeout`.
    pub async fn wait_healthy(&self, timeout: Duration) -> Value {
        eventually("the web is healthy", timeout, || async {
            match self.try_get("/healthz").await {
                Ok((200, body)) => Some(body),
                _ => None,
            }
        })
        .await
    }

    /// Every process of the pipeline that has exited, with its status.
    pub fn exited(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |p: &mut Process| {
            if let Some(status) = p.exited() {
                out.push(format!("{} exited: {status}", p.name()));
            }
        };
        check(&mut self.registry);
        check(&mut self.producer);
        check(&mut self.web);
        for p in &mut self.processors {
            check(p);
        }
        out
    }

    /// Every process that has exited, with its status, but the producer (which scenarios
    /// stop themselves, to have everything fetched written).
    pub fn exited_but_producer(&mut self) -> Vec<String> {
        self.exited()
            .into_iter()
            .filter(|e| !e.starts_with("producer"))
            .collect()
    }

    /// Waits (up to 120 s) until the web shows snapshot `last` of `player` (of the
    /// [`bodies`](crate::bodies) sequence) with one delta for each snapshot after the first,
    /// then checks that its daily sums add up to the change since snapshot 0. The player's
    /// JSON.
    ///
    /// # Panics
    /// When it does not arrive in time, when the web shows more than snapshot `last`, or when
    /// the deltas or daily sums are not exactly those of snapshots 0 to `last`.
    pub async fn wait_for_complete_history(&self, player: &str, last: u32) -> Value {
        let first = body_stat(0, "all-heroes", "game", "games_played").expect("snapshot 0");
        let expected = body_stat(last, "all-heroes", "game", "games_played").expect("a snapshot");
        let (body, day_games, day_deltas) = eventually(
            &format!("{player} shows snapshot {last} ({expected} games) and {last} deltas"),
            Duration::from_secs(120),
            || async {
                let (_, body) = self.get(&format!("/api/players/{player}")).await;
                let games = web_stat(&body, "all-heroes", "game", "games_played")?;
                assert!(games <= expected, "{player}: {games} > {expected}");
                let days = body["history"]["platforms"]["pc"]["competitive"].as_object()?;
                let day_games: f64 = days
                    .values()
                    .filter_map(|d| d["games_played"].as_f64())
                    .sum();
                let day_deltas: u64 = days
                    .values()
                    .filter_map(|d| d["delta_count"].as_u64())
                    .sum();
                (games == expected && day_deltas >= u64::from(last))
                    .then(|| (body.clone(), day_games, day_deltas))
            },
        )
        .await;
        assert_eq!(day_deltas, u64::from(last), "{player}: deltas");
        assert_eq!(day_games, expected - first, "{player}: daily sums");
        body
    }

    /// The processes, for log reads.
    pub fn processes(&self) -> Vec<&Process> {
        let mut all = vec![&self.registry, &self.producer, &self.web];
        all.extend(self.processors.iter());
        all
    }

    /// The log directory.
    pub fn log_dir(&self) -> PathBuf {
        self.dir().join("logs")
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for p in self.processes() {
                eprintln!(
                    "---- {} ({}) ----\n{}",
                    p.name(),
                    p.log_path().display(),
                    p.log_tail(40)
                );
            }
            eprintln!("---- tansu ----\n{}", self.broker.log_tail(40));
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!("e2e run directory kept: {}", kept.display());
            }
        }
    }
}

/// Polls `check` every 200 ms until it gives a value.
///
/// # Panics
/// After `timeout`, naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(t) = check().await {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {timeout:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
