//! Platform and game-mode switches (links) and the hero picker (a GET form): plain HTML that
//! works without JavaScript; the script only submits the picker on change.

use maud::{Markup, html};
use ow_domain::battletag::PlayerId;

use crate::career::{Selection, player_url};
use crate::format;

/// The switches of a selection.
pub(crate) fn switches(id: &PlayerId, selection: &Selection) -> Markup {
    let s = selection;
    html! {
        nav.switches aria-label="Platform and game mode" {
            div.switch-group {
                span.switch-label { "Platform" }
                @for platform in &s.platforms {
                    @let active = *platform == s.platform;
                    a.pill.active[active] aria-current=[active.then_some("page")]
                        href=(player_url(id, &[("platform", platform), ("mode", &s.mode), ("hero", &s.hero)])) {
                        (format::platform_name(platform))
                    }
                }
            }
            div.switch-group {
                span.switch-label { "Mode" }
                @for mode in &s.modes {
                    @let active = *mode == s.mode;
                    a.pill.active[active] aria-current=[active.then_some("page")]
                        href=(player_url(id, &[("platform", &s.platform), ("mode", mode), ("hero", &s.hero)])) {
                        (format::mode_name(mode))
                    }
                }
            }
            form.hero-picker method="get" action={ "/players/" (id.url_path_segment()) } {
                input type="hidden" name="platform" value=(s.platform);
                input type="hidden" name="mode" value=(s.mode);
                label for="hero-select" { "Hero" }
                select #hero-select name="hero" data-autosubmit {
                    @for hero in &s.heroes {
                        option value=(hero) selected[*hero == s.hero] { (format::hero_name(hero)) }
                    }
                }
                button type="submit" { "Show" }
            }
        }
    }
}
