//! Time-series charts drawn as inline SVG: one band per day, bars and lines, a left axis and an
//! optional right one, tick labels, day labels and a legend. No script, no external file;
//! colours come from the stylesheet through class names.

use maud::{Markup, html};

use crate::format;

/// Size of the drawing, in SVG user units.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 240.0;
const MARGIN_LEFT: f64 = 60.0;
const MARGIN_RIGHT: f64 = 56.0;
const MARGIN_TOP: f64 = 36.0;
const MARGIN_BOTTOM: f64 = 40.0;
/// Most day labels under the x axis.
const MAX_DAY_LABELS: usize = 8;

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    /// One bar per day.
    Bars,
    /// A line through one point per day.
    Line,
}

/// Which axis a series is measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Axis {
    /// The left one.
    Left,
    /// The right one.
    Right,
}

/// One series of a chart.
pub(crate) struct Series<'a> {
    /// Legend name.
    pub(crate) name: &'a str,
    /// CSS class (its colour).
    pub(crate) class: &'a str,
    /// Bars or line.
    pub(crate) mark: Mark,
    /// Its axis.
    pub(crate) axis: Axis,
    /// One value per day of the chart (`None`: no value that day).
    pub(crate) values: Vec<Option<f64>>,
    /// Formats axis ticks.
    pub(crate) tick: fn(f64) -> String,
    /// Formats a value in a tooltip.
    pub(crate) tooltip: fn(f64) -> String,
    /// Fixed top of its axis (100 for percentages); otherwise from the data.
    pub(crate) max: Option<f64>,
}

/// A chart over consecutive days.
pub(crate) struct Chart<'a> {
    /// Unique id on the page (for `aria-labelledby`).
    pub(crate) id: &'a str,
    /// Title.
    pub(crate) title: &'a str,
    /// Start of each day, in milliseconds since the epoch.
    pub(crate) days: &'a [i64],
    /// What is drawn.
    pub(crate) series: Vec<Series<'a>>,
}

/// A value for an SVG attribute.
fn n(v: f64) -> String {
    format!("{v:.1}")
}

/// A round axis top at or above `max`, and a step giving at most five ticks above zero.
pub(crate) fn nice_scale(max: f64) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let normalized = raw / magnitude;
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|n| normalized <= *n)
        .unwrap_or(10.0);
    let step = nice * magnitude;
    ((max / step).ceil() * step, step)
}

struct Scale {
    top: f64,
    step: f64,
}

impl Scale {
    fn of(series: &[&Series<'_>]) -> Option<Scale> {
        if series.is_empty() {
            return None;
        }
        let fixed = series.iter().filter_map(|s| s.max).reduce(f64::max);
        let (top, step) = match fixed {
            Some(top) => (top, top / 4.0),
            None => nice_scale(
                series
                    .iter()
                    .flat_map(|s| s.values.iter().flatten())
                    .copied()
                    .filter(|v| v.is_finite())
                    .fold(0.0, f64::max),
            ),
        };
        Some(Scale { top, step })
    }

    fn y(&self, v: f64) -> f64 {
        let plot = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
        let v = v.clamp(0.0, self.top);
        MARGIN_TOP + plot - v / self.top * plot
    }

    fn ticks(&self) -> Vec<f64> {
        let count = (self.top / self.step).round() as usize;
        (0..=count.min(10)).map(|i| i as f64 * self.step).collect()
    }
}

/// The chart, or a short note when there are no days.
pub(crate) fn chart(c: &Chart<'_>) -> Markup {
    if c.days.is_empty() {
        return html! { p.empty { "No data for " (c.title.to_lowercase()) " yet." } };
    }
    let days = c.days.len();
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let bottom = HEIGHT - MARGIN_BOTTOM;
    let band = plot_w / days as f64;
    let x = |i: usize| MARGIN_LEFT + band * (i as f64 + 0.5);
    let on =
        |axis: Axis| -> Vec<&Series<'_>> { c.series.iter().filter(|s| s.axis == axis).collect() };
    let left = Scale::of(&on(Axis::Left));
    let right = Scale::of(&on(Axis::Right));
    let scale_of = |axis: Axis| match axis {
        Axis::Left => left.as_ref(),
        Axis::Right => right.as_ref(),
    };
    let label_every = days.div_ceil(MAX_DAY_LABELS);
    let first = c.days.first().copied().unwrap_or_default();
    let last = c.days.last().copied().unwrap_or_default();
    let title_id = format!("{}-title", c.id);
    let desc_id = format!("{}-desc", c.id);
    html! {
        figure.chart id=(c.id) data-days=(days) {
            svg.chart-svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
                aria-labelledby={ (title_id) " " (desc_id) } preserveAspectRatio="xMidYMid meet" {
                title id=(title_id) { (c.title) }
                desc id=(desc_id) {
                    (days) " days, " (format::day_label(first)) " to " (format::day_label(last)) " (UTC)"
                }
                // Grid and left axis.
                @if let Some(scale) = &left {
                    g.axis.axis-left {
                        @for t in scale.ticks() {
                            line.gridline x1=(n(MARGIN_LEFT)) x2=(n(WIDTH - MARGIN_RIGHT)) y1=(n(scale.y(t))) y2=(n(scale.y(t))) {}
                            text.tick x=(n(MARGIN_LEFT - 6.0)) y=(n(scale.y(t) + 4.0)) text-anchor="end" {
                                (c.series.iter().find(|s| s.axis == Axis::Left).map(|s| (s.tick)(t)).unwrap_or_default())
                            }
                        }
                        line.axis-line x1=(n(MARGIN_LEFT)) x2=(n(MARGIN_LEFT)) y1=(n(MARGIN_TOP)) y2=(n(bottom)) {}
                    }
                }
                @if let Some(scale) = &right {
                    g.axis.axis-right {
                        @for t in scale.ticks() {
                            text.tick x=(n(WIDTH - MARGIN_RIGHT + 6.0)) y=(n(scale.y(t) + 4.0)) text-anchor="start" {
                                (c.series.iter().find(|s| s.axis == Axis::Right).map(|s| (s.tick)(t)).unwrap_or_default())
                            }
                        }
                        line.axis-line x1=(n(WIDTH - MARGIN_RIGHT)) x2=(n(WIDTH - MARGIN_RIGHT)) y1=(n(MARGIN_TOP)) y2=(n(bottom)) {}
                    }
                }
                g.axis.axis-x {
                    line.axis-line x1=(n(MARGIN_LEFT)) x2=(n(WIDTH - MARGIN_RIGHT)) y1=(n(bottom)) y2=(n(bottom)) {}
                    @for (i, day) in c.days.iter().enumerate() {
                        @if i % label_every == 0 {
                            text.tick.day x=(n(x(i))) y=(n(bottom + 16.0)) text-anchor="middle" { (format::day_label(*day)) }
                        }
                    }
                }
                // Bars first, lines on top.
                @for series in c.series.iter().filter(|s| s.mark == Mark::Bars) {
                    @if let Some(scale) = scale_of(series.axis) {
                        g class={ "series bars " (series.class) } data-series=(series.name) {
                            @for (i, value) in series.values.iter().enumerate() {
                                @if let Some(v) = value.filter(|v| v.is_finite()) {
                                    rect.bar x=(n(x(i) - band * 0.3)) y=(n(scale.y(v))) width=(n(band * 0.6))
                                        height=(n(bottom - scale.y(v))) {
                                        title { (format::day_label(c.days[i])) ": " ((series.tooltip)(v)) " " (series.name.to_lowercase()) }
                                    }
                                }
                            }
                        }
                    }
                }
                @for series in c.series.iter().filter(|s| s.mark == Mark::Line) {
                    @if let Some(scale) = scale_of(series.axis) {
                        @let points: Vec<(usize, f64)> = series.values.iter().enumerate()
                            .filter_map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (i, v))).collect();
                        g class={ "series line " (series.class) } data-series=(series.name) {
                            polyline.line fill="none" points=(points.iter().map(|(i, v)| format!("{},{}", n(x(*i)), n(scale.y(*v)))).collect::<Vec<_>>().join(" ")) {}
                            @for (i, v) in &points {
                                circle.point cx=(n(x(*i))) cy=(n(scale.y(*v))) r="3.5" {
                                    title { (format::day_label(c.days[*i])) ": " ((series.tooltip)(*v)) " " (series.name.to_lowercase()) }
                                }
                            }
                        }
                    }
                }
                g.legend {
                    @for (i, series) in c.series.iter().enumerate() {
                        @let lx = MARGIN_LEFT + i as f64 * 170.0;
                        rect class={ "swatch " (series.class) } x=(n(lx)) y="10" width="12" height="12" {}
                        text.legend-label x=(n(lx + 18.0)) y="20" { (series.name) }
                    }
                }
            }
            figcaption { (c.title) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(text: &str, needle: &str) -> usize {
        text.matches(needle).count()
    }

    #[test]
    fn scales_are_round() {
        assert_eq!(nice_scale(7.0), (8.0, 2.0));
        assert_eq!(nice_scale(10.0), (10.0, 2.5));
        assert_eq!(nice_scale(0.0), (1.0, 0.25));
        assert_eq!(nice_scale(1234.0), (1500.0, 500.0));
        assert_eq!(nice_scale(f64::NAN), (1.0, 0.25));
    }

    #[test]
    fn axes_labels_and_points() {
        let days: Vec<i64> = (0..5).map(|d| 1_704_067_200_000 + d * 86_400_000).collect();
        let c = Chart {
            id: "games",
            title: "Games <per> day",
            days: &days,
            series: vec![
                Series {
                    name: "Games",
                    class: "series-a",
                    mark: Mark::Bars,
                    axis: Axis::Left,
                    values: vec![Some(3.0), Some(5.0), None, Some(1.0), Some(7.0)],
                    tick: format::count,
                    tooltip: format::count,
                    max: None,
                },
                Series {
                    name: "Win rate",
                    class: "series-b",
                    mark: Mark::Line,
                    axis: Axis::Right,
                    values: vec![Some(33.0), Some(60.0), None, Some(100.0), Some(42.0)],
                    tick: format::percent,
                    tooltip: format::percent,
                    max: Some(100.0),
                },
            ],
        };
        let svg = chart(&c).into_string();
        assert_eq!(
            count(&svg, "<rect class=\"bar\""),
            4,
            "one bar per day with a value"
        );
        assert_eq!(
            count(&svg, "<circle class=\"point\""),
            4,
            "one point per day with a value"
        );
        assert_eq!(count(&svg, "<polyline"), 1);
        assert_eq!(
            count(&svg, "class=\"axis-line\""),
            3,
            "left, right and x axes"
        );
        assert_eq!(count(&svg, "class=\"tick day\""), 5, "a label per day");
        for label in ["Jan 1", "Jan 5", ">8<", ">0<", ">100%<", ">50%<"] {
            assert!(svg.contains(label), "missing {label} in {svg}");
        }
        assert!(svg.contains("Games &lt;per&gt; day"), "titles are escaped");
        assert!(svg.contains("data-days=\"5\""));
        assert!(svg.contains("Jan 2: 5 games"));
    }

    #[test]
    fn many_days_get_fewer_labels_and_no_days_a_note() {
        let days: Vec<i64> = (0..30).map(|d| d * 86_400_000).collect();
        let c = Chart {
            id: "kda",
            title: "KDA",
            days: &days,
            series: vec![Series {
                name: "KDA",
                class: "series-c",
                mark: Mark::Line,
                axis: Axis::Left,
                values: days.iter().map(|_| Some(1.5)).collect(),
                tick: format::ratio,
                tooltip: format::ratio,
                max: None,
            }],
        };
        let svg = chart(&c).into_string();
        assert_eq!(count(&svg, "class=\"tick day\""), 8);
        assert_eq!(count(&svg, "<circle class=\"point\""), 30);
        assert_eq!(count(&svg, "class=\"axis-line\""), 2);
        let empty = chart(&Chart { days: &[], ..c }).into_string();
        assert!(empty.contains("No data for kda yet."));
    }
}
