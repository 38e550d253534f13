//! Scenario 5: hostile battletags through the web (path traversal, `%2F`, unicode that is no
//! battletag, 10 kB, control characters, HTML). Each one gets a clear 4xx on the player page,
//! its JSON form and the search, and the OverFast stand-in receives no request for any of
//! them (it logs every request it gets).

#![allow(clippy::unwrap_used)]

use ow_e2e::{Options, Pipeline};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

/// How an input goes into the URL.
enum Input {
    /// Percent-encoded byte for byte: the server decodes exactly this string.
    Text(String),
    /// Put in the path as it is (already percent-encoded, e.g. `%2F`).
    Encoded(&'static str),
}

fn hostile() -> Vec<Input> {
    let mut out: Vec<Input> = [
        // Path traversal.
        "../../etc/passwd",
        "..",
        "Name-1234/../../admin",
        "..\\..\\windows\\win.ini",
        "....//....//etc",
        "Name..-1234",
        "/etc/passwd",
        "Name\\-1234",
        // Unicode that is not a battletag.
        "Te\u{0301}st-1234",
        "\u{202E}Name-1234",
        "Na\u{200B}me-1234",
        "😀😀😀-1234",
        "Name-１２３４",
        "١٢٣٤٥-1234",
        "Name-١٢٣٤",
        "Nam\u{FEFF}e-1234",
        "\u{FFFD}\u{FFFD}\u{FFFD}-1234",
        // HTML and script.
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "Name<b>-1234",
        "&lt;Name&gt;-1234",
        "Name'-1234",
        "Name\";DROP-1234",
        "javascript:alert(1)",
        "<svg/onload=alert(1)>-1234",
        // Not battletags at all.
        "-1234",
        "Name-",
        "Name#",
        "1Name-1234",
        "Na-1234",
        "ThisNameIsTooLong-1234",
        "Name-12a4",
        "Name 1234",
        "Name-1234 OR 1=1",
        "%",
        "%%32%65",
    ]
    .into_iter()
    .map(|s| Input::Text(s.to_owned()))
    .collect();
    // 10 kB.
    out.push(Input::Text(format!("{}-1234", "A".repeat(10_000))));
    out.push(Input::Text(format!("Name-{}", "1".repeat(10_000))));
    out.push(Input::Text("<".repeat(10_240)));
    // Every C0 control character and DEL, inside a name.
    for c in (0u8..0x20).chain([0x7f]) {
        out.push(Input::Text(format!("Na{}me-1234", char::from(c))));
    }
    // Already encoded: slashes and dots the router must not take for path separators.
    out.extend(
        [
            "%2F",
            "%2F%2F",
            "Name%2F1234",
            "Name-1234%2Fstats",
            "..%2F..%2Fetc%2Fpasswd",
            "%2e%2e%2f%2e%2e%2fetc",
            "%2E%2E",
            "%5C..%5C",
            "Name%00-1234",
            "Name%0D%0A-1234",
            "%3Cscript%3E-1234",
            "Name%E2%80%AE-1234",
            "%C0%AF",
            "%FF%FE-1234",
            "Name%23-1234",
            "Name-1234%2F..%2F..",
            "%252F",
            "Name%09-1234",
            "Name%2500-1234",
            "%E0%A4%A",
            "Name%2F%2E%2E-1234",
            "Te%CC%81st-1234",
            "%F0%9F%98%80%F0%9F%98%80%F0%9F%98%80-1234",
            "Name%20-%201234",
            "%0A",
            "%1B%5B31mName-1234",
            "Name%3F-1234",
            "Name%2E%2E-1234",
            "..%5C..%5C",
            "%2E%2E%2F",
        ]
        .map(Input::Encoded),
    );
    out
}

fn segment(input: &Input) -> String {
    match input {
        Input::Text(s) => utf8_percent_encode(s, NON_ALPHANUMERIC).to_string(),
        Input::Encoded(s) => (*s).to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_battletags_get_a_clear_4xx_and_never_reach_overfast() {
    let mut pipeline = Pipeline::start(Options::default()).await;
    let inputs = hostile();
    assert!(inputs.len() >= 100, "{} inputs", inputs.len());
    let mut refused = 0;
    for input in &inputs {
        let seg = segment(input);
        for path in [
            format!("/players/{seg}"),
            format!("/api/players/{seg}"),
            format!("/api/players/{seg}/status"),
            format!("/search?q={seg}"),
        ] {
            let (status, body) = pipeline.raw_request("GET", &path).await;
            let shown: String = path.chars().take(80).collect();
            assert!((400..500).contains(&status), "{shown}: {status} {body}");
            if path.starts_with("/api/") {
                let json: serde_json::Value = serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("{shown}: {status} is not JSON ({e}): {body}"));
                let message = json["error"].as_str().unwrap_or_default();
                assert!(
                    !message.is_empty(),
                    "{shown}: {status} without a message: {body}"
                );
            } else {
                assert!(
                    body.contains("<html"),
                    "{shown}: {status} is not a page: {body}"
                );
                assert!(
                    !body.contains("<script>alert") && !body.contains("<img src=x"),
                    "{shown}: the input is echoed unescaped"
                );
            }
        }
        let (status, body) = pipeline
            .raw_request("POST", &format!("/players/{seg}/refresh"))
            .await;
        assert!(
            (400..500).contains(&status),
            "POST refresh {seg}: {status} {body}"
        );
        refused += 1;
    }
    // A valid battletag after all of them: the stand-in does get that one, so it was
    // listening all along.
    let (status, _) = pipeline.get("/players/Valid-1234").await;
    assert_eq!(status, 200);
    ow_e2e::eventually(
        "the producer asks OverFast for Valid-1234",
        std::time::Duration::from_secs(60),
        || async { (pipeline.overfast.hits("Valid-1234") > 0).then_some(()) },
    )
    .await;
    let arrivals = pipeline.overfast.arrivals();
    let others: Vec<&str> = arrivals
        .iter()
        .filter(|a| a.player != "Valid-1234")
        .map(|a| a.path.as_str())
        .collect();
    assert!(others.is_empty(), "OverFast was asked for: {others:?}");
    let exited = pipeline.exited();
    assert!(exited.is_empty(), "{exited:?}");
    println!(
        "e2e summary: scenario 5 (hostile battletags): {refused} hostile inputs refused with a 4xx on 5 routes each, 0 OverFast requests for them"
    );
}
