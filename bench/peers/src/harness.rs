//! One contender's run: fill the input, start the contender (under `/usr/bin/time`), measure
//! end-to-end latency with a trickle of records once the bulk is consumed, wait for it to stop,
//! then read its output back and check it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use ow_stream_core::admin::{Admin, TopicSpec};
use ow_stream_core::client::{Consumer, Producer};
use ow_stream_core::config::StreamsConfig;
use ow_stream_core::registry::SchemaRegistry;
use ow_stream_core::serde::BytesSerde;
use ow_stream_core::{Headers, Topic};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{ClientConfig, Message};
use serde::{Deserialize, Serialize};

use crate::contender::{self, COUNT_OUT, INPUT, MAP_FILTER_OUT, Report, Workload, kafka};
use crate::{BenchError, workload};

/// Settings of one run.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Row name in the table.
    pub name: String,
    /// The workload.
    pub workload: Workload,
    /// Streams configuration pointing at the backend (its application id is unused).
    pub config: StreamsConfig,
    /// Partitions of the input and output topics.
    pub partitions: i32,
    /// Bulk records (keyed workloads) or events (OverFast).
    pub records: u64,
    /// Keys of the keyed workloads.
    pub keys: u64,
    /// Value size of the keyed workloads.
    pub value_bytes: usize,
    /// Records trickled after the bulk to measure latency (0: none; Kafka only).
    pub latency_records: u64,
    /// The consumer group the contender commits in (to see when it has read the bulk).
    pub group: String,
    /// Whether the contender writes an output topic to check (raw consumers do not).
    pub has_output: bool,
    /// The recorded OverFast body the events are made of (workload c).
    pub sample: PathBuf,
    /// The schema registry directory (workload c).
    pub registry_dir: PathBuf,
    /// The contender's command line.
    pub command: Vec<String>,
}

/// One row of results.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunResult {
    /// Row name.
    pub name: String,
    /// Workload letter.
    pub workload: String,
    /// Input records consumed (bulk + latency trickle).
    pub records: u64,
    /// Wall seconds from start to exit.
    pub wall_s: f64,
    /// User + system CPU seconds of the contender process.
    pub cpu_s: f64,
    /// Peak resident set, MiB.
    pub peak_rss_mib: f64,
    /// Milliseconds from start to the first record consumed, as the contender saw it.
    pub first_record_ms: f64,
    /// Milliseconds from start to the last bulk record consumed, as the contender saw it.
    pub bulk_ms: f64,
    /// End-to-end latency percentiles in milliseconds (input timestamp to the output record
    /// reaching a consumer), when measured.
    pub latency_p50_ms: Option<f64>,
    /// See `latency_p50_ms`.
    pub latency_p99_ms: Option<f64>,
    /// Records the contender wrote to its output topic.
    pub output_records: Option<u64>,
    /// `None` when every check passed, else what failed.
    pub invalid: Option<String>,
}

fn millis_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The key and value of trickle record `j` (after `records` bulk records).
fn trickle(j: u64, records: u64, value_bytes: usize) -> (String, Vec<u8>) {
    // Even indices, so that workload (a) keeps them all.
    let i = (records + 2 * j + 1) & !1;
    (format!("t{j:05}"), workload::value(i, value_bytes))
}

/// Creates the input topic and fills it.
pub async fn fill(spec: &RunSpec) -> Result<(), BenchError> {
    let admin = Admin::new(&spec.config)?;
    let mut specs = vec![TopicSpec::new(INPUT, spec.partitions)];
    if spec.workload != Workload::OverFast {
        specs.push(TopicSpec::new(MAP_FILTER_OUT, spec.partitions));
        specs.push(TopicSpec::new(COUNT_OUT, spec.partitions));
    }
    let producer = Producer::new(&spec.config)?;
    if spec.workload == Workload::OverFast {
        let registry = SchemaRegistry::open_dir(&spec.registry_dir)?;
        let topics = ow_processor::Topics::new(&registry, "")?;
        let mut all = vec![TopicSpec::new(topics.raw.name(), spec.partitions)];
        all.extend(topics.output_specs(spec.partitions));
        admin.create_topics(&all).await?;
        let bodies = workload::overfast_bodies(&spec.sample)?;
        let ids: Vec<u64> = (0..spec.records).collect();
        for chunk in ids.chunks(200) {
            let sends = chunk.iter().map(|i| {
                let (key, raw) = workload::overfast_event(*i, &bodies);
                let producer = &producer;
                let topic = &topics.raw;
                async move { producer.send(topic, &key, &raw).await }
            });
            for r in futures::future::join_all(sends).await {
                r?;
            }
        }
        return Ok(());
    }
    admin.create_topics(&specs).await?;
    let ids: Vec<u64> = (0..spec.records).collect();
    let now = millis_now();
    for chunk in ids.chunks(2000) {
        let sends = chunk.iter().map(|i| {
            let key = workload::key(*i, spec.keys);
            let value = workload::value(*i, spec.value_bytes);
            let producer = &producer;
            async move {
                producer
                    .send_raw(
                        INPUT,
                        Some(key.as_bytes()),
                        Some(&value),
                        now,
                        &Headers::new(),
                    )
                    .await
            }
        });
        for r in futures::future::join_all(sends).await {
            r?;
        }
    }
    Ok(())
}

/// Waits until `group` has committed at least `records` offsets of the input.
async fn wait_committed(
    config: &StreamsConfig,
    group: &str,
    topic: &str,
    records: u64,
    child: &mut tokio::process::Child,
) -> Result<(), BenchError> {
    let admin = Admin::new(config)?;
    loop {
        let lag = admin.group_lag(group, &[topic]).await?;
        let committed: i64 = lag.iter().filter_map(|l| l.committed).sum();
        if committed as u64 >= records {
            return Ok(());
        }
        if let Some(status) = child.try_wait().map_err(|e| BenchError::Contender {
            reason: e.to_string(),
        })? {
            return Err(BenchError::Contender {
                reason: format!("exited with {status} before reading its input"),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Trickles `n` records into the input at about 50 per second and measures, for each, the time
/// from its timestamp until its output record reaches a consumer of `output`.
async fn measure_latency(
    spec: &RunSpec,
    brokers: &str,
    output: &str,
) -> Result<Vec<f64>, BenchError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("latency-{}", millis_now()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "latest")
        .set("fetch.wait.max.ms", "5")
        .create()
        .map_err(kafka)?;
    consumer.subscribe(&[output]).map_err(kafka)?;
    // Wait for the assignment, and for positions at the end.
    let deadline = Instant::now() + Duration::from_secs(30);
    while consumer.assignment().map_or(0, |a| a.count()) == 0 && Instant::now() < deadline {
        let _ = consumer.poll(Duration::from_millis(50));
    }
    for _ in 0..10 {
        let _ = consumer.poll(Duration::from_millis(20));
    }
    let producer = Producer::new(&spec.config)?;
    let mut sent: BTreeMap<String, i64> = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut next_send = Instant::now();
    let mut j = 0;
    let give_up = Instant::now() + Duration::from_secs(120);
    while (latencies.len() as u64) < spec.latency_records && Instant::now() < give_up {
        if j < spec.latency_records && Instant::now() >= next_send {
            let (key, value) = trickle(j, spec.records, spec.value_bytes);
            let ts = millis_now();
            producer
                .send_raw(
                    INPUT,
                    Some(key.as_bytes()),
                    Some(&value),
                    ts,
                    &Headers::new(),
                )
                .await?;
            sent.insert(key, ts);
            j += 1;
            next_send += Duration::from_millis(20);
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(1)) {
            let at = millis_now();
            if let Some(ts) = m
                .key()
                .and_then(|k| std::str::from_utf8(k).ok())
                .and_then(|k| sent.remove(k))
            {
                latencies.push((at - ts) as f64);
            }
        }
    }
    Ok(latencies)
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(rank).copied()
}

/// Reads every record of `topic` (on either backend).
async fn read_all(
    config: &StreamsConfig,
    topic: &str,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>, BenchError> {
    let admin = Admin::new(config)?;
    let total: i64 = admin
        .topic_offsets(&[topic])
        .await?
        .iter()
        .map(|t| t.records())
        .sum();
    let mut out = Vec::with_capacity(total.max(0) as usize);
    if total <= 0 {
        return Ok(out);
    }
    let t: Topic<Vec<u8>, Vec<u8>> = Topic::new(topic, BytesSerde, BytesSerde);
    let consumer = Consumer::subscribe(config, &format!("check-{}", millis_now()), &t)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while (out.len() as i64) < total {
        let next = tokio::time::timeout(Duration::from_secs(30), consumer.next_raw()).await;
        match next {
            Ok(Some(Ok(r))) => out.push((
                r.key.map(|k| k.to_vec()).unwrap_or_default(),
                r.value.map(|v| v.to_vec()).unwrap_or_default(),
            )),
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => break,
            Err(_) => {
                return Err(BenchError::Check {
                    reason: format!("reading {topic} back stalled at {} of {total}", out.len()),
                });
            }
        }
        if Instant::now() > deadline {
            break;
        }
    }
    consumer.close().await?;
    Ok(out)
}

/// Checks the output of workload (a) or (b) against what the input says it must be.
async fn check_keyed(spec: &RunSpec, trickled: u64) -> Result<(u64, Option<String>), BenchError> {
    let bulk = 0..spec.records;
    let mut expected = match spec.workload {
        Workload::MapFilter => workload::expected_map_filter(bulk, spec.keys),
        _ => workload::expected_counts(bulk, spec.keys),
    };
    for j in 0..trickled {
        expected.insert(trickle(j, spec.records, spec.value_bytes).0, 1);
    }
    let topic = if spec.workload == Workload::MapFilter {
        MAP_FILTER_OUT
    } else {
        COUNT_OUT
    };
    let records = read_all(&spec.config, topic).await?;
    let n = records.len() as u64;
    let mut got: BTreeMap<String, i64> = BTreeMap::new();
    for (k, v) in &records {
        let key = String::from_utf8_lossy(k).into_owned();
        match spec.workload {
            Workload::MapFilter => {
                let ok = workload::index_of(v).is_some_and(|i| i.is_multiple_of(2))
                    && v.get(11..)
                        .is_some_and(|rest| rest.iter().all(|b| *b == b'X'));
                if !ok {
                    return Ok((n, Some(format!("bad output value for {key}"))));
                }
                *got.entry(key).or_insert(0) += 1;
            }
            _ => {
                let count: i64 = serde_json::from_slice(v).unwrap_or(-1);
                got.insert(key, count);
            }
        }
    }
    if got == expected {
        return Ok((n, None));
    }
    let wrong = expected
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .count();
    Ok((
        n,
        Some(format!(
            "{wrong} of {} keys differ ({} keys in the output)",
            expected.len(),
            got.len()
        )),
    ))
}

/// Checks the category records of workload (c): one per category of every snapshot.
async fn check_overfast(spec: &RunSpec) -> Result<(u64, Option<String>), BenchError> {
    let registry = SchemaRegistry::open_dir(&spec.registry_dir)?;
    let topics = ow_processor::Topics::new(&registry, "")?;
    let records = read_all(&spec.config, topics.stats_by_category.name()).await?;
    let n = records.len() as u64;
    let want = spec.records * CATEGORIES_PER_EVENT;
    let invalid = (n != want).then(|| format!("{n} category records, {want} expected"));
    Ok((n, invalid))
}

/// Category records of one OverFast event of the workload (PC competitive stats of
/// JohnV1-1190, as `ow-processor`'s topology benchmark counts them).
pub const CATEGORIES_PER_EVENT: u64 = 11;

/// Runs one contender: fill, start, latency trickle, stop, check.
pub async fn run(spec: &RunSpec) -> Result<RunResult, BenchError> {
    fill(spec).await?;
    let time_file = tempfile_path(&spec.name);
    let mut cmd = tokio::process::Command::new("/usr/bin/time");
    cmd.arg("-f")
        .arg("%U %S %M")
        .arg("-o")
        .arg(&time_file)
        .args(&spec.command)
        .env("OW_BENCH_START_MS", millis_now().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| BenchError::Contender {
        reason: format!("cannot start {:?}: {e}", spec.command),
    })?;
    let mut latencies = Vec::new();
    let brokers = match &spec.config.backend {
        ow_stream_core::config::Backend::Kafka { bootstrap_servers } => {
            Some(bootstrap_servers.clone())
        }
        _ => None,
    };
    if let (Some(brokers), true, true) = (&brokers, spec.latency_records > 0, spec.has_output) {
        let output = if spec.workload == Workload::MapFilter {
            MAP_FILTER_OUT
        } else {
            COUNT_OUT
        };
        wait_committed(&spec.config, &spec.group, INPUT, spec.records, &mut child).await?;
        latencies = measure_latency(spec, brokers, output).await?;
    } else if let (Some(_), true) = (&brokers, spec.latency_records > 0) {
        // Raw consumers: the trickle only makes them reach their count.
        wait_committed(&spec.config, &spec.group, INPUT, spec.records, &mut child).await?;
        let producer = Producer::new(&spec.config)?;
        for j in 0..spec.latency_records {
            let (key, value) = trickle(j, spec.records, spec.value_bytes);
            producer
                .send_raw(
                    INPUT,
                    Some(key.as_bytes()),
                    Some(&value),
                    millis_now(),
                    &Headers::new(),
                )
                .await?;
        }
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| BenchError::Contender {
            reason: e.to_string(),
        })?;
    let wall_s = started.elapsed().as_secs_f64();
    if !output.status.success() {
        return Err(BenchError::Contender {
            reason: format!("{} exited with {}", spec.name, output.status),
        });
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Report = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| BenchError::Contender {
            reason: format!("no report on stdout: {stdout}"),
        })?;
    let times = std::fs::read_to_string(&time_file).map_err(|source| BenchError::Io {
        path: time_file.clone(),
        source,
    })?;
    let nums: Vec<f64> = times
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    let (cpu_s, peak_rss_mib) = match nums.as_slice() {
        [u, s, m, ..] => (u + s, m / 1024.0),
        _ => {
            return Err(BenchError::Contender {
                reason: format!("unreadable /usr/bin/time output: {times}"),
            });
        }
    };
    let trickled = if brokers.is_some() {
        spec.latency_records
    } else {
        0
    };
    let (output_records, mut invalid) = if !spec.has_output {
        (None, None)
    } else if spec.workload == Workload::OverFast {
        let (n, invalid) = check_overfast(spec).await?;
        (Some(n), invalid)
    } else {
        let (n, invalid) = check_keyed(spec, trickled).await?;
        (Some(n), invalid)
    };
    let expect = spec.records + trickled;
    if report.records != expect {
        invalid = Some(format!(
            "consumed {} records, {expect} expected",
            report.records
        ));
    }
    if let Some(sum) = report.checksum {
        let want: u64 = (0..spec.records).sum::<u64>()
            + (0..trickled)
                .map(|j| {
                    workload::index_of(&trickle(j, spec.records, spec.value_bytes).1).unwrap_or(0)
                })
                .sum::<u64>();
        if sum != want {
            invalid = Some(format!("checksum {sum}, {want} expected"));
        }
    }
    latencies.sort_by(f64::total_cmp);
    if spec.latency_records > 0
        && spec.has_output
        && brokers.is_some()
        && (latencies.len() as u64) < spec.latency_records
        && invalid.is_none()
    {
        invalid = Some(format!(
            "{} of {} latency records came out",
            latencies.len(),
            spec.latency_records
        ));
    }
    Ok(RunResult {
        name: spec.name.clone(),
        workload: match spec.workload {
            Workload::MapFilter => "a",
            Workload::Count => "b",
            Workload::OverFast => "c",
        }
        .into(),
        records: report.records,
        wall_s,
        cpu_s,
        peak_rss_mib,
        first_record_ms: report.first_record_ms,
        bulk_ms: report.bulk_ms,
        latency_p50_ms: percentile(&latencies, 50.0),
        latency_p99_ms: percentile(&latencies, 99.0),
        output_records,
        invalid,
    })
}

fn tempfile_path(name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    std::env::temp_dir().join(format!("ow-bench-{safe}-{}.time", std::process::id()))
}

/// A contender's report, printed as the last line of its stdout.
pub fn print_report(report: &Report) -> Result<(), BenchError> {
    let line = serde_json::to_string(report).map_err(|e| BenchError::Input {
        what: "report".into(),
        reason: e.to_string(),
    })?;
    println!("{line}");
    Ok(())
}

/// The raw contender on `spec` (for `ow-bench raw`).
pub fn raw_contender(
    brokers: &str,
    group: &str,
    bulk: u64,
    expect: u64,
    decode: bool,
    commit_interval: Duration,
) -> Result<Report, BenchError> {
    contender::raw(brokers, group, INPUT, bulk, expect, decode, commit_interval)
}
