//! CSV downloads for finance (events, usage summaries, ledgers).
//!
//! The format, so that a reader can rely on it:
//!
//! - UTF-8 without a byte-order mark; a header row first, then one row per record.
//! - Every row, the last one included, ends with `\r\n` (RFC 4180), also inside the
//!   header. Line breaks *inside* a field are written as they are, inside quotes.
//! - Rows are written by the `csv` crate: a field is quoted when it holds a comma, a double
//!   quote, CR or LF, and embedded double quotes are doubled. A row made of a single empty
//!   field is written as `""` so that it does not read as a blank line. Spaces are part of a
//!   field (RFC 4180) and are written as they are.
//! - Formula injection (OWASP "CSV injection"): a [`Cell::Text`] whose first character is
//!   `=`, `+`, `-`, `@`, TAB or CR gets a leading `'` so spreadsheets show it as text.
//!   A [`Cell::Number`] that really is a plain number (`-120`, `-0.5`, `1e-5`) is written
//!   as is, so negative amounts stay numbers; a `Number` whose text is not a plain number
//!   is treated as text, so it can never smuggle a formula past the check.
//!
//! [`csv_response`] streams: rows are encoded as they arrive and sent in chunks of at
//! most about [`CHUNK`] bytes, so an export never sits whole in memory, and whatever is
//! encoded is sent as soon as the row stream has to wait (no added latency).
//!
//! Failures mid-stream: the status line and headers are committed before the rows are
//! read, so the response cannot turn into an error status any more. When the row stream
//! yields an error (or a row whose width differs from the header's, which would misalign
//! columns), the error is logged with `tracing::error!`, the complete rows encoded before it
//! are handed to hyper, and the body then ends *with an error*. Hyper reacts by closing the
//! connection without the terminating empty chunk (HTTP/1.1) or by resetting the stream
//! (HTTP/2). Clients therefore see a failed, truncated download (`curl: (18) transfer closed
//! with outstanding read data remaining`, or a browser's "Failed" download) instead of a file
//! that looks complete. The error text never goes into the CSV. Only whole rows are written,
//! but bytes that hyper had not yet flushed are dropped with the connection. If the stream
//! fails at once, the client may get an empty reply and no status line at all. Either way, a
//! failed export never arrives looking like a finished one.

use std::borrow::Cow;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::header::{self, HeaderValue};
use axum::http::HeaderName;
use axum::response::Response;
use futures_util::Stream;

/// Target size of one body chunk: encoded rows are gathered up to this size while the row
/// stream has them ready, then sent.
pub const CHUNK: usize = 32 * 1024;

/// Longest filename put in `Content-Disposition`.
const MAX_FILENAME: usize = 120;

/// One cell of a CSV row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    /// Free text: quoted as needed and protected against formula injection.
    Text(String),
    /// Already-formatted numeric text (`-120`, `0.5`), written as is (still quoted if it
    /// somehow needs quoting). Text that is not a plain decimal number is handled as
    /// [`Cell::Text`].
    Number(String),
}

impl Cell {
    /// A text cell.
    pub fn text(value: impl Into<String>) -> Cell {
        Cell::Text(value.into())
    }

    /// An integer cell.
    pub fn int(value: i64) -> Cell {
        Cell::Number(value.to_string())
    }

    /// A numeric cell from anything that displays as a number (`f64`, `u64`, `Quantity`...).
    /// Non-finite floats display as `NaN`/`inf`, which are not plain numbers and so are
    /// written as (formula-protected) text.
    pub fn num(value: impl fmt::Display) -> Cell {
        Cell::Number(value.to_string())
    }
}

impl From<&str> for Cell {
    fn from(value: &str) -> Cell {
        Cell::Text(value.to_string())
    }
}

impl From<String> for Cell {
    fn from(value: String) -> Cell {
        Cell::Text(value)
    }
}

/// Encodes one row (with the trailing `\r\n`) into bytes.
pub fn encode_row(cells: &[Cell]) -> Vec<u8> {
    let mut writer = row_writer(64);
    // Writing into memory cannot fail, and a writer made here is never handed on.
    let _ = write_row(&mut writer, cells);
    writer.into_inner().unwrap_or_default()
}

/// A CSV writer into memory: RFC 4180 (CRLF after every row, quotes only where needed).
/// Rows of any width are accepted; `CsvBody` checks widths itself, before a row is written.
fn row_writer(capacity: usize) -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .flexible(true)
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::with_capacity(capacity))
}

/// Writes one row, with its line ending, through to the writer's `Vec`.
fn write_row(writer: &mut csv::Writer<Vec<u8>>, cells: &[Cell]) -> csv::Result<()> {
    writer.write_record(cells.iter().map(field))?;
    writer.flush()?;
    Ok(())
}

/// The text of a cell as written: a plain number as it is; any other text with a leading `'`
/// when a spreadsheet could take it for a formula.
fn field(cell: &Cell) -> Cow<'_, [u8]> {
    match cell {
        Cell::Number(text) if is_plain_number(text) => Cow::Borrowed(text.as_bytes()),
        Cell::Text(text) | Cell::Number(text) if starts_like_formula(text) => {
            Cow::Owned(format!("'{text}").into_bytes())
        }
        Cell::Text(text) | Cell::Number(text) => Cow::Borrowed(text.as_bytes()),
    }
}

/// Whether a spreadsheet could take a text starting like this for a formula (OWASP list).
fn starts_like_formula(text: &str) -> bool {
    matches!(text.as_bytes().first(), Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'))
}

/// A plain decimal number: optional sign, digits with at most one decimal point (at least
/// one digit), optional exponent. `-120`, `+3`, `-0.5`, `.5`, `1e-5` are; `1,000`, `NaN`,
/// `-inf`, `=1+1`, `-` are not.
fn is_plain_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let mut digits = 0;
    let mut point = false;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' if !point => point = true,
            _ => break,
        }
        i += 1;
    }
    if digits == 0 {
        return false;
    }
    if let Some(b'e' | b'E') = bytes.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = bytes.get(i) {
            i += 1;
        }
        let start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == bytes.len()
}

/// Reduces a filename to `[A-Za-z0-9._-]`: each run of other characters becomes one `_`,
/// leading `.`, `_`, `-` and trailing `.`, `_` are dropped, long names are cut (keeping a
/// short extension), and an empty result becomes `export.csv`.
fn sanitize_filename(name: &str) -> String {
    let mut safe = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            safe.push(c);
        } else if !safe.ends_with('_') {
            safe.push('_');
        }
    }
    let mut safe = safe.trim_start_matches(['.', '_', '-']).trim_end_matches(['.', '_']).to_string();
    if safe.len() > MAX_FILENAME {
        // All ASCII here, so byte offsets are char boundaries.
        let ext = match safe.rfind('.') {
            Some(dot) if safe.len() - dot <= 10 => safe[dot..].to_string(),
            _ => String::new(),
        };
        safe.truncate(MAX_FILENAME - ext.len());
        safe.push_str(&ext);
    }
    if safe.is_empty() || safe.starts_with('.') {
        return "export.csv".to_string();
    }
    safe
}

/// A streaming `200 text/csv; charset=utf-8` response with
/// `Content-Disposition: attachment; filename="<filename>"` (filename sanitised to
/// `[A-Za-z0-9._-]`), `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`,
/// whose body is the header row followed by the rows of the stream, encoded as they arrive.
///
/// Every row should have as many cells as the header. An error item from the stream, or a
/// row of the wrong width, is logged with `tracing::error!` and ends the body early with an
/// error after the rows before it. Hyper then aborts the connection, so the client sees a
/// truncated (failed) download and never a corrupt or complete-looking file. See the module
/// documentation.
pub fn csv_response<S, E>(filename: &str, header: &[&str], rows: S) -> Response
where
    S: Stream<Item = Result<Vec<Cell>, E>> + Send + 'static,
    E: fmt::Display + Send + 'static,
{
    let filename = sanitize_filename(filename);
    let header_cells: Vec<Cell> = header.iter().map(|&name| Cell::from(name)).collect();
    let mut writer = row_writer(CHUNK + 1024);
    let state = match write_row(&mut writer, &header_cells) {
        Ok(()) => State::Streaming,
        Err(err) => {
            tracing::error!(filename = %filename, error = %err, "CSV export could not write its header");
            State::Failed
        }
    };
    let body =
        CsvBody { rows: Box::pin(rows), writer, width: header.len(), written: 0, filename: filename.clone(), state };

    let disposition = HeaderValue::try_from(format!("attachment; filename=\"{filename}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment; filename=\"export.csv\""));
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    response
}

/// The error that ends a body early; the cause itself was logged, not sent.
#[derive(Debug)]
struct ExportAborted;

impl fmt::Display for ExportAborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CSV export aborted after a failed row; the download is incomplete")
    }
}

impl std::error::Error for ExportAborted {}

enum State {
    /// Reading rows.
    Streaming,
    /// Rows failed: send what is buffered, then the error.
    Failed,
    /// Rows ended (or the error was sent): send what is buffered, then end.
    Done,
}

/// The body stream: encodes rows with a `csv::Writer` and hands its output out in chunks.
struct CsvBody<S> {
    rows: Pin<Box<S>>,
    /// Holds the encoded rows not yet sent (flushed through after every row).
    writer: csv::Writer<Vec<u8>>,
    width: usize,
    /// Data rows encoded so far, for the log.
    written: u64,
    filename: String,
    state: State,
}

impl<S> CsvBody<S> {
    /// Bytes encoded and not yet sent.
    fn pending(&self) -> usize {
        self.writer.get_ref().len()
    }

    /// Hands out what is encoded; the rows after it go to a fresh writer.
    fn take_chunk(&mut self) -> Bytes {
        let full = std::mem::replace(&mut self.writer, row_writer(CHUNK + 1024));
        // Every row was flushed through to the `Vec`, so nothing is left to fail.
        Bytes::from(full.into_inner().unwrap_or_default())
    }
}

impl<S, E> Stream for CsvBody<S>
where
    S: Stream<Item = Result<Vec<Cell>, E>>,
    E: fmt::Display,
{
    type Item = Result<Bytes, ExportAborted>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        while matches!(this.state, State::Streaming) && this.pending() < CHUNK {
            match this.rows.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(cells))) if cells.len() == this.width => {
                    match write_row(&mut this.writer, &cells) {
                        Ok(()) => this.written += 1,
                        Err(err) => {
                            tracing::error!(
                                filename = %this.filename,
                                rows_written = this.written,
                                error = %err,
                                "CSV export could not encode a row; ending the download early"
                            );
                            this.state = State::Failed;
                        }
                    }
                }
                Poll::Ready(Some(Ok(cells))) => {
                    tracing::error!(
                        filename = %this.filename,
                        rows_written = this.written,
                        cells = cells.len(),
                        columns = this.width,
                        "CSV export row has the wrong number of cells; ending the download early"
                    );
                    this.state = State::Failed;
                }
                Poll::Ready(Some(Err(err))) => {
                    tracing::error!(
                        filename = %this.filename,
                        rows_written = this.written,
                        error = %err,
                        "CSV export failed; ending the download early"
                    );
                    this.state = State::Failed;
                }
                Poll::Ready(None) => this.state = State::Done,
                Poll::Pending if this.pending() == 0 => return Poll::Pending,
                Poll::Pending => break,
            }
        }
        if this.pending() > 0 {
            return Poll::Ready(Some(Ok(this.take_chunk())));
        }
        match this.state {
            State::Failed => {
                this.state = State::Done;
                Poll::Ready(Some(Err(ExportAborted)))
            }
            _ => Poll::Ready(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use futures_util::{stream, StreamExt};
    use http_body_util::BodyExt;

    fn text(value: &str) -> Cell {
        Cell::from(value)
    }

    fn encode_all(rows: &[Vec<Cell>]) -> Vec<u8> {
        rows.iter().flat_map(|row| encode_row(row)).collect()
    }

    fn read_back(bytes: &[u8]) -> Vec<Vec<String>> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes)
            .records()
            .map(|record| record.unwrap().iter().map(str::to_string).collect())
            .collect()
    }

    /// Reads body frames until the body ends: the data, and whether it ended with an error.
    async fn read_body(response: Response) -> (Vec<Vec<u8>>, bool) {
        let mut body = response.into_body();
        let mut chunks = Vec::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => chunks.push(frame.into_data().unwrap().to_vec()),
                Err(_) => {
                    assert!(body.frame().await.is_none(), "nothing may follow the error");
                    return (chunks, true);
                }
            }
        }
        (chunks, false)
    }

    fn header_value(response: &Response, name: &str) -> String {
        response.headers().get(name).unwrap().to_str().unwrap().to_string()
    }

    #[test]
    fn quotes_commas_newlines_and_carriage_returns_round_trip_through_a_csv_reader() {
        let values = [
            "plain",
            "a,b",
            "say \"hi\"",
            "\"",
            "\"\"",
            "line one\nline two",
            "crlf\r\ninside",
            "lone\rcr",
            "ends with cr\r",
            "ends with lf\n",
            " leading space",
            "trailing space ",
            "tab at the end\t",
            "tab\tinside",
            "",
            "ünïcødé, ✓ and 表",
            "x=1+2 and a-b and @me",
            "'already quoted'",
        ];
        let rows: Vec<Vec<Cell>> = values.chunks(3).map(|chunk| chunk.iter().map(|v| text(v)).collect()).collect();
        let expected: Vec<Vec<String>> = values.chunks(3).map(|c| c.iter().map(|v| v.to_string()).collect()).collect();
        let bytes = encode_all(&rows);
        let read = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes.as_slice())
            .records()
            .map(|record| record.unwrap().iter().map(str::to_string).collect::<Vec<_>>())
            .collect::<Vec<_>>();
        assert_eq!(read, expected);
    }

    #[test]
    fn fields_are_quoted_only_when_they_need_it_and_rows_end_with_crlf() {
        let row = [text("a"), text("b,c"), text("d\"e"), text(" f"), text("g "), text("h\ni"), Cell::int(7), text("")];
        assert_eq!(encode_row(&row), b"a,\"b,c\",\"d\"\"e\", f,g ,\"h\ni\",7,\r\n");
    }

    #[test]
    fn output_is_utf8_without_a_byte_order_mark() {
        let bytes = encode_row(&[text("été")]);
        assert_eq!(bytes, "été\r\n".as_bytes());
        assert!(!bytes.starts_with(&[0xEF, 0xBB, 0xBF]));
    }

    #[test]
    fn a_row_of_one_empty_field_is_not_a_blank_line() {
        assert_eq!(encode_row(&[text("")]), b"\"\"\r\n");
        assert_eq!(read_back(&encode_row(&[text("")])), vec![vec![String::new()]]);
        assert_eq!(encode_row(&[text(""), text("")]), b",\r\n");
    }

    #[test]
    fn text_cells_starting_with_a_formula_character_get_a_quote_prefix() {
        let cases = [
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-120", "'-120"),
            ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
            ("\tcmd", "'\tcmd"),
            ("\rcmd", "\"'\rcmd\""),
            ("=HYPERLINK(\"http://x\",\"y\")", "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""),
        ];
        for (value, encoded) in cases {
            assert_eq!(encode_row(&[text(value)]), format!("{encoded}\r\n").as_bytes(), "{value:?}");
            assert_eq!(read_back(&encode_row(&[text(value)])), vec![vec![format!("'{value}")]], "{value:?}");
        }
    }

    #[test]
    fn the_same_characters_later_in_a_text_cell_are_left_alone() {
        for value in ["a=b", "1+1", "a-b", "me@example.com", "a\tb", "x '=1"] {
            assert_eq!(encode_row(&[text(value)]), format!("{value}\r\n").as_bytes(), "{value:?}");
        }
        assert_eq!(encode_row(&[text("a\rb")]), b"\"a\rb\"\r\n");
    }

    #[test]
    fn negative_and_signed_numbers_stay_unprefixed() {
        let row = [
            Cell::Number("-120".into()),
            Cell::Number("-0.5".into()),
            Cell::int(-120),
            Cell::num(-0.5),
            Cell::num(1.25),
            Cell::Number("+3".into()),
            Cell::Number("1e-5".into()),
            Cell::Number("-.5".into()),
            Cell::int(i64::MIN),
        ];
        assert_eq!(encode_row(&row), format!("-120,-0.5,-120,-0.5,1.25,+3,1e-5,-.5,{}\r\n", i64::MIN).as_bytes());
    }

    #[test]
    fn number_cells_that_are_not_plain_numbers_are_protected_like_text() {
        let row = [
            Cell::Number("=1+1".into()),
            Cell::Number("-1+1".into()),
            Cell::Number("-".into()),
            Cell::Number("1,000".into()),
            Cell::num(f64::NEG_INFINITY),
            Cell::Number("1e".into()),
        ];
        assert_eq!(encode_row(&row), b"'=1+1,'-1+1,'-,\"1,000\",'-inf,1e\r\n");
    }

    #[test]
    fn filenames_are_reduced_to_safe_characters() {
        assert_eq!(sanitize_filename("ledger \"x\".csv"), "ledger_x_.csv");
        assert_eq!(sanitize_filename("events.csv"), "events.csv");
        assert_eq!(sanitize_filename("../../etc/passwd"), "etc_passwd");
        assert_eq!(sanitize_filename("ledger-Café März.csv"), "ledger-Caf_M_rz.csv");
        assert_eq!(sanitize_filename("a\r\nContent-Type: text/html"), "a_Content-Type_text_html");
        assert_eq!(sanitize_filename(""), "export.csv");
        assert_eq!(sanitize_filename("\"\""), "export.csv");
        assert_eq!(sanitize_filename("..."), "export.csv");
        let long = sanitize_filename(&format!("ledger-{}.csv", "x".repeat(500)));
        assert_eq!(long.len(), MAX_FILENAME);
        assert!(long.starts_with("ledger-xxx") && long.ends_with("x.csv"));
    }

    #[tokio::test]
    async fn csv_response_streams_the_header_row_then_each_row() {
        let rows = stream::iter(vec![
            Ok::<_, String>(vec![text("t1"), text("=cmd"), Cell::int(-120)]),
            Ok(vec![text("t2"), text("a,b"), Cell::num(0.5)]),
            Ok(vec![text("t3"), text("say \"hi\""), Cell::int(7)]),
        ]);
        let response = csv_response("ledger \"x\".csv", &["id", "description", "amount"], rows);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header_value(&response, "content-type"), "text/csv; charset=utf-8");
        assert_eq!(header_value(&response, "content-disposition"), "attachment; filename=\"ledger_x_.csv\"");
        assert_eq!(header_value(&response, "cache-control"), "no-store");
        assert_eq!(header_value(&response, "x-content-type-options"), "nosniff");

        let (chunks, failed) = read_body(response).await;
        assert!(!failed);
        let body = String::from_utf8(chunks.concat()).unwrap();
        assert_eq!(body, "id,description,amount\r\nt1,'=cmd,-120\r\nt2,\"a,b\",0.5\r\nt3,\"say \"\"hi\"\"\",7\r\n");
    }

    #[tokio::test]
    async fn an_empty_stream_gives_only_the_header_row() {
        let rows = stream::iter(Vec::<Result<Vec<Cell>, String>>::new());
        let response = csv_response("usage.csv", &["customer", "value"], rows);
        let collected = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"customer,value\r\n");
    }

    #[tokio::test]
    async fn an_error_item_truncates_the_body_after_the_rows_before_it() {
        let rows = stream::iter(vec![
            Ok(vec![text("r1"), Cell::int(1)]),
            Ok(vec![text("r2"), Cell::int(2)]),
            Err("database went away"),
            Ok(vec![text("r3"), Cell::int(3)]),
        ]);
        let response = csv_response("events.csv", &["id", "n"], rows);
        let (chunks, failed) = read_body(response).await;
        assert!(failed, "the body must end with an error, not look complete");
        assert_eq!(chunks.concat(), b"id,n\r\nr1,1\r\nr2,2\r\n");
    }

    #[tokio::test]
    async fn an_error_before_any_row_leaves_only_the_header_and_then_fails() {
        let rows = stream::iter(vec![Err::<Vec<Cell>, _>("boom")]);
        let (chunks, failed) = read_body(csv_response("e.csv", &["id"], rows)).await;
        assert!(failed);
        assert_eq!(chunks.concat(), b"id\r\n");
    }

    #[tokio::test]
    async fn a_row_of_the_wrong_width_ends_the_download_like_an_error() {
        let rows = stream::iter(vec![Ok::<_, String>(vec![text("r1"), Cell::int(1)]), Ok(vec![text("short")])]);
        let (chunks, failed) = read_body(csv_response("e.csv", &["id", "n"], rows)).await;
        assert!(failed);
        assert_eq!(chunks.concat(), b"id,n\r\nr1,1\r\n");
    }

    #[tokio::test]
    async fn large_exports_are_sent_in_bounded_chunks() {
        const ROWS: usize = 20_000;
        let rows =
            stream::iter(0..ROWS).map(|i| Ok::<_, String>(vec![Cell::int(i as i64), text("some description, quoted")]));
        let (chunks, failed) = read_body(csv_response("big.csv", &["n", "description"], rows)).await;
        assert!(!failed);
        assert!(chunks.len() > 10, "expected many chunks, got {}", chunks.len());
        let longest_row = encode_row(&[Cell::int(ROWS as i64), text("some description, quoted")]).len();
        assert!(chunks.iter().all(|c| c.len() < CHUNK + longest_row));
        let records = read_back(&chunks.concat());
        assert_eq!(records.len(), ROWS + 1);
        assert_eq!(records[ROWS], vec![(ROWS - 1).to_string(), "some description, quoted".to_string()]);
    }

    #[tokio::test]
    async fn rows_are_sent_as_soon_as_the_stream_has_to_wait() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Vec<Cell>, String>>();
        let rows = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|row| (row, rx)) });
        let mut body = csv_response("live.csv", &["id"], rows).into_body();
        tx.send(Ok(vec![text("first")])).unwrap();
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&frame[..], b"id\r\nfirst\r\n");
        tx.send(Ok(vec![text("second")])).unwrap();
        let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&frame[..], b"second\r\n");
        drop(tx);
        assert!(body.frame().await.is_none());
    }

    /// Over a real HTTP/1.1 connection a failed export never ends with the terminating
    /// zero-length chunk, so clients see the download as incomplete.
    #[tokio::test]
    async fn over_http_a_failed_export_is_an_incomplete_transfer() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        /// One row, then (after `pause`, so that it reaches the wire) an error if `fail`.
        fn export(fail: bool, pause: u64) -> Response {
            let first = stream::iter(vec![Ok(vec![text("r1")])]);
            let rest = stream::once(async move {
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                if fail {
                    Err("db down")
                } else {
                    Ok(vec![text("r2")])
                }
            });
            csv_response("x.csv", &["id"], first.chain(rest))
        }
        async fn fetch(addr: std::net::SocketAddr, path: &str) -> String {
            let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            conn.write_all(request.as_bytes()).await.unwrap();
            let mut response = Vec::new();
            let read = tokio::time::timeout(std::time::Duration::from_secs(10), conn.read_to_end(&mut response));
            let _ = read.await.expect("the server closes the connection");
            String::from_utf8(response).unwrap()
        }

        let app = axum::Router::new()
            .route("/ok", axum::routing::get(|| async { export(false, 50) }))
            .route("/fail-late", axum::routing::get(|| async { export(true, 50) }))
            .route("/fail-early", axum::routing::get(|| async { export(true, 0) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let ok = fetch(addr, "/ok").await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains("transfer-encoding: chunked"), "{ok}");
        assert!(ok.contains("id\r\nr1\r\n") && ok.contains("r2\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n0\r\n\r\n"), "a complete export ends with the last chunk: {ok:?}");

        // Failing after rows went out: those rows arrive, then the connection just closes.
        let late = fetch(addr, "/fail-late").await;
        assert!(late.starts_with("HTTP/1.1 200"), "{late}");
        assert!(late.contains("id\r\nr1\r\n"), "{late}");
        assert!(!late.ends_with("0\r\n\r\n"), "a failed export must not look complete: {late:?}");
        assert!(!late.contains("db down"), "the error must not leak into the file");

        // Failing before anything was flushed: hyper drops the unsent bytes and closes.
        let early = fetch(addr, "/fail-early").await;
        assert!(!early.ends_with("0\r\n\r\n"), "a failed export must not look complete: {early:?}");
        assert!(!early.contains("db down"));
        server.abort();
    }
}
