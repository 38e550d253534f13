//! One section of metric cards per stat category.

use maud::{Markup, html};

use super::metric_card;
use crate::career::Section;

/// The sections.
pub(crate) fn sections(sections: &[Section]) -> Markup {
    html! {
        @for section in sections {
            section.category id={ "category-" (section.key) } data-category=(section.key) {
                h2 { (section.label) }
                div.cards {
                    @for card in &section.cards { (metric_card::card(card)) }
                }
            }
        }
    }
}
