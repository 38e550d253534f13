//! The page shell: head (stylesheet, script, optional no-script refresh), site header and
//! footer.

use maud::{DOCTYPE, Markup, html};

use super::search_form;

/// A whole page titled `title` around `content`. `refresh_secs` adds a
/// `<meta http-equiv=refresh>` inside `<noscript>`: pages that wait for the pipeline reload
/// by themselves without JavaScript, and leave it to the script otherwise.
pub(crate) fn page(title: &str, refresh_secs: Option<u32>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ow-stream" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
                @if let Some(secs) = refresh_secs {
                    noscript { meta http-equiv="refresh" content=(secs); }
                }
            }
            body {
                header.site {
                    a.brand href="/" { span.logo aria-hidden="true" { "◉" } " ow-stream" }
                    nav.site-nav aria-label="Site" {
                        a href="/" { "Players" }
                        a href="/pipeline" { "Pipeline" }
                    }
                    (search_form::form("site-search", "", false))
                }
                main #content { (content) }
                footer.site {
                    p {
                        "Player data from the "
                        a href="https://overfast-api.tekrop.fr" rel="noreferrer" { "OverFast API" }
                        ", streamed through ow-stream. Overwatch is a trademark of Blizzard Entertainment."
                    }
                }
            }
        }
    }
}
