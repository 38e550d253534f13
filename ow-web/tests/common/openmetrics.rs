//! A reader of the OpenMetrics text `/metrics` serves, for the tests: samples with their
//! labels and values. (`prometheus-parse` 0.2 ends a label set at the first `}`, also inside
//! a quoted value, and the routes' labels are templates such as `/players/{id}`.)

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::BTreeMap;

/// One sample line: `name{labels} value`.
#[derive(Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of a whole document (which must end with `# EOF`); panics on a malformed line.
pub fn parse(text: &str) -> Vec<Sample> {
    assert!(
        text.ends_with("# EOF\n"),
        "a whole OpenMetrics document: {text}"
    );
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| parse_line(l).unwrap_or_else(|| panic!("malformed sample line: {l}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices();
        loop {
            // key="value" pairs, separated by commas, up to the closing brace.
            let (start, c) = chars.next()?;
            if c == '}' {
                rest = &after[start + 1..];
                break;
            }
            let start = if c == ',' { chars.next()?.0 } else { start };
            let eq = start + after[start..].find('=')?;
            let key = after[start..eq].to_owned();
            while chars.next()?.0 < eq + 1 {}
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    other => value.push(other),
                }
            }
            labels.insert(key, value);
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// The sum of the samples `name` whose labels include `labels`; panics when there is none.
pub fn total(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<f64> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .collect();
    assert!(!matching.is_empty(), "no {name} {labels:?}");
    matching.iter().sum()
}

#[test]
fn label_values_may_hold_braces_commas_and_quotes() {
    let text = "a_total{route=\"/p/{id}\",x=\"q\\\"},\"} 3\nb 1.5\n# EOF\n";
    let s = parse(text);
    assert_eq!(s[0].name, "a_total");
    assert_eq!(s[0].labels["route"], "/p/{id}");
    assert_eq!(s[0].labels["x"], "q\"},");
    assert_eq!(s[0].value, 3.0);
    assert_eq!(total(&s, "b", &[]), 1.5);
}
