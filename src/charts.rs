//! Dashboard charts: accessible, inline-safe SVG strings (line and bar charts) rendered with plotters.

// Escaping: text drawn by plotters (titles, legend, axis and category labels) is handed over raw,
// because plotters' SVG backend XML-escapes text content and attribute values itself (pre-escaping
// would show `&amp;lt;` to users); the tests below pin that behaviour. Text this module writes on
// its own (the root's `aria-label`, the `<title>` and the fallback SVG) goes through `escape_xml`.
// Control characters are removed from all user text first, since XML cannot carry them at all.
// Fonts: without plotters' `ttf`/`ab_glyph` features no font is loaded; text sizes are estimated
// from character counts and browsers lay out the `<text>` elements themselves.
// Sizes are clamped to 160x100 ..= 4096x4096 pixels.

use std::error::Error;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One line of a time chart.
pub struct Series {
    pub label: String,
    pub points: Vec<(DateTime<Utc>, f64)>,
}

/// A line chart over time (x = time, y = value), one line per series, with a legend when
/// there is more than one series. Empty or all-zero data still renders axes and a
/// "No data" note.
pub fn time_chart(title: &str, series: &[Series], width: u32, height: u32) -> String {
    time_chart_with(title, series, &TimeChartOptions::default(), width, height)
}

/// A value drawn across a time chart as a dashed line, such as a limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As the legend and the description name it ("Limit: 60,000 tokens per day").
    pub label: String,
    pub value: f64,
}

/// What a usage chart adds to a plain time chart.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeChartOptions {
    /// What the values count ("tokens per day"), written along the value axis.
    pub unit: Option<String>,
    /// Drawn as a dashed line across the chart, named in the legend and the description.
    pub threshold: Option<Threshold>,
    /// Where the bucket still filling starts (today's): its points are drawn hollow and
    /// reached by dashed lines, and labelled with `partial_label`.
    pub partial_from: Option<DateTime<Utc>>,
    /// "today so far".
    pub partial_label: String,
    /// Whose wall clock the time axis and the description read (UTC when unset): a
    /// customer's, when the buckets are its days.
    pub zone: Option<Tz>,
}

/// [`time_chart`] with a unit on the value axis, a threshold line and the last bucket marked
/// as still filling.
pub fn time_chart_with(title: &str, series: &[Series], options: &TimeChartOptions, width: u32, height: u32) -> String {
    let (width, height) = clamp_size(width, height);
    let title = clean_text(title);
    let lines: Vec<Line> = series.iter().enumerate().map(|(i, s)| Line::new(i, s)).collect();
    let extras = Extras::new(options);
    let aria = time_aria_label(&title, &lines, &extras);
    render(width, height, &title, &aria, |root| draw_time_chart(root, &title, &lines, &extras, width, height))
}

/// A horizontal or vertical bar chart of named values (e.g. top customers by usage),
/// in the given order.
///
/// Bars are horizontal (names read on the left, first item on top), which keeps long customer
/// names legible.
pub fn bar_chart(title: &str, bars: &[(String, f64)], width: u32, height: u32) -> String {
    let (width, height) = clamp_size(width, height);
    let title = clean_text(title);
    let bars: Vec<(String, f64)> = bars.iter().map(|(name, value)| (clean_text(name), clean_value(*value))).collect();
    let aria = bar_aria_label(&title, &bars);
    render(width, height, &title, &aria, |root| draw_bar_chart(root, &title, &bars, width, height))
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn Error>>;

/// Line colours, in order of use; each has at least 4.5:1 contrast on white.
const PALETTE: [RGBColor; 6] = [
    RGBColor(0x25, 0x63, 0xEB), // blue
    RGBColor(0xB4, 0x53, 0x09), // amber
    RGBColor(0x7C, 0x3A, 0xED), // violet
    RGBColor(0x04, 0x78, 0x57), // green
    RGBColor(0xBE, 0x18, 0x5D), // pink
    RGBColor(0x0E, 0x74, 0x90), // teal
];
/// The threshold line: a red set apart from the palette's, 6:1 on white.
const THRESHOLD_COLOR: RGBColor = RGBColor(0xB9, 0x1C, 0x1C);
const TEXT_COLOR: RGBColor = RGBColor(0x1F, 0x29, 0x37);
const LABEL_COLOR: RGBColor = RGBColor(0x4B, 0x55, 0x63);
const GRID_COLOR: RGBColor = RGBColor(0xE5, 0xE7, 0xEB);
const AXIS_COLOR: RGBColor = RGBColor(0x9C, 0xA3, 0xAF);
const FONT: &str = "sans-serif";

const MIN_WIDTH: u32 = 160;
const MIN_HEIGHT: u32 = 100;
const MAX_SIDE: u32 = 4096;
/// Outer padding, in pixels.
const PAD: i32 = 12;
const TITLE_PX: f64 = 14.0;
const LABEL_PX: f64 = 11.0;
const LEGEND_ROW: i32 = 18;
const LEGEND_MAX_ROWS: i32 = 3;
const X_LABEL_AREA: i32 = 24;
/// Values are clamped to this magnitude so that range arithmetic stays finite.
const MAX_VALUE: f64 = 1e300;
const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_DAY: i64 = 86_400_000;

/// A text style whose rendered `font-size` is `px`: plotters' SVG backend writes `size / 1.24`.
fn font(px: f64, color: RGBColor) -> TextStyle<'static> {
    (FONT, px * 1.24).into_font().color(&color)
}

/// A rough width of `text` at `px`, matching plotters' own estimate closely enough for layout.
fn text_width(text: &str, px: f64) -> i32 {
    (text.chars().count() as f64 * px * 0.55).ceil() as i32
}

fn clamp_size(width: u32, height: u32) -> (u32, u32) {
    (width.clamp(MIN_WIDTH, MAX_SIDE), height.clamp(MIN_HEIGHT, MAX_SIDE))
}

fn clean_value(value: f64) -> f64 {
    if value.is_finite() {
        value.clamp(-MAX_VALUE, MAX_VALUE)
    } else {
        0.0
    }
}

/// Removes characters XML cannot carry (and line breaks, which SVG text does not honour) and
/// collapses whitespace.
fn clean_text(text: &str) -> String {
    let replaced: String =
        text.chars().map(|c| if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' { ' ' } else { c }).collect();
    replaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Escapes text for XML character data and double- or single-quoted attribute values.
fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            other => out.push(other),
        }
    }
    out
}

/// Draws with plotters into a string, then adds the accessibility attributes. Any drawing error
/// or panic inside plotters yields the fallback SVG instead.
fn render(width: u32, height: u32, title: &str, aria: &str, draw: impl FnOnce(&Area) -> DrawResult) -> String {
    let mut buf = String::new();
    let outcome = catch_unwind(AssertUnwindSafe(|| -> DrawResult {
        let root = SVGBackend::with_string(&mut buf, (width, height)).into_drawing_area();
        draw(&root)?;
        root.present()?;
        Ok(())
    }));
    match outcome {
        Ok(Ok(())) => add_accessibility(&buf, title, aria).unwrap_or_else(|| fallback_svg(title, width, height)),
        _ => fallback_svg(title, width, height),
    }
}

/// Adds `role`, `aria-label` and a `<title>` to plotters' root `<svg>` element.
fn add_accessibility(svg: &str, title: &str, aria: &str) -> Option<String> {
    let svg = svg.trim();
    if !svg.starts_with("<svg ") || !svg.ends_with("</svg>") {
        return None;
    }
    // plotters writes the root tag itself with numeric attributes only, so its first `>` ends it.
    let end = svg.find('>')?;
    let (head, rest) = svg.split_at(end);
    if head.ends_with('/') {
        return None;
    }
    let title = if title.is_empty() { "Chart" } else { title };
    Some(format!(
        "{head} role=\"img\" aria-label=\"{}\">\n<title>{}</title>{}",
        escape_xml(aria),
        escape_xml(title),
        &rest[1..]
    ))
}

/// A minimal chart-shaped SVG for when drawing fails.
fn fallback_svg(title: &str, width: u32, height: u32) -> String {
    let title = escape_xml(if title.is_empty() { "Chart" } else { title });
    format!(
        "<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{title}: chart unavailable\">\n\
         <title>{title}</title>\n\
         <rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#FFFFFF\"/>\n\
         <text x=\"50%\" y=\"50%\" text-anchor=\"middle\" font-family=\"sans-serif\" font-size=\"13\" \
         fill=\"#4B5563\">chart unavailable</text>\n</svg>"
    )
}

/// Formats a value compactly: `950`, `1.5k`, `12.35M`, `1B`, `0.0125`.
fn format_value(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return "0".to_string();
    }
    const UNITS: [(f64, &str); 5] = [(1e15, "P"), (1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")];
    let magnitude = value.abs();
    if magnitude >= 1e18 {
        return format!("{value:.2e}");
    }
    let (scale, suffix) = UNITS.iter().copied().find(|(scale, _)| magnitude >= *scale).unwrap_or((1.0, ""));
    let scaled = value / scale;
    let decimals = if scaled.abs() >= 1.0 { 2 } else { (2.0 - scaled.abs().log10().floor()).clamp(0.0, 9.0) as usize };
    let mut text = format!("{scaled:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    // Rounding can carry a value into the next unit (999.999 -> "1000k").
    let carried = text.trim_start_matches('-').starts_with("1000") && !text.contains('.');
    if carried && !suffix.is_empty() && scale < 1e15 {
        return format_value(value.signum() * scale * 1000.0);
    }
    if text == "-0" {
        text = "0".to_string();
    }
    format!("{text}{suffix}")
}

/// The value-axis range: always includes zero, padded away from it, never empty.
fn value_range(values: impl Iterator<Item = f64>) -> (f64, f64, bool) {
    let (mut lo, mut hi, mut nonzero) = (0.0_f64, 0.0_f64, false);
    for value in values {
        lo = lo.min(value);
        hi = hi.max(value);
        nonzero |= value != 0.0;
    }
    if hi - lo <= 0.0 {
        return (0.0, 1.0, nonzero);
    }
    let pad = (hi - lo) * 0.08;
    if hi > 0.0 {
        hi += pad;
    }
    if lo < 0.0 {
        lo -= pad;
    }
    (lo, hi, nonzero)
}

/// Maps `fraction` (0 at `limit.0`, 1 at `limit.1`) to a pixel.
fn lerp(fraction: f64, limit: (i32, i32)) -> i32 {
    let fraction = if fraction.is_finite() { fraction } else { 0.0 };
    (f64::from(limit.0) + fraction * f64::from(limit.1 - limit.0)).round() as i32
}

/// Keeps at most `max` evenly spaced items.
fn thin<T: Clone>(items: &[T], max: usize) -> Vec<T> {
    if max == 0 {
        return Vec::new();
    }
    let step = items.len().div_ceil(max).max(1);
    items.iter().step_by(step).cloned().collect()
}

fn draw_title(root: &Area, title: &str, width: u32) -> Result<i32, Box<dyn Error>> {
    let max_chars = ((f64::from(width) - f64::from(2 * PAD)) / (TITLE_PX * 0.55)).max(4.0) as usize;
    let text = truncate(title, max_chars);
    let style =
        (FONT, TITLE_PX * 1.24, FontStyle::Bold).into_font().color(&TEXT_COLOR).pos(Pos::new(HPos::Left, VPos::Top));
    root.draw(&Text::new(text, (PAD, PAD - 2), style))?;
    Ok(PAD + 22)
}

fn draw_no_data<X: Ranged, Y: Ranged>(root: &Area, plot: &DrawingArea<SVGBackend, Cartesian2d<X, Y>>) -> DrawResult {
    let (xs, ys) = plot.get_pixel_range();
    let center = ((xs.start + xs.end) / 2, (ys.start + ys.end) / 2);
    let style = font(13.0, LABEL_COLOR).pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new("No data", center, style))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Time chart
// ---------------------------------------------------------------------------------------------

/// A series prepared for drawing: clean label, millisecond timestamps in time order.
struct Line {
    label: String,
    points: Vec<(i64, f64)>,
}

impl Line {
    fn new(index: usize, series: &Series) -> Self {
        let label = clean_text(&series.label);
        let label = if label.is_empty() { format!("Series {}", index + 1) } else { label };
        let mut points: Vec<(i64, f64)> =
            series.points.iter().map(|(at, value)| (at.timestamp_millis(), clean_value(*value))).collect();
        points.sort_by_key(|(at, _)| *at);
        Line { label, points }
    }
}

fn time_span(lines: &[Line]) -> Option<(i64, i64)> {
    let first = lines.iter().filter_map(|l| l.points.first().map(|p| p.0)).min()?;
    let last = lines.iter().filter_map(|l| l.points.last().map(|p| p.0)).max()?;
    Some((first, last))
}

/// The x range: the data's span, widened around its middle to at least ten minutes (two hours for
/// a single instant).
fn time_range(span: (i64, i64)) -> (i64, i64) {
    let (first, last) = span;
    let length = last.saturating_sub(first);
    let min_length = if length == 0 { 120 * MS_PER_MINUTE } else { 10 * MS_PER_MINUTE };
    if length >= min_length {
        return (first, last);
    }
    let middle = first + length / 2;
    (middle.saturating_sub(min_length / 2), middle.saturating_add(min_length / 2))
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum TickLabel {
    /// `14:00`
    Clock,
    /// `Mar 10`
    Day,
    /// `Mar 2025`
    Month,
}

impl TickLabel {
    #[cfg(test)]
    fn format(self, at_ms: i64) -> String {
        self.format_in(at_ms, Tz::UTC)
    }

    /// The label of a tick as the wall clock of `zone` reads it.
    fn format_in(self, at_ms: i64, zone: Tz) -> String {
        let Some(at) = DateTime::<Utc>::from_timestamp_millis(at_ms) else { return String::new() };
        let pattern = match self {
            TickLabel::Clock => "%H:%M",
            TickLabel::Day => "%b %-d",
            TickLabel::Month => "%b %Y",
        };
        at.with_timezone(&zone).format(pattern).to_string()
    }
}

/// Tick instants (UTC) for `[start, end]`, at most `max` of them, aligned to whole minutes, hours,
/// days, weeks (Mondays) or months (labelled with the year, as such spans may cross one).
#[cfg(test)]
fn time_ticks(start: i64, end: i64, max: usize) -> (Vec<i64>, TickLabel) {
    zoned_time_ticks(start, end, max, 0)
}

/// [`time_ticks`] on the wall clock of a zone `shift` milliseconds ahead of UTC (its offset
/// at the chart's start: across a daylight-saving change, ticks after it are an hour off).
fn zoned_time_ticks(start: i64, end: i64, max: usize, shift: i64) -> (Vec<i64>, TickLabel) {
    let max = max.max(2);
    if end.saturating_sub(start) < 2 * MS_PER_DAY {
        for minutes in [1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 720, 1440] {
            if let Some(ticks) = stepped_ticks(start, end, minutes * MS_PER_MINUTE, -shift, max) {
                return (ticks, TickLabel::Clock);
            }
        }
        return (Vec::new(), TickLabel::Clock);
    }
    // 1970-01-05 was a Monday: weekly ticks are offset four days from the epoch.
    for (days, offset) in [(1, 0), (2, 0), (7, 4), (14, 4)] {
        if let Some(ticks) = stepped_ticks(start, end, days * MS_PER_DAY, offset * MS_PER_DAY - shift, max) {
            return (ticks, TickLabel::Day);
        }
    }
    for months in [1, 2, 3, 6, 12, 24, 60, 120, 240, 600, 1200, 2400, 6000, 12000, 24000, 60000] {
        if let Some(ticks) = month_ticks(start.saturating_add(shift), end.saturating_add(shift), months, max) {
            return (ticks.into_iter().map(|t| t - shift).collect(), TickLabel::Month);
        }
    }
    (Vec::new(), TickLabel::Month)
}

/// Multiples of `step` (shifted by `offset`) within `[start, end]`, or `None` if more than `max`.
fn stepped_ticks(start: i64, end: i64, step: i64, offset: i64, max: usize) -> Option<Vec<i64>> {
    let mut tick = (start.checked_sub(offset)?.div_euclid(step) + 1).checked_mul(step)?.checked_add(offset)?;
    if tick - step >= start {
        tick -= step;
    }
    let mut ticks = Vec::new();
    while tick <= end {
        if ticks.len() == max {
            return None;
        }
        ticks.push(tick);
        tick = tick.checked_add(step)?;
    }
    Some(ticks)
}

/// First days of months whose index is a multiple of `step`, within `[start, end]`.
fn month_ticks(start: i64, end: i64, step: i32, max: usize) -> Option<Vec<i64>> {
    let first = DateTime::<Utc>::from_timestamp_millis(start)?;
    let mut month = first.year().checked_mul(12)?.checked_add(first.month0() as i32)?;
    month = month.div_euclid(step) * step;
    let mut ticks = Vec::new();
    loop {
        let date = NaiveDate::from_ymd_opt(month.div_euclid(12), month.rem_euclid(12) as u32 + 1, 1)?;
        let at = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
        if at > end {
            return Some(ticks);
        }
        if at >= start {
            if ticks.len() == max {
                return None;
            }
            ticks.push(at);
        }
        month = month.checked_add(step)?;
    }
}

/// The time axis: linear in milliseconds, with precomputed calendar-aligned key points.
struct TimeAxis {
    start: i64,
    end: i64,
    ticks: Vec<i64>,
}

impl Ranged for TimeAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = i64;

    fn map(&self, value: &i64, limit: (i32, i32)) -> i32 {
        let length = self.end as f64 - self.start as f64;
        lerp(if length > 0.0 { (*value as f64 - self.start as f64) / length } else { 0.5 }, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<i64> {
        thin(&self.ticks, hint.max_num_points())
    }

    fn range(&self) -> Range<i64> {
        self.start..self.end
    }
}

/// The options of [`time_chart_with`], cleaned for drawing.
struct Extras {
    unit: Option<String>,
    threshold: Option<(String, f64)>,
    partial_from: Option<i64>,
    partial_label: String,
    zone: Tz,
}

impl Extras {
    fn new(options: &TimeChartOptions) -> Extras {
        Extras {
            unit: options.unit.as_deref().map(clean_text).filter(|u| !u.is_empty()),
            threshold: options.threshold.as_ref().map(|t| (clean_text(&t.label), clean_value(t.value))),
            partial_from: options.partial_from.map(|at| at.timestamp_millis()),
            partial_label: clean_text(&options.partial_label),
            zone: options.zone.unwrap_or(Tz::UTC),
        }
    }
}

fn time_aria_label(title: &str, lines: &[Line], extras: &Extras) -> String {
    let name = if title.is_empty() { "Chart" } else { title };
    let Some((first, last)) = time_span(lines) else { return format!("{name}: line chart, no data") };
    let mut described = time_aria_span(name, lines, first, last, extras.zone);
    if let Some(unit) = &extras.unit {
        described.push_str(&format!(", in {unit}"));
    }
    if let Some((label, _)) = &extras.threshold {
        described.push_str(&format!("; dashed line: {label}"));
    }
    let partial = extras.partial_from.is_some_and(|from| lines.iter().any(|l| l.points.iter().any(|p| p.0 >= from)));
    if partial && !extras.partial_label.is_empty() {
        described.push_str(&format!("; the last point is {}", extras.partial_label));
    }
    described
}

fn time_aria_span(name: &str, lines: &[Line], first: i64, last: i64, zone: Tz) -> String {
    let date = |ms: i64| {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .map(|at| at.with_timezone(&zone).format("%b %-d, %Y %H:%M").to_string())
            .unwrap_or_default()
    };
    let labels: Vec<&str> = lines.iter().take(10).map(|l| l.label.as_str()).collect();
    let more =
        if lines.len() > labels.len() { format!(" and {} more", lines.len() - labels.len()) } else { String::new() };
    let count = if lines.len() == 1 { "1 series".to_string() } else { format!("{} series", lines.len()) };
    let zone = if zone == Tz::UTC { "UTC" } else { zone.name() };
    format!("{name}: line chart of {count} ({}{more}) from {} to {} {zone}", labels.join(", "), date(first), date(last))
}

/// Lays the legend out in rows below the title, the threshold (a dashed swatch) after the
/// lines; returns the y just below it.
fn draw_legend(
    root: &Area,
    lines: &[Line],
    threshold: Option<&str>,
    top: i32,
    width: u32,
) -> Result<i32, Box<dyn Error>> {
    let right = i32::try_from(width).unwrap_or(i32::MAX) - PAD;
    let style = font(LABEL_PX + 1.0, TEXT_COLOR).pos(Pos::new(HPos::Left, VPos::Center));
    let (mut x, mut row) = (PAD, 0);
    // As long as fits a row, up to 64 characters.
    let max_chars = (f64::from(right - PAD - 14) / ((LABEL_PX + 1.0) * 0.55)).clamp(8.0, 64.0) as usize;
    let items = lines
        .iter()
        .enumerate()
        .map(|(index, line)| (line.label.as_str(), Some(index)))
        .chain(threshold.map(|t| (t, None)));
    for (label, index) in items {
        let label = truncate(label, max_chars);
        let item_width = 14 + text_width(&label, LABEL_PX + 1.0);
        if x > PAD && x + item_width > right {
            row += 1;
            x = PAD;
        }
        if row == LEGEND_MAX_ROWS {
            break;
        }
        let y = top + row * LEGEND_ROW + LEGEND_ROW / 2;
        match index {
            Some(index) => {
                let color = PALETTE[index % PALETTE.len()];
                root.draw(&Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()))?;
            }
            None => {
                let stroke = THRESHOLD_COLOR.stroke_width(2);
                root.draw(&PathElement::new(vec![(x, y), (x + 3, y)], stroke))?;
                root.draw(&PathElement::new(vec![(x + 6, y), (x + 10, y)], stroke))?;
            }
        }
        root.draw(&Text::new(label, (x + 14, y), style.clone()))?;
        x += item_width + 16;
    }
    Ok(top + (row.min(LEGEND_MAX_ROWS - 1) + 1) * LEGEND_ROW + 4)
}

fn draw_time_chart(root: &Area, title: &str, lines: &[Line], extras: &Extras, width: u32, height: u32) -> DrawResult {
    root.fill(&WHITE)?;
    let mut top = draw_title(root, title, width)?;
    let threshold_label = extras.threshold.as_ref().map(|(label, _)| label.as_str());
    if lines.len() > 1 || threshold_label.is_some() {
        top = draw_legend(root, lines, threshold_label, top, width)?;
    }
    let (_, body) = root.split_vertically(top);

    let span = time_span(lines);
    let (start, end) = span.map(time_range).unwrap_or((0, 1));
    let threshold_value = extras.threshold.as_ref().map(|(_, value)| *value);
    let (lo, hi, nonzero) = value_range(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)).chain(threshold_value));

    let plot_height = i32::try_from(height).unwrap_or(i32::MAX) - top - X_LABEL_AREA - 8;
    let y_label_count = usize::try_from(plot_height / 30).unwrap_or(0).clamp(2, 8);
    let y_ticks = RangedCoordf64::from(lo..hi).key_points(y_label_count);
    // The unit reads up the value axis, left of its numbers.
    let unit_width = if extras.unit.is_some() { LABEL_PX as i32 + 8 } else { 0 };
    let y_label_width =
        y_ticks.iter().map(|v| text_width(&format_value(*v), LABEL_PX)).max().unwrap_or(0) + 14 + unit_width;
    let margin_right = 24;
    let plot_width = i32::try_from(width).unwrap_or(i32::MAX) - PAD - y_label_width - margin_right;
    let x_label_count = usize::try_from(plot_width / 90).unwrap_or(0).max(2);
    let shift = DateTime::<Utc>::from_timestamp_millis(start).map_or(0, |at| {
        i64::from(extras.zone.offset_from_utc_datetime(&at.naive_utc()).fix().local_minus_utc()) * 1000
    });
    let (ticks, tick_label) = if span.is_some() {
        zoned_time_ticks(start, end, x_label_count, shift)
    } else {
        (Vec::new(), TickLabel::Clock)
    };

    let mut chart = ChartBuilder::on(&body)
        .margin_top(8)
        .margin_bottom(4)
        .margin_left(PAD)
        .margin_right(margin_right)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(y_label_width)
        .build_cartesian_2d(TimeAxis { start, end, ticks }, lo..hi)?;

    let format_x = |at: &i64| tick_label.format_in(*at, extras.zone);
    let format_y = |value: &f64| format_value(*value);
    let mut mesh = chart.configure_mesh();
    mesh.x_labels(x_label_count)
        .y_labels(y_label_count)
        .x_label_formatter(&format_x)
        .y_label_formatter(&format_y)
        .bold_line_style(GRID_COLOR)
        .light_line_style(TRANSPARENT)
        .axis_style(AXIS_COLOR)
        .label_style(font(LABEL_PX, LABEL_COLOR));
    if let Some(unit) = &extras.unit {
        mesh.y_desc(truncate(unit, 40)).axis_desc_style(font(LABEL_PX, LABEL_COLOR));
    }
    mesh.draw()?;

    if let Some(value) = threshold_value {
        chart.draw_series(DashedLineSeries::new(
            [(start, value), (end, value)],
            6,
            4,
            THRESHOLD_COLOR.stroke_width(2),
        ))?;
    }
    let partial_from = extras.partial_from.unwrap_or(i64::MAX);
    for (index, line) in lines.iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        // Complete buckets solid; the one still filling reached by a dashed line, hollow.
        let split = line.points.partition_point(|p| p.0 < partial_from);
        let (complete, filling) = line.points.split_at(split);
        chart.draw_series(LineSeries::new(complete.iter().copied(), color.stroke_width(2)))?;
        if !filling.is_empty() {
            let dashed = complete.last().into_iter().chain(filling).copied().collect::<Vec<_>>();
            chart.draw_series(DashedLineSeries::new(dashed, 5, 4, color.stroke_width(2)))?;
            chart.draw_series(filling.iter().map(|p| Circle::new(*p, 4, color.stroke_width(2))))?;
        }
        if complete.len() <= 12 {
            chart.draw_series(complete.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
        }
    }
    let last_filling =
        lines.iter().filter_map(|l| l.points.last()).filter(|p| p.0 >= partial_from).max_by(|a, b| a.1.total_cmp(&b.1));
    if let (Some(point), false) = (last_filling, extras.partial_label.is_empty()) {
        let style = font(LABEL_PX, LABEL_COLOR).pos(Pos::new(HPos::Right, VPos::Bottom));
        chart.draw_series(std::iter::once(
            EmptyElement::at(*point) + Text::new(extras.partial_label.clone(), (-6, -6), style),
        ))?;
    }

    if !nonzero {
        draw_no_data(root, chart.plotting_area())?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Bar chart
// ---------------------------------------------------------------------------------------------

/// The category axis of a horizontal bar chart: item `i` occupies `[i, i + 1)`, first item on top.
struct Bands {
    count: usize,
}

impl Ranged for Bands {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        // `limit` runs bottom to top for the y axis; the first band belongs at the top.
        lerp(*value / self.count.max(1) as f64, (limit.1, limit.0))
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        let centers: Vec<f64> = (0..self.count).map(|i| i as f64 + 0.5).collect();
        thin(&centers, hint.max_num_points())
    }

    fn range(&self) -> Range<f64> {
        0.0..self.count.max(1) as f64
    }
}

fn bar_aria_label(title: &str, bars: &[(String, f64)]) -> String {
    let name = if title.is_empty() { "Chart" } else { title };
    if bars.is_empty() {
        return format!("{name}: bar chart, no data");
    }
    let items: Vec<String> =
        bars.iter().take(12).map(|(label, value)| format!("{label} {}", format_value(*value))).collect();
    let more =
        if bars.len() > items.len() { format!(", and {} more", bars.len() - items.len()) } else { String::new() };
    let count = if bars.len() == 1 { "1 bar".to_string() } else { format!("{} bars", bars.len()) };
    format!("{name}: bar chart of {count}: {}{more}", items.join(", "))
}

fn draw_bar_chart(root: &Area, title: &str, bars: &[(String, f64)], width: u32, height: u32) -> DrawResult {
    root.fill(&WHITE)?;
    let top = draw_title(root, title, width)?;
    let (_, body) = root.split_vertically(top);

    let count = bars.len();
    let (lo, hi, nonzero) = value_range(bars.iter().map(|b| b.1));
    let plot_height = i32::try_from(height).unwrap_or(i32::MAX) - top - X_LABEL_AREA - 8;
    let band = f64::from(plot_height.max(1)) / count.max(1) as f64;
    let label_px = (band * 0.7).clamp(8.0, LABEL_PX + 1.0);
    let label_count = usize::try_from(plot_height).unwrap_or(0) / (label_px as usize + 3);

    let names: Vec<String> = bars.iter().map(|(name, _)| truncate(name, 28)).collect();
    let values: Vec<String> = bars.iter().map(|(_, value)| format_value(*value)).collect();
    let show_values = band >= 9.0;
    let max_label_width = i32::try_from(width / 5 * 2).unwrap_or(i32::MAX);
    let name_width = names.iter().map(|n| text_width(n, label_px)).max().unwrap_or(0).clamp(24, max_label_width) + 12;
    let value_width =
        if show_values { values.iter().map(|v| text_width(v, LABEL_PX)).max().unwrap_or(0) + 8 } else { 0 };
    let plot_width = i32::try_from(width).unwrap_or(i32::MAX) - PAD - name_width - value_width - 20;
    let x_label_count = usize::try_from(plot_width / 70).unwrap_or(0).clamp(2, 10);

    let mut chart = ChartBuilder::on(&body)
        .margin_top(8)
        .margin_bottom(4)
        .margin_left(PAD)
        .margin_right(value_width + 20)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(name_width)
        .build_cartesian_2d(lo..hi, Bands { count })?;

    let format_x = |value: &f64| format_value(*value);
    let format_y = |center: &f64| names.get(center.floor() as usize).cloned().unwrap_or_default();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_labels(x_label_count)
        .y_labels(label_count)
        .x_label_formatter(&format_x)
        .y_label_formatter(&format_y)
        .bold_line_style(GRID_COLOR)
        .light_line_style(TRANSPARENT)
        .axis_style(AXIS_COLOR)
        .x_label_style(font(LABEL_PX, LABEL_COLOR))
        .y_label_style(font(label_px, TEXT_COLOR))
        .draw()?;

    let color = PALETTE[0];
    chart.draw_series(
        bars.iter()
            .enumerate()
            .map(|(i, (_, value))| Rectangle::new([(0.0, i as f64 + 0.18), (*value, i as f64 + 0.82)], color.filled())),
    )?;
    if show_values {
        let right = font(LABEL_PX, TEXT_COLOR).pos(Pos::new(HPos::Left, VPos::Center));
        let left = font(LABEL_PX, TEXT_COLOR).pos(Pos::new(HPos::Right, VPos::Center));
        chart.draw_series(bars.iter().zip(&values).enumerate().map(|(i, ((_, value), text))| {
            let (offset, style) = if *value < 0.0 { (-4, left.clone()) } else { (4, right.clone()) };
            EmptyElement::at((*value, i as f64 + 0.5)) + Text::new(text.clone(), (offset, 0), style)
        }))?;
    }

    if !nonzero {
        draw_no_data(root, chart.plotting_area())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const HOSTILE: &str = "<script>alert(1)</script> & \"x\"";
    const HOSTILE_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;";

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, day, hour, 0, 0).single().unwrap()
    }

    fn series(label: &str, points: &[(DateTime<Utc>, f64)]) -> Series {
        Series { label: label.to_string(), points: points.to_vec() }
    }

    fn daily(label: &str, values: &[f64]) -> Series {
        let points: Vec<_> = values.iter().enumerate().map(|(i, v)| (at(1 + i as u32, 0), *v)).collect();
        series(label, &points)
    }

    fn count(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    /// Series lines: polylines in the 2px data stroke (axes and ticks are 1px polylines).
    fn data_lines(svg: &str) -> usize {
        svg.split("<polyline")
            .skip(1)
            .filter(|p| p.split('>').next().unwrap_or("").contains("stroke-width=\"2\""))
            .count()
    }

    /// Text content of all `<text>` elements, unescaped only as far as needed to compare.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|part| {
                let body = part.split_once('>')?.1;
                Some(body.split_once("</text>")?.0.trim().to_string())
            })
            .collect()
    }

    /// A small XML well-formedness check: one root `<svg>` element that wraps everything, balanced
    /// tags, quoted attributes, only known entities, and no raw `<` or `>` in text.
    fn assert_well_formed(svg: &str) {
        let svg = svg.trim();
        assert!(svg.starts_with("<svg"), "does not start with <svg: {svg:.80}");
        assert!(svg.ends_with("</svg>"), "does not end with </svg>");
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        let mut closed_root = false;
        while !rest.is_empty() {
            assert!(!closed_root || rest.trim().is_empty(), "content after the root element: {rest:.80}");
            if let Some(after) = rest.strip_prefix('<') {
                let end = after.find('>').expect("unterminated tag");
                let tag = &after[..end];
                assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
                if let Some(name) = tag.strip_prefix('/') {
                    let open = stack.pop().expect("closing tag without an open one");
                    assert_eq!(open, name.trim(), "mismatched closing tag");
                    closed_root = stack.is_empty();
                } else {
                    let self_closing = tag.ends_with('/');
                    let tag = tag.trim_end_matches('/');
                    let name = tag.split_whitespace().next().expect("tag without name");
                    assert!(name.chars().all(|c| c.is_ascii_alphanumeric()), "odd tag name {name}");
                    assert!(name != "script" && !name.starts_with("script"), "script element");
                    let attrs = &tag[name.len()..];
                    assert_eq!(count(attrs, "\"") % 2, 0, "unbalanced quotes in <{tag}>");
                    for piece in attrs.split('"').step_by(2) {
                        let piece = piece.trim();
                        assert!(piece.is_empty() || piece.ends_with('='), "unquoted attribute in <{tag}>");
                    }
                    assert!(!stack.is_empty() || name == "svg", "root element is <{name}>");
                    if !self_closing {
                        stack.push(name.to_string());
                    }
                }
                rest = &after[end + 1..];
            } else {
                let end = rest.find('<').unwrap_or(rest.len());
                let text = &rest[..end];
                assert!(!text.contains('>'), "raw '>' in text: {text}");
                for entity in text.split('&').skip(1) {
                    let known = ["lt;", "gt;", "amp;", "quot;", "apos;"].iter().any(|e| entity.starts_with(e));
                    assert!(known, "unknown entity in text: &{entity:.10}");
                }
                rest = &rest[end..];
            }
        }
        assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    }

    fn assert_chart_shell(svg: &str) {
        assert_well_formed(svg);
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("aria-label=\""));
        assert_eq!(count(svg, "<title>"), 1);
        assert!(!svg.contains("chart unavailable"), "fell back: {svg}");
    }

    #[test]
    fn hostile_time_chart_title_and_labels_are_escaped() {
        let lines = [daily(HOSTILE, &[1.0, 2.0]), daily(HOSTILE, &[3.0, 1.0])];
        let svg = time_chart(HOSTILE, &lines, 640, 240);
        assert_chart_shell(&svg);
        assert!(!svg.contains("<script"));
        assert!(!svg.contains(HOSTILE));
        // Drawn title, two legend entries, the <title> element and the aria-label.
        assert!(count(&svg, HOSTILE_ESCAPED) >= 4, "{svg}");
        assert!(svg.contains(&format!("<title>{HOSTILE_ESCAPED}</title>")));
        assert!(svg.contains(&format!("aria-label=\"{HOSTILE_ESCAPED}: line chart")));
        assert!(!svg.contains("&amp;lt;"), "double-escaped");
    }

    #[test]
    fn hostile_bar_chart_title_and_category_names_are_escaped() {
        let bars = vec![(HOSTILE.to_string(), 5.0), ("'single' quotes".to_string(), 2.0)];
        let svg = bar_chart(HOSTILE, &bars, 640, 240);
        assert_chart_shell(&svg);
        assert!(!svg.contains("<script"));
        assert!(!svg.contains(HOSTILE));
        let texts = texts(&svg);
        // The drawn title in full; the category name cut to fit ("…&lt;/script&gt; &amp;…").
        assert!(texts.iter().any(|t| t == HOSTILE_ESCAPED), "{texts:?}");
        assert!(texts.iter().any(|t| *t == escape_xml(&truncate(HOSTILE, 28))), "{texts:?}");
        assert!(svg.contains(&format!("<title>{HOSTILE_ESCAPED}</title>")));
        assert!(svg.contains("&apos;single&apos; quotes"));
        assert!(!svg.contains("&amp;lt;"), "double-escaped");
    }

    #[test]
    fn markup_cannot_break_out_of_attributes_or_the_svg() {
        let nasty = "\"/><svg onload=alert(1)><foreignObject>\u{0}\u{7}\n]]><!--";
        let svg = time_chart(nasty, &[daily(nasty, &[1.0]), daily("b", &[2.0])], 400, 200);
        assert_chart_shell(&svg);
        assert_eq!(count(&svg, "<svg"), 1);
        assert!(!svg.contains("<foreignObject"));
        assert!(!svg.contains('\u{0}') && !svg.contains('\u{7}'));
        let svg = bar_chart(nasty, &[(nasty.to_string(), 1.0)], 400, 200);
        assert_chart_shell(&svg);
        assert_eq!(count(&svg, "<svg"), 1);
        assert!(!svg.contains("<!--"));
    }

    #[test]
    fn output_is_a_single_accessible_svg_element() {
        for svg in [
            time_chart("Requests", &[daily("api", &[1.0, 4.0, 2.0])], 720, 240),
            bar_chart("Top customers", &[("acme".to_string(), 10.0)], 720, 240),
        ] {
            assert_chart_shell(&svg);
            let trimmed = svg.trim();
            assert!(trimmed.starts_with("<svg ") && trimmed.ends_with("</svg>"));
            assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
            assert!(svg.contains("viewBox=\"0 0 720 240\""));
        }
    }

    #[test]
    fn aria_label_describes_the_chart() {
        let svg = time_chart("Tokens", &[daily("in", &[1.0, 2.0]), daily("out", &[2.0, 1.0])], 720, 240);
        assert!(svg.contains("aria-label=\"Tokens: line chart of 2 series (in, out) from Mar 1, 2025 00:00 to Mar 2, 2025 00:00 UTC\""), "{svg}");
        let svg = bar_chart("Top", &[("acme".to_string(), 1500.0), ("globex".to_string(), 2.5)], 720, 240);
        assert!(svg.contains("aria-label=\"Top: bar chart of 2 bars: acme 1.5k, globex 2.5\""), "{svg}");
    }

    #[test]
    fn a_time_chart_with_two_series_draws_two_lines_and_a_legend() {
        let svg = time_chart(
            "Usage",
            &[daily("input tokens", &[1.0, 3.0, 2.0]), daily("out & back", &[2.0, 1.0, 4.0])],
            720,
            240,
        );
        assert_chart_shell(&svg);
        assert_eq!(data_lines(&svg), 2, "{svg}");
        let texts = texts(&svg);
        assert!(texts.iter().any(|t| t == "input tokens"), "{texts:?}");
        assert!(texts.iter().any(|t| t == "out &amp; back"), "{texts:?}");
        assert!(svg.contains("stroke=\"#2563EB\"") && svg.contains("stroke=\"#B45309\""));
    }

    fn usage_options(threshold: Option<f64>, partial_from: Option<DateTime<Utc>>) -> TimeChartOptions {
        TimeChartOptions {
            unit: Some("tokens per day".into()),
            threshold: threshold.map(|value| Threshold { label: "Limit Daily: 100 tokens per day".into(), value }),
            partial_from,
            partial_label: "today so far".into(),
            zone: None,
        }
    }

    #[test]
    fn a_zoned_chart_reads_the_zones_wall_clock() {
        // Tokyo days start at 15:00 UTC the day before.
        let days: Vec<_> = (0..20).map(|i| (at(1, 15) + chrono::Duration::days(i), 1.0 + i as f64)).collect();
        let options = TimeChartOptions { zone: Some(chrono_tz::Asia::Tokyo), ..TimeChartOptions::default() };
        let svg = time_chart_with("Tokens", &[series("Tokens", &days)], &options, 720, 240);
        assert!(svg.contains("from Mar 2, 2025 00:00 to Mar 21, 2025 00:00 Asia/Tokyo"), "{svg:.400}");
        let ms = |d: DateTime<Utc>| d.timestamp_millis();
        let (ticks, label) = zoned_time_ticks(ms(at(1, 15)), ms(at(21, 15)), 6, 9 * 3_600_000);
        assert_eq!(label, TickLabel::Day);
        assert!(ticks.iter().all(|t| (t + 9 * 3_600_000) % MS_PER_DAY == 0), "local midnights: {ticks:?}");
        let labels: Vec<_> = ticks.iter().map(|t| label.format_in(*t, chrono_tz::Asia::Tokyo)).collect();
        assert_eq!(labels, ["Mar 3", "Mar 10", "Mar 17"]);
    }

    /// Polylines drawn in `color`'s stroke.
    fn strokes(svg: &str, color: &str) -> usize {
        svg.split("<polyline")
            .skip(1)
            .filter(|p| p.split('>').next().unwrap_or("").contains(&format!("stroke=\"{color}\"")))
            .count()
    }

    #[test]
    fn a_threshold_is_a_dashed_line_named_in_the_legend_and_the_description() {
        let options = usage_options(Some(100.0), None);
        let svg = time_chart_with("Tokens per day", &[daily("Tokens", &[10.0, 30.0, 20.0])], &options, 720, 280);
        assert_chart_shell(&svg);
        assert!(strokes(&svg, "#B91C1C") > 10, "many dashes across the chart: {svg}");
        let texts = texts(&svg);
        assert!(texts.iter().any(|t| t == "Limit Daily: 100 tokens per day"), "{texts:?}");
        // The value axis reaches the threshold although the data stays far below it.
        assert!(texts.iter().any(|t| t == "100"), "{texts:?}");
        assert!(svg.contains("dashed line: Limit Daily: 100 tokens per day"), "{svg:.600}");
    }

    #[test]
    fn the_value_axis_names_its_unit() {
        let svg = time_chart_with("Usage", &[daily("Tokens", &[1.0, 2.0])], &usage_options(None, None), 720, 280);
        assert!(texts(&svg).iter().any(|t| t == "tokens per day"), "{svg}");
        assert!(svg.contains(", in tokens per day"));
        assert!(!texts(&time_chart("Usage", &[daily("Tokens", &[1.0, 2.0])], 720, 280))
            .iter()
            .any(|t| t == "tokens per day"));
    }

    #[test]
    fn the_bucket_still_filling_is_hollow_reached_by_dashes_and_labelled() {
        let options = usage_options(None, Some(at(3, 0)));
        let svg = time_chart_with("Usage", &[daily("Tokens", &[10.0, 30.0, 5.0])], &options, 720, 280);
        assert_chart_shell(&svg);
        assert!(texts(&svg).iter().any(|t| t == "today so far"), "{svg}");
        assert!(svg.contains("the last point is today so far"));
        let hollow = svg
            .split("<circle")
            .skip(1)
            .filter(|c| c.split('>').next().unwrap_or("").contains("fill=\"none\""))
            .count();
        assert_eq!(hollow, 1, "{svg}");
        // The complete days are one solid line; the last one is reached by dashes.
        assert!(strokes(&svg, "#2563EB") > 2, "{svg}");
        // A range in the past has nothing still filling.
        let past =
            time_chart_with("Usage", &[daily("Tokens", &[1.0, 2.0])], &usage_options(None, Some(at(20, 0))), 720, 280);
        assert!(!texts(&past).iter().any(|t| t == "today so far"));
    }

    #[test]
    fn a_narrow_usage_chart_keeps_its_text_at_full_size() {
        let options = usage_options(Some(100.0), Some(at(3, 0)));
        let svg = time_chart_with("Tokens per day", &[daily("Tokens", &[10.0, 30.0, 5.0])], &options, 330, 260);
        assert_chart_shell(&svg);
        assert!(svg.starts_with("<svg width=\"330\" height=\"260\""), "{svg:.100}");
        let sizes: Vec<f64> =
            svg.split("font-size=\"").skip(1).filter_map(|rest| rest.split('"').next()?.parse().ok()).collect();
        assert!(!sizes.is_empty() && sizes.iter().all(|size| *size >= 10.0), "{sizes:?}");
    }

    #[test]
    fn a_single_series_has_no_legend() {
        let svg = time_chart("Usage", &[daily("only line", &[1.0, 3.0, 2.0])], 720, 240);
        assert_chart_shell(&svg);
        assert_eq!(data_lines(&svg), 1);
        assert!(!texts(&svg).iter().any(|t| t == "only line"));
    }

    #[test]
    fn text_is_rendered_as_svg_text_without_any_font_library() {
        let svg = time_chart("Requests per day", &[daily("api", &[1.0, 4.0, 2.0])], 720, 240);
        let texts = texts(&svg);
        assert!(texts.iter().any(|t| t == "Requests per day"), "{texts:?}");
        assert!(texts.iter().any(|t| t == "Mar 2"), "{texts:?}");
        assert!(texts.iter().any(|t| t == "4"), "{texts:?}");
        assert!(svg.contains("font-family=\"sans-serif\""));
    }

    #[test]
    fn empty_data_renders_axes_and_says_no_data() {
        for svg in [
            time_chart("Nothing", &[], 720, 240),
            time_chart("Nothing", &[series("a", &[])], 720, 240),
            time_chart("Zeros", &[daily("a", &[0.0, 0.0]), daily("b", &[0.0])], 720, 240),
            bar_chart("Nothing", &[], 720, 240),
            bar_chart("Zeros", &[("a".to_string(), 0.0)], 720, 240),
        ] {
            assert_chart_shell(&svg);
            assert!(texts(&svg).iter().any(|t| t == "No data"), "{svg}");
            assert!(svg.contains("<line") || svg.contains("<polyline"), "no axes: {svg}");
        }
        let svg = time_chart("Data", &[daily("a", &[0.0, 1.0])], 720, 240);
        assert!(!svg.contains("No data"));
    }

    #[test]
    fn a_single_point_renders_as_a_marker() {
        let svg = time_chart("One", &[series("a", &[(at(10, 14), 3.5)])], 720, 240);
        assert_chart_shell(&svg);
        assert_eq!(count(&svg, "<circle"), 1);
        assert!(texts(&svg).iter().any(|t| t == "14:00"), "{:?}", texts(&svg));
    }

    #[test]
    fn equal_huge_tiny_and_odd_values_render_without_panicking() {
        let cases: Vec<Vec<f64>> = vec![
            vec![5.0, 5.0, 5.0],
            vec![1e9, 2e9, 1.5e9],
            vec![1e9; 3],
            vec![0.001, 0.0025],
            vec![-3.0, -1.0],
            vec![-2.0, 4.0],
            vec![f64::MAX, f64::MIN_POSITIVE],
            vec![f64::NAN, f64::INFINITY, 1.0],
            vec![f64::MIN, f64::MAX],
        ];
        for values in &cases {
            let svg = time_chart("Values", &[daily("a", values)], 720, 240);
            assert_chart_shell(&svg);
            let bars: Vec<(String, f64)> = values.iter().map(|v| (format!("{v}"), *v)).collect();
            let svg = bar_chart("Values", &bars, 720, 240);
            assert_chart_shell(&svg);
        }
        let svg = time_chart("Big", &[daily("a", &[1e9, 2e9])], 720, 240);
        assert!(texts(&svg).iter().any(|t| t == "1B" || t == "2B"), "{:?}", texts(&svg));
    }

    #[test]
    fn odd_sizes_and_extreme_times_render_without_panicking() {
        let extremes = [
            series("a", &[(DateTime::<Utc>::MIN_UTC, 1.0), (DateTime::<Utc>::MAX_UTC, 2.0)]),
            series("b", &[(at(1, 0), 1.0), (at(1, 0), 2.0)]),
        ];
        for (w, h) in [(0, 0), (1, 1), (160, 100), (10_000, 10_000), (u32::MAX, u32::MAX)] {
            assert_chart_shell(&time_chart("t", &extremes, w, h));
            assert_chart_shell(&bar_chart("b", &[("x".to_string(), 1.0)], w, h));
        }
        let many: Vec<(String, f64)> = (0..500).map(|i| (format!("customer {i}"), f64::from(i))).collect();
        assert_chart_shell(&bar_chart("Many", &many, 720, 240));
        let lines: Vec<Series> = (0..20).map(|i| daily(&format!("series {i}"), &[1.0, f64::from(i)])).collect();
        assert_chart_shell(&time_chart("Many", &lines, 320, 200));
    }

    #[test]
    fn x_labels_are_dates_for_multi_day_spans_and_hours_for_shorter_ones() {
        let days = time_chart("Days", &[daily("a", &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])], 720, 240);
        let labels = texts(&days);
        assert!(labels.iter().any(|t| t == "Mar 1") && labels.iter().any(|t| t == "Mar 9"), "{labels:?}");
        assert!(!labels.iter().any(|t| t.contains(':')), "{labels:?}");

        let hourly: Vec<_> = (0..24).map(|h| (at(10, h), f64::from(h))).collect();
        let hours = time_chart("Hours", &[series("a", &hourly)], 720, 240);
        let labels = texts(&hours);
        assert!(labels.iter().any(|t| t == "14:00" || t == "12:00"), "{labels:?}");
        assert!(!labels.iter().any(|t| t.starts_with("Mar")), "{labels:?}");
    }

    #[test]
    fn time_ticks_align_to_calendar_units() {
        let ms = |d: DateTime<Utc>| d.timestamp_millis();
        let (ticks, label) = time_ticks(ms(at(10, 13)) + 1, ms(at(10, 19)), 4);
        assert_eq!(label, TickLabel::Clock);
        assert_eq!(ticks, vec![ms(at(10, 14)), ms(at(10, 16)), ms(at(10, 18))]);
        let (ticks, label) = time_ticks(ms(at(1, 0)), ms(at(31, 0)), 6);
        assert_eq!(label, TickLabel::Day);
        assert_eq!(
            ticks.iter().map(|t| TickLabel::Day.format(*t)).collect::<Vec<_>>(),
            ["Mar 3", "Mar 10", "Mar 17", "Mar 24", "Mar 31"]
        );
        let year = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).single().unwrap();
        let (ticks, label) = time_ticks(ms(at(1, 0)), ms(year), 5);
        assert_eq!(label, TickLabel::Month);
        assert_eq!(
            ticks.iter().map(|t| label.format(*t)).collect::<Vec<_>>(),
            ["Apr 2025", "Jul 2025", "Oct 2025", "Jan 2026"]
        );
    }

    #[test]
    fn bar_chart_draws_one_rect_per_bar_with_its_label_in_order() {
        let bars: Vec<(String, f64)> =
            vec![("acme".to_string(), 120.5), ("globex".to_string(), 3e6), ("initech".to_string(), 0.25)];
        let svg = bar_chart("Top customers", &bars, 720, 240);
        assert_chart_shell(&svg);
        let bar_fill = "fill=\"#2563EB\"";
        assert_eq!(
            svg.split("<rect").skip(1).filter(|r| r.split('>').next().unwrap_or("").contains(bar_fill)).count(),
            3
        );
        assert_eq!(count(&svg, "<rect"), 4, "one background rect plus one per bar");
        let labels = texts(&svg);
        for name in ["acme", "globex", "initech", "120.5", "3M", "0.25"] {
            assert!(labels.iter().any(|t| t == name), "{name} missing from {labels:?}");
        }
        let pos = |needle: &str| svg.find(&format!(">\n{needle}\n<")).unwrap();
        assert!(pos("acme") < pos("globex") && pos("globex") < pos("initech"));
        let y_of = |name: &str| -> i32 {
            let tag = svg[..pos(name)].rsplit("<text").next().unwrap();
            tag.split("y=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap()
        };
        assert!(y_of("acme") < y_of("globex") && y_of("globex") < y_of("initech"), "first bar is on top");
    }

    #[test]
    fn values_are_formatted_compactly() {
        let cases = [
            (0.0, "0"),
            (-0.0, "0"),
            (950.0, "950"),
            (1500.0, "1.5k"),
            (12_345_678.0, "12.35M"),
            (1e9, "1B"),
            (999_999.0, "1M"),
            (0.0125, "0.0125"),
            (0.30000000000000004, "0.3"),
            (-2500.0, "-2.5k"),
            (2.5e15, "2.5P"),
        ];
        for (value, text) in cases {
            assert_eq!(format_value(value), text, "{value}");
        }
    }

    #[test]
    fn palette_colours_have_readable_contrast_on_white() {
        fn luminance(c: RGBColor) -> f64 {
            let channel = |v: u8| {
                let v = f64::from(v) / 255.0;
                if v <= 0.03928 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * channel(c.0) + 0.7152 * channel(c.1) + 0.0722 * channel(c.2)
        }
        for color in PALETTE.iter().chain([&TEXT_COLOR, &LABEL_COLOR]) {
            let ratio = 1.05 / (luminance(*color) + 0.05);
            assert!(ratio >= 4.5, "{color:?} has contrast {ratio:.2}");
        }
    }

    #[test]
    fn fallback_svg_is_valid_and_escaped() {
        let svg = fallback_svg(HOSTILE, 300, 150);
        assert_well_formed(&svg);
        assert!(svg.contains("chart unavailable"));
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains(&format!("<title>{HOSTILE_ESCAPED}</title>")));
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn a_failing_draw_returns_the_fallback() {
        let svg = render(300, 150, "Broken", "Broken", |_| Err("boom".into()));
        assert_well_formed(&svg);
        assert!(svg.contains("chart unavailable"));
    }
}
