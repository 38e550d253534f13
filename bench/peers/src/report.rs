//! The results table: one row per contender and workload, with the ratios the issue asks for.

use std::fmt::Write as _;

use crate::harness::RunResult;

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{v:.digits$}"))
}

fn rate(r: &RunResult) -> f64 {
    // The bulk, from start (process launch) to its last record consumed.
    let bulk = r.records as f64;
    if r.bulk_ms > 0.0 {
        bulk / (r.bulk_ms / 1000.0)
    } else {
        bulk / r.wall_s.max(1e-9)
    }
}

fn cpu_us(r: &RunResult) -> f64 {
    r.cpu_s * 1e6 / (r.records.max(1) as f64)
}

fn find<'a>(rows: &'a [RunResult], workload: &str, name: &str) -> Option<&'a RunResult> {
    rows.iter()
        .find(|r| r.workload == workload && r.name == name && r.invalid.is_none())
}

/// Renders `rows` as Markdown: the table, then the ratios per workload.
pub fn markdown(rows: &[RunResult]) -> String {
    let mut out = String::new();
    out.push_str(
        "| workload | contender | records | records/s | CPU µs / record | peak RSS MiB | start → first record ms | e2e p50 ms | e2e p99 ms | output records | check |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} k | {:.2} | {:.0} | {:.0} | {} | {} | {} | {} |",
            r.workload,
            r.name,
            r.records,
            rate(r) / 1000.0,
            cpu_us(r),
            r.peak_rss_mib,
            r.first_record_ms,
            cell(r.latency_p50_ms, 0),
            cell(r.latency_p99_ms, 0),
            r.output_records
                .map_or_else(|| "—".into(), |n| n.to_string()),
            r.invalid
                .as_deref()
                .map_or_else(|| "ok".to_string(), |why| format!("**invalid**: {why}")),
        );
    }
    out.push('\n');
    out.push_str("| workload | ratio | records/s | CPU per record |\n|---|---|---|---|\n");
    for w in ["a", "b", "c"] {
        let Some(ours) = find(rows, w, "ow-stream (Kafka)") else {
            continue;
        };
        for (label, other) in [
            ("ow-stream / Quix Streams", find(rows, w, "Quix Streams")),
            (
                "ow-stream / raw count+decode",
                find(rows, w, "raw rdkafka count+decode"),
            ),
            ("ow-stream / raw count", find(rows, w, "raw rdkafka count")),
            ("ow-stream local / ow-stream Kafka", None),
        ] {
            let (num, den) = match other {
                Some(o) => (ours, o),
                None if label.starts_with("ow-stream local") => {
                    match find(rows, w, "ow-stream (local)") {
                        Some(l) => (l, ours),
                        None => continue,
                    }
                }
                None => continue,
            };
            let _ = writeln!(
                out,
                "| {w} | {label} | {:.2}× | {:.2}× |",
                rate(num) / rate(den),
                cpu_us(num) / cpu_us(den)
            );
        }
    }
    out
}
