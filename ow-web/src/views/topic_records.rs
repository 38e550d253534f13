//! `/pipeline/topics/{name}`: the last records of a topic, decoded (the no-script form of the
//! pipeline page's record panel).

use maud::{Markup, html};

use super::layout;
use crate::format;
use crate::pipeline::BrowsedRecord;

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// The table of records.
pub(crate) fn table(records: &[BrowsedRecord]) -> Markup {
    html! {
        @if records.is_empty() {
            p.empty { "No records." }
        } @else {
            div.table-scroll {
                table.records {
                    thead { tr {
                        th scope="col" { "Partition/offset" } th scope="col" { "Time" }
                        th scope="col" { "Key" } th scope="col" { "Value" }
                    } }
                    tbody {
                        @for r in records {
                            tr {
                                th scope="row" { (r.partition) "/" (r.offset) }
                                td { time datetime=(format::iso8601(r.timestamp)) { (format::datetime(r.timestamp)) } }
                                td { pre.json { (pretty(&r.key)) } }
                                td {
                                    @match &r.value {
                                        Some(v) => { pre.json { (pretty(v)) } }
                                        None => { em { "tombstone" } }
                                    }
                                    @if let Some(e) = &r.error { p.notice.error { (e) } }
                                    @if !r.headers.is_empty() {
                                        details {
                                            summary { "Headers" }
                                            dl { @for (k, v) in &r.headers { dt { (k) } dd { (v) } } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The page of `topic`.
pub(crate) fn page(topic: &str, records: &[BrowsedRecord]) -> Markup {
    layout::page(
        topic,
        None,
        html! {
            p { a href="/pipeline" { "← Pipeline" } }
            h1 { code { (topic) } }
            p.muted { "The last " (records.len()) " records, newest first." }
            (table(records))
        },
    )
}
