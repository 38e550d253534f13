//! Error pages.

use axum::http::StatusCode;
use maud::{Markup, html};

use super::{layout, search_form};

/// A page for an error answer: the status, a title, what happened, and (for bad battletags)
/// the search box again with what was typed.
pub(crate) fn page(status: StatusCode, title: &str, message: &str, retry: Option<&str>) -> Markup {
    layout::page(
        title,
        None,
        html! {
            section.error-page data-status=(status.as_u16()) {
                p.error-code { (status.as_u16()) " · " (status.canonical_reason().unwrap_or("Error")) }
                h1 { (title) }
                p.error-message { (message) }
                @if let Some(typed) = retry {
                    p { "Battletags look like " code { "Name#1234" } " or " code { "Name-1234" } "." }
                    (search_form::form("retry-search", typed, true))
                }
                p { a href="/" { "Back to the players" } }
            }
        },
    )
}
