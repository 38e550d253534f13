//! One metric card: label, value in its unit, change since the previous snapshot.

use maud::{Markup, html};

use crate::career::Card;

/// A card.
pub(crate) fn card(card: &Card) -> Markup {
    html! {
        article.card data-stat=(card.key) {
            div.card-label { (card.label) }
            @if let Some(caption) = card.caption {
                div.card-caption { (caption) }
            }
            div.card-value { (card.value) }
            @if let Some((direction, text)) = &card.delta {
                div class={ "card-delta " (direction.class()) } title="Change since the previous snapshot" {
                    (text)
                }
            }
        }
    }
}
