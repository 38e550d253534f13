//! The battletag parser, [`PlayerId::parse`].
//!
//! Any text (the input bytes, as UTF-8 with invalid sequences replaced) must parse or be refused
//! without a panic. An accepted id must be what the module promises: safe as one URL path segment
//! and as a file name, at most [`PlayerId::MAX_LEN`] bytes, `name-discriminator`, and a fixed
//! point (its `Name-1234` and `Name#1234` forms parse back to the same id, as does its JSON).

use ow_domain::battletag::PlayerId;
use percent_encoding::percent_decode_str;

/// Checks the parser on `data`; panics if a property is broken.
pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed = PlayerId::parse(&text);
    assert_eq!(
        text.parse::<PlayerId>().ok(),
        parsed.clone().ok(),
        "FromStr and parse disagree on {text:?}"
    );
    let json = serde_json::to_string(text.as_ref()).expect("a string serializes to JSON");
    let from_json = serde_json::from_str::<PlayerId>(&json);
    assert_eq!(
        from_json.ok(),
        parsed.clone().ok(),
        "deserializing and parse disagree on {text:?}"
    );
    match parsed {
        Ok(id) => check_accepted(&text, &id),
        Err(e) => assert!(!e.to_string().is_empty(), "empty message for {text:?}"),
    }
}

fn check_accepted(text: &str, id: &PlayerId) {
    let s = id.as_str();
    assert!(s.len() <= PlayerId::MAX_LEN, "{s:?} is too long");
    assert!(
        !s.contains(['/', '\\']) && !s.contains("..") && !s.contains('#'),
        "{s:?} from {text:?} is not one safe path segment"
    );
    assert!(
        !s.chars().any(|c| c.is_control() || c.is_whitespace()),
        "{s:?} from {text:?} has a control character or whitespace"
    );
    assert_eq!(format!("{}-{}", id.name(), id.discriminator()), s);
    assert!(!id.name().is_empty() && !id.discriminator().is_empty());
    assert!(id.discriminator().bytes().all(|b| b.is_ascii_digit()));
    for form in [
        s.to_owned(),
        id.battletag(),
        format!(" {} ", id.battletag()),
    ] {
        assert_eq!(
            PlayerId::parse(&form).as_ref(),
            Ok(id),
            "{form:?} (a form of {s:?}) does not parse back to it"
        );
    }
    let segment = id.url_path_segment();
    assert!(
        segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)),
        "{segment:?} is not a percent-encoded path segment"
    );
    assert_eq!(
        percent_decode_str(&segment).collect::<Vec<u8>>(),
        s.as_bytes(),
        "{segment:?} does not decode to {s:?}"
    );
    let json = serde_json::to_string(id).expect("a player id serializes to JSON");
    assert_eq!(
        serde_json::from_str::<PlayerId>(&json).ok().as_ref(),
        Some(id)
    );
}
