//! The battletag search box.

use maud::{Markup, html};

/// A search form whose input has id `id`, pre-filled with `value`.
pub(crate) fn form(id: &str, value: &str, autofocus: bool) -> Markup {
    html! {
        form.search action="/search" method="get" role="search" {
            label.visually-hidden for=(id) { "Battletag" }
            input id=(id) type="search" name="q" value=(value) placeholder="Name#1234"
                required maxlength="64" autocomplete="off" spellcheck="false"
                autofocus[autofocus];
            button type="submit" { "Look up" }
        }
    }
}
