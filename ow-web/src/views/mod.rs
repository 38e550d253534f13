//! The pages and their components, as maud functions returning [`Markup`](maud::Markup): one
//! file per page or component.
//!
//! Everything that comes from OverFast (names, titles, labels, messages, URLs) goes through
//! maud's escaping; nothing here uses `PreEscaped`. Image URLs are also checked
//! ([`image_url`]): only absolute `https` URLs are drawn.

pub(crate) mod categories;
pub(crate) mod chart;
pub(crate) mod error;
pub(crate) mod hero_table;
pub(crate) mod history;
pub(crate) mod home;
pub(crate) mod layout;
pub(crate) mod lookup;
pub(crate) mod metric_card;
pub(crate) mod pipeline;
pub(crate) mod pipeline_diagram;
pub(crate) mod player;
pub(crate) mod player_header;
pub(crate) mod search_form;
pub(crate) mod switches;
pub(crate) mod topic_records;
pub(crate) mod topology_diagram;

/// `raw` as an image URL fit for `src`: an absolute `https` URL with a host and no
/// credentials, at most 2 KiB; `None` otherwise (`javascript:`, `data:`, relative paths, ...).
pub(crate) fn image_url(raw: &str) -> Option<String> {
    if raw.len() > 2048 {
        return None;
    }
    let url = url::Url::parse(raw.trim()).ok()?;
    let ok = url.scheme() == "https"
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.username().is_empty()
        && url.password().is_none();
    ok.then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_images() {
        assert_eq!(
            image_url("https://d15f34w2p8l1cc.cloudfront.net/overwatch/a.png").as_deref(),
            Some("https://d15f34w2p8l1cc.cloudfront.net/overwatch/a.png")
        );
        assert_eq!(
            image_url("https://x.test/a b\"><script>").as_deref(),
            Some("https://x.test/a%20b%22%3E%3Cscript%3E")
        );
        for bad in [
            "javascript:alert(1)",
            "http://x.test/a.png",
            "data:image/png;base64,AAAA",
            "/relative.png",
            "https://user:pw@x.test/a.png",
            "",
        ] {
            assert_eq!(image_url(bad), None, "{bad}");
        }
    }
}
