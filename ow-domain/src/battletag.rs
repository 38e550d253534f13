//! Player ids: Blizzard battletags in the `Name-1234` form the pipeline and OverFast use.
//!
//! A [`PlayerId`] can only be built by [`PlayerId::parse`], which accepts `Name#1234` and
//! `Name-1234` (surrounding whitespace trimmed, letter case preserved) and rejects anything that
//! cannot be a battletag, so a hostile or mistyped id never reaches a URL or a file name.
//!
//! The rules, checked in this order (the first one broken is the error):
//!
//! 1. not empty once trimmed, and at most [`PlayerId::MAX_LEN`] bytes;
//! 2. no control character, no whitespace, no `/` or `\`, no `..` anywhere;
//! 3. a name and a discriminator separated by `#` (or `-`);
//! 4. the discriminator is one or more ASCII digits;
//! 5. the name is letters (any script) or ASCII digits, does not start with a digit, and is 3 to 12
//!    characters long. Blizzard allows shorter names in Korean and Chinese/Japanese scripts, so a name
//!    with a Hangul or CJK character may have 2. Names are compared as given: write them in NFC (a
//!    letter followed by a combining accent is rejected).
//!
//! ```
//! use ow_domain::battletag::PlayerId;
//!
//! let id = PlayerId::parse(" Jöhn#1234 ").unwrap();
//! assert_eq!(id.to_string(), "Jöhn-1234");
//! assert_eq!(id.battletag(), "Jöhn#1234");
//! assert_eq!(id.url_path_segment(), "J%C3%B6hn-1234");
//! assert!(PlayerId::parse("../../etc#1").is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};

/// Bytes kept as they are in a URL path segment: the RFC 3986 unreserved characters.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Why a string is not a battletag.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BattletagError {
    /// Nothing but whitespace.
    #[error("player id is empty")]
    Empty,
    /// Longer than [`PlayerId::MAX_LEN`] bytes (after trimming).
    #[error("player id is {len} bytes long; a battletag has at most {max}")]
    TooLong {
        /// Length of the trimmed input, in bytes.
        len: usize,
        /// The limit, [`PlayerId::MAX_LEN`].
        max: usize,
    },
    /// A control character (newline, NUL, escape…) somewhere inside.
    #[error("player id {input:?} contains a control character")]
    ControlCharacter {
        /// The trimmed input.
        input: String,
    },
    /// Whitespace inside the id.
    #[error("player id {input:?} contains whitespace")]
    Whitespace {
        /// The trimmed input.
        input: String,
    },
    /// A `/` or `\`: an id is one path segment, never a path.
    #[error("player id {input:?} contains a slash")]
    Slash {
        /// The trimmed input.
        input: String,
    },
    /// `..` somewhere inside.
    #[error("player id {input:?} contains `..`")]
    DotDot {
        /// The trimmed input.
        input: String,
    },
    /// No `#` or `-` followed by a discriminator.
    #[error("player id {input:?} has no discriminator: expected `Name#1234` or `Name-1234`")]
    MissingDiscriminator {
        /// The trimmed input.
        input: String,
    },
    /// The part after the separator is not all ASCII digits.
    #[error("discriminator {discriminator:?} of player id {input:?} is not all digits")]
    InvalidDiscriminator {
        /// The trimmed input.
        input: String,
        /// The part after the separator.
        discriminator: String,
    },
    /// The part before the separator breaks a naming rule.
    #[error("name {name:?} of player id {input:?} is invalid: {problem}")]
    InvalidName {
        /// The trimmed input.
        input: String,
        /// The part before the separator.
        name: String,
        /// The rule it breaks.
        problem: NameProblem,
    },
}

/// The naming rule a battletag's name breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameProblem {
    /// Nothing before the separator.
    #[error("the name is empty")]
    Empty,
    /// Fewer characters than allowed.
    #[error("shorter than {min} characters")]
    TooShort {
        /// The minimum for this name (2 for Hangul/CJK names, 3 otherwise).
        min: usize,
    },
    /// More than [`PlayerId::MAX_NAME_CHARS`] characters.
    #[error("longer than {max} characters")]
    TooLong {
        /// The maximum, [`PlayerId::MAX_NAME_CHARS`].
        max: usize,
    },
    /// Starts with a digit.
    #[error("it starts with a digit")]
    StartsWithDigit,
    /// A character that is neither a letter nor an ASCII digit.
    #[error("{0:?} is not a letter or a digit")]
    Character(char),
}

/// A player id: a battletag in `Name-1234` form, letter case preserved.
///
/// Built only by [`PlayerId::parse`] (or [`FromStr`], or deserializing a string), so holding one
/// means the id is safe to put in a URL path segment or a file name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PlayerId(String);

impl PlayerId {
    /// Longest accepted input, in bytes (after trimming).
    pub const MAX_LEN: usize = 64;
    /// Most characters in a name.
    pub const MAX_NAME_CHARS: usize = 12;
    /// Fewest characters in a name (Hangul/CJK names may have one less).
    pub const MIN_NAME_CHARS: usize = 3;

    /// Parses `Name#1234` or `Name-1234` (surrounding whitespace is trimmed).
    ///
    /// ```
    /// use ow_domain::battletag::{BattletagError, PlayerId};
    ///
    /// assert_eq!(PlayerId::parse("TeKrop-2217").unwrap().as_str(), "TeKrop-2217");
    /// assert_eq!(PlayerId::parse("소녀#21").unwrap().as_str(), "소녀-21");
    /// assert!(matches!(PlayerId::parse("Name#"), Err(BattletagError::MissingDiscriminator { .. })));
    /// ```
    pub fn parse(input: &str) -> Result<PlayerId, BattletagError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(BattletagError::Empty);
        }
        if input.len() > Self::MAX_LEN {
            return Err(BattletagError::TooLong {
                len: input.len(),
                max: Self::MAX_LEN,
            });
        }
        let owned = || input.to_owned();
        if input.chars().any(char::is_control) {
            return Err(BattletagError::ControlCharacter { input: owned() });
        }
        if input.chars().any(char::is_whitespace) {
            return Err(BattletagError::Whitespace { input: owned() });
        }
        if input.contains(['/', '\\']) {
            return Err(BattletagError::Slash { input: owned() });
        }
        if input.contains("..") {
            return Err(BattletagError::DotDot { input: owned() });
        }
        // Names hold neither `#` nor `-`; with a `#` the tag is `Name#1234`, otherwise the
        // pipeline's `Name-1234`.
        let split = match input.split_once('#') {
            Some(parts) => Some(parts),
            None => input.rsplit_once('-'),
        };
        let Some((name, discriminator)) = split else {
            return Err(BattletagError::MissingDiscriminator { input: owned() });
        };
        if discriminator.is_empty() {
            return Err(BattletagError::MissingDiscriminator { input: owned() });
        }
        if !discriminator.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BattletagError::InvalidDiscriminator {
                input: owned(),
                discriminator: discriminator.to_owned(),
            });
        }
        check_name(name).map_err(|problem| BattletagError::InvalidName {
            input: owned(),
            name: name.to_owned(),
            problem,
        })?;
        Ok(PlayerId(format!("{name}-{discriminator}")))
    }

    /// The id in `Name-1234` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, before the separator.
    pub fn name(&self) -> &str {
        self.parts().0
    }

    /// The discriminator: the digits after the separator.
    pub fn discriminator(&self) -> &str {
        self.parts().1
    }

    fn parts(&self) -> (&str, &str) {
        self.0
            .rsplit_once('-')
            .expect("a parsed player id is `Name-1234` and names hold no `-`")
    }

    /// The battletag as players write it, `Name#1234`.
    pub fn battletag(&self) -> String {
        format!("{}#{}", self.name(), self.discriminator())
    }

    /// The id as one URL path segment: UTF-8, percent-encoded (`Jöhn-1234` → `J%C3%B6hn-1234`).
    pub fn url_path_segment(&self) -> String {
        utf8_percent_encode(&self.0, PATH_SEGMENT).to_string()
    }
}

/// Checks the naming rules on the part before the separator.
fn check_name(name: &str) -> Result<(), NameProblem> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(NameProblem::Empty);
    };
    if first.is_ascii_digit() {
        return Err(NameProblem::StartsWithDigit);
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_alphabetic() || c.is_ascii_digit()))
    {
        return Err(NameProblem::Character(bad));
    }
    let count = name.chars().count();
    let min = if name.chars().any(is_hangul_or_cjk) {
        PlayerId::MIN_NAME_CHARS - 1
    } else {
        PlayerId::MIN_NAME_CHARS
    };
    if count < min {
        return Err(NameProblem::TooShort { min });
    }
    if count > PlayerId::MAX_NAME_CHARS {
        return Err(NameProblem::TooLong {
            max: PlayerId::MAX_NAME_CHARS,
        });
    }
    Ok(())
}

/// Hangul, kana and CJK ideographs: the scripts where Blizzard allows two-character names.
fn is_hangul_or_cjk(c: char) -> bool {
    matches!(c,
        '\u{1100}'..='\u{11FF}'     // Hangul Jamo
        | '\u{3040}'..='\u{30FF}'   // Hiragana, Katakana
        | '\u{3130}'..='\u{318F}'   // Hangul Compatibility Jamo
        | '\u{3400}'..='\u{4DBF}'   // CJK Extension A
        | '\u{4E00}'..='\u{9FFF}'   // CJK Unified Ideographs
        | '\u{AC00}'..='\u{D7A3}'   // Hangul Syllables
        | '\u{F900}'..='\u{FAFF}'   // CJK Compatibility Ideographs
    )
}

impl fmt::Display for PlayerId {
    /// Writes `Name-1234`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PlayerId {
    type Err = BattletagError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PlayerId::parse(s)
    }
}

impl TryFrom<String> for PlayerId {
    type Error = BattletagError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        PlayerId::parse(&s)
    }
}

impl From<PlayerId> for String {
    fn from(id: PlayerId) -> String {
        id.0
    }
}

impl AsRef<str> for PlayerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a case should give: the id in `Name-1234` form, or the error's variant.
    #[derive(Debug)]
    enum Want {
        Ok(&'static str),
        Empty,
        TooLong,
        Control,
        Whitespace,
        Slash,
        DotDot,
        NoDiscriminator,
        BadDiscriminator,
        BadName(NameProblem),
    }

    fn classify(result: &Result<PlayerId, BattletagError>) -> String {
        match result {
            Ok(id) => format!("Ok({id})"),
            Err(e) => format!("{:?}", std::mem::discriminant(e)),
        }
    }

    #[test]
    fn battletag_table() {
        use NameProblem as P;
        use Want::*;
        let long = format!("{}#1234", "a".repeat(60));
        let cases: Vec<(&str, Want)> = vec![
            // valid
            ("TeKrop#2217", Ok("TeKrop-2217")),
            ("TeKrop-2217", Ok("TeKrop-2217")),
            ("  TeKrop#2217\t\n", Ok("TeKrop-2217")),
            ("tekrop#2217", Ok("tekrop-2217")),
            ("JohnV1#1190", Ok("JohnV1-1190")),
            ("KIRIKO#21253", Ok("KIRIKO-21253")),
            ("Player#137712", Ok("Player-137712")),
            ("abc#1", Ok("abc-1")),
            ("Abcdefghijkl#1234", Ok("Abcdefghijkl-1234")),
            ("Jöhn#1234", Ok("Jöhn-1234")),
            ("소녀#21", Ok("소녀-21")),
            ("Игрок#1234", Ok("Игрок-1234")),
            ("Ωμέγα-42", Ok("Ωμέγα-42")),
            ("夜神月#31337", Ok("夜神月-31337")),
            ("Zoë9#0001", Ok("Zoë9-0001")),
            ("x1y2z3#99", Ok("x1y2z3-99")),
            // empty or too long
            ("", Empty),
            ("   ", Empty),
            (long.as_str(), TooLong),
            // control characters, whitespace, slashes, dots
            ("Name\0#1234", Control),
            ("Na\nme#1234", Control),
            ("Name#12\u{1b}34", Control),
            ("Name\u{7f}#1234", Control),
            ("Na me#1234", Whitespace),
            ("Name#12 34", Whitespace),
            ("Name\u{3000}x#1234", Whitespace),
            ("a/b#1", Slash),
            ("a\\b#1", Slash),
            ("/etc/passwd#1", Slash),
            ("../../etc#1", Slash),
            ("..#1234", DotDot),
            ("Name..#1234", DotDot),
            // discriminator
            ("Name", NoDiscriminator),
            ("Name#", NoDiscriminator),
            ("Name-", NoDiscriminator),
            ("Name#12a4", BadDiscriminator),
            ("Name#-1234", BadDiscriminator),
            ("Name#1234#5", BadDiscriminator),
            ("Name#١٢٣", BadDiscriminator),
            ("Name#+123", BadDiscriminator),
            // name
            ("#1234", BadName(P::Empty)),
            ("-1234", BadName(P::Empty)),
            ("1abc#1234", BadName(P::StartsWithDigit)),
            ("ab#1234", BadName(P::TooShort { min: 3 })),
            ("소#21", BadName(P::TooShort { min: 2 })),
            ("Abcdefghijklm#1234", BadName(P::TooLong { max: 12 })),
            ("%2e%2e#1", BadName(P::Character('%'))),
            ("Na.me#1234", BadName(P::Character('.'))),
            ("Na-me#1234", BadName(P::Character('-'))),
            ("Na_me#1234", BadName(P::Character('_'))),
            ("Name?x#1", BadName(P::Character('?'))),
            ("<script>#1", BadName(P::Character('<'))),
            ("a-b-1234", BadName(P::Character('-'))),
            ("Jo\u{0308}hn#1234", BadName(P::Character('\u{0308}'))),
            ("Name²#1234", BadName(P::Character('²'))),
        ];
        assert!(cases.len() >= 40, "the table has {} cases", cases.len());
        for (input, want) in cases {
            let got = PlayerId::parse(input);
            let ok = match (&want, &got) {
                (Ok(id), Result::Ok(got)) => got.as_str() == *id,
                (Empty, Err(BattletagError::Empty)) => true,
                (TooLong, Err(BattletagError::TooLong { max, .. })) => *max == 64,
                (Control, Err(BattletagError::ControlCharacter { .. })) => true,
                (Whitespace, Err(BattletagError::Whitespace { .. })) => true,
                (Slash, Err(BattletagError::Slash { .. })) => true,
                (DotDot, Err(BattletagError::DotDot { .. })) => true,
                (NoDiscriminator, Err(BattletagError::MissingDiscriminator { .. })) => true,
                (BadDiscriminator, Err(BattletagError::InvalidDiscriminator { .. })) => true,
                (BadName(p), Err(BattletagError::InvalidName { problem, .. })) => p == problem,
                _ => false,
            };
            assert!(
                ok,
                "{input:?}: wanted {want:?}, got {} ({got:?})",
                classify(&got)
            );
        }
    }

    #[test]
    fn forms_and_parts() {
        let id = PlayerId::parse("Игрок#1234").unwrap();
        assert_eq!(id.as_str(), "Игрок-1234");
        assert_eq!(id.name(), "Игрок");
        assert_eq!(id.discriminator(), "1234");
        assert_eq!(id.battletag(), "Игрок#1234");
        assert_eq!(id.to_string(), "Игрок-1234");
        assert_eq!(id.url_path_segment(), "%D0%98%D0%B3%D1%80%D0%BE%D0%BA-1234");
        assert_eq!(
            PlayerId::parse("소녀#21").unwrap().url_path_segment(),
            "%EC%86%8C%EB%85%80-21"
        );
        assert_eq!(
            PlayerId::parse("TeKrop#2217").unwrap().url_path_segment(),
            "TeKrop-2217"
        );
        assert_eq!(
            "JohnV1-1190".parse::<PlayerId>().unwrap(),
            PlayerId::parse("JohnV1#1190").unwrap()
        );
    }

    #[test]
    fn serde_validates() {
        let id: PlayerId = serde_json::from_str("\"TeKrop-2217\"").unwrap();
        assert_eq!(id.as_str(), "TeKrop-2217");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"TeKrop-2217\"");
        assert!(serde_json::from_str::<PlayerId>("\"../x#1\"").is_err());
    }

    #[test]
    fn errors_read_well() {
        let e = PlayerId::parse("Name#12a4").unwrap_err();
        assert_eq!(
            e.to_string(),
            "discriminator \"12a4\" of player id \"Name#12a4\" is not all digits"
        );
        let e = PlayerId::parse("Na\nme#1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "player id \"Na\\nme#1\" contains a control character"
        );
        let e = PlayerId::parse("1abc#1234").unwrap_err();
        assert_eq!(
            e.to_string(),
            "name \"1abc\" of player id \"1abc#1234\" is invalid: it starts with a digit"
        );
    }
}
