//! The hero table: time played, games, win %, KDA, eliminations and damage per 10 minutes.
//! Sorted on the server by `?sort=&dir=` (the headings are links); the script may sort in
//! place from the `data-value` of each cell.

use maud::{Markup, html};
use ow_domain::battletag::PlayerId;

use crate::career::{self, HeroRow, Selection, SortDir, SortKey, player_url};

/// The table of `rows` (already sorted by `sort`/`dir`).
pub(crate) fn table(
    id: &PlayerId,
    selection: &Selection,
    rows: &[HeroRow],
    sort: SortKey,
    dir: SortDir,
) -> Markup {
    let s = selection;
    html! {
        @if rows.is_empty() {
            p.empty { "No hero has stats in this mode." }
        } @else {
            div.table-scroll {
                table.heroes data-sortable {
                    caption { "Heroes, " (crate::format::mode_name(&s.mode)) " on " (crate::format::platform_name(&s.platform)) }
                    thead {
                        tr {
                            @for key in SortKey::ALL {
                                @let active = key == sort;
                                @let next = if active { dir.flip() } else { key.natural_dir() };
                                th scope="col" data-sort-key=(key.as_str())
                                    aria-sort=[active.then_some(if dir == SortDir::Asc { "ascending" } else { "descending" })] {
                                    a href=(player_url(id, &[
                                        ("platform", &s.platform),
                                        ("mode", &s.mode),
                                        ("hero", &s.hero),
                                        ("sort", key.as_str()),
                                        ("dir", next.as_str()),
                                    ])) {
                                        (key.heading())
                                        @if active {
                                            span.sort-arrow aria-hidden="true" { @if dir == SortDir::Asc { " ▲" } @else { " ▼" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    tbody {
                        @for row in rows {
                            tr class=[(row.hero == s.hero).then_some("selected")] data-hero=(row.hero) {
                                th scope="row" data-value=(row.name) {
                                    a href=(player_url(id, &[("platform", &s.platform), ("mode", &s.mode), ("hero", &row.hero)])) {
                                        (row.name)
                                    }
                                }
                                @for key in &SortKey::ALL[1..] {
                                    td data-value=(career::column_value(row, *key).map(|v| v.to_string()).unwrap_or_default()) {
                                        (career::column_text(row, *key))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
