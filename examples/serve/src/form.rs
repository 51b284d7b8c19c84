//! Reading files out of request bodies: `multipart/form-data` forms, part by
//! part, and raw bodies.
//!
//! The body is read as a blocking `std::io::Read`. `multer` parses the form
//! from a `Stream`; the stream here yields one chunk, then says "not yet"
//! (waking itself) before reading the next, because `multer` keeps pulling
//! until a stream has nothing ready and would otherwise read the whole body
//! before parsing any of it. A small executor re-polls while woken.

use std::future::Future;
use std::io::{self, Read};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::{error, fmt};

use futures_core::Stream;

use crate::MAX_FILE_BYTES;
use crate::batch::NewFile;
use crate::disposition;
use crate::problem::Problem;

/// At most this many files in one form.
pub const MAX_FILES: usize = 100;

/// The most bytes the parser may take in without handing over a part or
/// part data: room for one part's headers and boundary lines, and so the
/// bound on what it buffers when a sender never ends them.
pub const MAX_PART_OVERHEAD: u64 = 16 * 1024;

/// The largest form accepted: `MAX_FILES` files of the largest size, each
/// with its headers.
pub const MAX_FORM_BYTES: u64 = MAX_FILES as u64 * (MAX_FILE_BYTES + MAX_PART_OVERHEAD);

/// How much is asked of the body at once.
const CHUNK_BYTES: usize = 64 * 1024;

/// The boundary of a `multipart/form-data` body, from its `Content-Type`
/// (RFC 7578 §4.1).
pub fn boundary(content_type: Option<&str>) -> Result<String, Problem> {
    let unsupported = || Problem::UnsupportedMediaType {
        found: content_type.map(str::to_owned),
    };
    let mime: mime::Mime = content_type
        .ok_or_else(unsupported)?
        .parse()
        .map_err(|_| unsupported())?;
    if mime.essence_str() != mime::MULTIPART_FORM_DATA.essence_str() {
        return Err(unsupported());
    }
    match mime.get_param(mime::BOUNDARY) {
        Some(boundary) if !boundary.as_str().is_empty() => Ok(boundary.as_str().to_owned()),
        _ => Err(Problem::Malformed(
            "the Content-Type has no boundary".to_owned(),
        )),
    }
}

/// Reads every part of a form from `body`, handing each file to `on_file`
/// as soon as it is complete; stops at the first problem, the ones
/// `on_file` returns included.
///
/// Every part must be named `file` and carry a file name (RFC 7578 §4.2);
/// a browser's empty placeholder for a file input left blank is skipped.
/// A form without files is [`Problem::NoFile`].
pub fn read_form<R>(
    body: R,
    boundary: &str,
    mut on_file: impl FnMut(NewFile) -> Result<(), Problem>,
) -> Result<(), Problem>
where
    R: Read + Send + Unpin,
{
    let unparsed = Arc::new(AtomicU64::new(0));
    let chunks = Chunks {
        body,
        turn_done: false,
        unparsed: Arc::clone(&unparsed),
    };
    let limits = multer::SizeLimit::new()
        .whole_stream(MAX_FORM_BYTES)
        .per_field(MAX_FILE_BYTES);
    let mut form = multer::Multipart::with_constraints(
        chunks,
        boundary.to_owned(),
        multer::Constraints::new().size_limit(limits),
    );

    let mut files = 0;
    while let Some(mut part) = block_on(form.next_field())?.map_err(form_problem)? {
        unparsed.store(0, Ordering::Relaxed);
        let header = part
            .headers()
            .get("content-disposition")
            .ok_or_else(|| Problem::Malformed("a part has no Content-Disposition".to_owned()))?;
        let disposition =
            disposition::parse(header.as_bytes()).map_err(|e| Problem::Malformed(e.to_string()))?;
        if disposition.name != "file" {
            return Err(Problem::UnexpectedPart {
                name: disposition.name,
            });
        }
        let content_type = file_type(
            part.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
        );

        let mut data = Vec::new();
        loop {
            match block_on(part.chunk())? {
                Ok(Some(chunk)) => {
                    unparsed.store(0, Ordering::Relaxed);
                    data.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(multer::Error::FieldSizeExceeded { .. }) => {
                    return Err(Problem::FileTooLarge {
                        name: disposition.filename,
                    });
                }
                Err(e) => return Err(form_problem(e)),
            }
        }

        let name = match disposition.filename {
            // What a browser sends for a file input left blank.
            Some(name) if name.is_empty() && data.is_empty() => continue,
            Some(name) if !name.is_empty() => name,
            _ => return Err(Problem::MissingFileName),
        };
        files += 1;
        if files > MAX_FILES {
            return Err(Problem::TooManyFiles { limit: MAX_FILES });
        }
        on_file(NewFile {
            name,
            content_type,
            data,
        })?;
    }
    if files == 0 {
        return Err(Problem::NoFile);
    }
    Ok(())
}

/// The type to give the upload component for a file the client labelled
/// `content_type`. Browsers and curl say `application/octet-stream` when
/// they do not know, and curl's `--data-binary` calls any body a URL-encoded
/// form; neither is the file's own type, so the upload component is left to
/// guess from the name.
pub fn file_type(content_type: Option<&str>) -> Option<String> {
    let content_type = content_type?.trim();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "" | "application/octet-stream" | "application/x-www-form-urlencoded" => None,
        _ => Some(content_type.to_owned()),
    }
}

/// Reads a raw body that is one file, refusing it once it passes the
/// per-file limit.
pub fn read_file(body: impl Read) -> Result<Vec<u8>, Problem> {
    let mut data = Vec::new();
    body.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| Problem::BodyRead(format!("reading the body: {e}")))?;
    if data.len() as u64 > MAX_FILE_BYTES {
        return Err(Problem::FileTooLarge { name: None });
    }
    Ok(data)
}

fn form_problem(error: multer::Error) -> Problem {
    match error {
        multer::Error::FieldSizeExceeded { .. } => Problem::FileTooLarge { name: None },
        multer::Error::StreamSizeExceeded { limit } => Problem::ContentTooLarge { limit },
        multer::Error::StreamReadFailed(cause) => match cause.downcast::<ReadFault>() {
            Ok(fault) => match *fault {
                ReadFault::Body(e) => Problem::BodyRead(format!("reading the body: {e}")),
                ReadFault::NoProgress => Problem::Malformed(format!(
                    "no part or part data within {MAX_PART_OVERHEAD} bytes"
                )),
            },
            Err(other) => Problem::BodyRead(format!("reading the body: {other}")),
        },
        other => Problem::Malformed(other.to_string()),
    }
}

/// Why the body stream stopped.
#[derive(Debug)]
enum ReadFault {
    /// The body could not be read.
    Body(io::Error),
    /// The parser took in [`MAX_PART_OVERHEAD`] bytes without handing over
    /// anything: an endless preamble or part header.
    NoProgress,
}

impl fmt::Display for ReadFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadFault::Body(e) => write!(f, "{e}"),
            ReadFault::NoProgress => write!(f, "no progress"),
        }
    }
}

impl error::Error for ReadFault {}

/// The body as a stream of chunks, one per turn (see the module docs).
struct Chunks<R> {
    body: R,
    /// Whether a chunk went out this turn.
    turn_done: bool,
    /// Bytes yielded since the parser last handed over a part or data;
    /// the reader resets it.
    unparsed: Arc<AtomicU64>,
}

impl<R: Read + Unpin> Stream for Chunks<R> {
    type Item = Result<Vec<u8>, ReadFault>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.turn_done {
            this.turn_done = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let mut chunk = vec![0; CHUNK_BYTES];
        let n = loop {
            match this.body.read(&mut chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Some(Err(ReadFault::Body(e)))),
            }
        };
        if n == 0 {
            return Poll::Ready(None);
        }
        chunk.truncate(n);
        let unparsed = this.unparsed.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        // One chunk may hold the end of a part's data and the next headers,
        // so the allowance is one chunk on top of the overhead.
        if unparsed > MAX_PART_OVERHEAD + CHUNK_BYTES as u64 {
            return Poll::Ready(Some(Err(ReadFault::NoProgress)));
        }
        this.turn_done = true;
        Poll::Ready(Some(Ok(chunk)))
    }
}

/// Records that a future asked to be polled again.
struct Woken(AtomicBool);

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `future` to completion on this thread. The only source of
/// "not yet" is [`Chunks`], which wakes at once; a future pending without
/// a wake-up would wait forever, so that is an internal error.
fn block_on<F: Future>(future: F) -> Result<F::Output, Problem> {
    let woken = Arc::new(Woken(AtomicBool::new(false)));
    let waker = Waker::from(Arc::clone(&woken));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return Ok(output),
            Poll::Pending if woken.0.swap(false, Ordering::Relaxed) => {}
            Poll::Pending => return Err(Problem::Internal("the form parser stalled")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDARY: &str = "XyZ-boundary";

    /// A form with one part per `(disposition, content type, data)`.
    fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (disposition, content_type, data) in parts {
            body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            body.extend_from_slice(format!("Content-Disposition: {disposition}\r\n").as_bytes());
            if let Some(ct) = content_type {
                body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
            }
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        body
    }

    fn file_part(name: &str) -> String {
        format!(r#"form-data; name="file"; filename="{name}""#)
    }

    /// A reader that hands out at most `step` bytes a call and counts them.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
        read: Arc<AtomicU64>,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.step).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            self.read.fetch_add(n as u64, Ordering::Relaxed);
            Ok(n)
        }
    }

    fn read_all(body: &[u8]) -> Result<Vec<NewFile>, Problem> {
        let mut files = Vec::new();
        read_form(body, BOUNDARY, |f| {
            files.push(f);
            Ok(())
        })?;
        Ok(files)
    }

    #[test]
    fn reads_each_file_with_its_name_and_type() {
        let a = file_part("a.txt");
        let b = file_part("b%22.bin");
        let body = form(&[
            (&a, Some("text/plain"), b"alpha"),
            (&b, None, b"\r\n--not-the-boundary\r\n"),
            (&b, Some("application/octet-stream"), b""),
        ]);
        let files = read_all(&body).unwrap();
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].name, "a.txt");
        assert_eq!(files[0].content_type.as_deref(), Some("text/plain"));
        assert_eq!(files[0].data, b"alpha");
        assert_eq!(files[1].name, "b\".bin");
        assert_eq!(files[1].content_type, None);
        assert_eq!(files[2].content_type, None);
        assert_eq!(files[1].data, b"\r\n--not-the-boundary\r\n");
    }

    #[test]
    fn hands_over_each_file_before_reading_the_next() {
        let big = vec![7u8; 300 * 1024];
        let a = file_part("a");
        let b = file_part("b");
        let body = form(&[(&a, None, &big), (&b, None, &big)]);
        let read = Arc::new(AtomicU64::new(0));
        let trickle = Trickle {
            data: &body,
            step: 1000,
            read: Arc::clone(&read),
        };
        let mut read_when_handed = Vec::new();
        read_form(trickle, BOUNDARY, |_| {
            read_when_handed.push(read.load(Ordering::Relaxed));
            Ok(())
        })
        .unwrap();
        let total = body.len() as u64;
        // The first file was complete well before the body ended.
        assert!(read_when_handed[0] < total * 3 / 5, "{read_when_handed:?}");
        assert_eq!(read_when_handed[1], total);
    }

    #[test]
    fn a_file_over_the_limit_is_refused_by_name() {
        let a = file_part("big.bin");
        let body = form(&[(&a, None, &vec![0; MAX_FILE_BYTES as usize + 1])]);
        assert_eq!(
            read_all(&body).err(),
            Some(Problem::FileTooLarge {
                name: Some("big.bin".into())
            })
        );
        let body = form(&[(&a, None, &vec![0; MAX_FILE_BYTES as usize])]);
        assert_eq!(
            read_all(&body).unwrap()[0].data.len() as u64,
            MAX_FILE_BYTES
        );
    }

    #[test]
    fn refuses_forms_without_usable_files() {
        assert_eq!(read_all(&form(&[])).err(), Some(Problem::NoFile));
        let blank = file_part("");
        assert_eq!(
            read_all(&form(&[(&blank, Some("application/octet-stream"), b"")])).err(),
            Some(Problem::NoFile)
        );
        assert_eq!(
            read_all(&form(&[(&blank, None, b"data")])).err(),
            Some(Problem::MissingFileName)
        );
        assert_eq!(
            read_all(&form(&[(r#"form-data; name="file""#, None, b"x")])).err(),
            Some(Problem::MissingFileName)
        );
        assert_eq!(
            read_all(&form(&[(
                r#"form-data; name="files"; filename="a""#,
                None,
                b"x"
            )]))
            .err(),
            Some(Problem::UnexpectedPart {
                name: "files".into()
            })
        );
    }

    #[test]
    fn refuses_malformed_bodies() {
        let a = file_part("a");
        let mut truncated = form(&[(&a, None, b"data")]);
        truncated.truncate(truncated.len() - 10);
        let endless_headers = format!("--{BOUNDARY}\r\nX-Pad: {}", "p".repeat(200 * 1024));
        for body in [
            truncated,
            b"no boundary here at all".to_vec(),
            endless_headers.into_bytes(),
            form(&[("attachment", None, b"x")]),
        ] {
            assert!(
                matches!(read_all(&body), Err(Problem::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(&body[..body.len().min(80)])
            );
        }
    }

    #[test]
    fn stops_at_the_file_after_the_last_allowed() {
        let a = file_part("a");
        let parts: Vec<(&str, Option<&str>, &[u8])> = (0..=MAX_FILES)
            .map(|_| (a.as_str(), None, &b"x"[..]))
            .collect();
        let mut handed = 0;
        let result = read_form(&form(&parts)[..], BOUNDARY, |_| {
            handed += 1;
            Ok(())
        });
        assert_eq!(result, Err(Problem::TooManyFiles { limit: MAX_FILES }));
        assert_eq!(handed, MAX_FILES);
    }

    #[test]
    fn a_problem_from_the_consumer_stops_the_read() {
        let a = file_part("a");
        let body = form(&[(&a, None, b"1"), (&a, None, b"2")]);
        let mut handed = 0;
        let result = read_form(&body[..], BOUNDARY, |_| {
            handed += 1;
            Err(Problem::Internal("stop"))
        });
        assert_eq!(result, Err(Problem::Internal("stop")));
        assert_eq!(handed, 1);
    }

    #[test]
    fn the_content_type_must_be_a_form_with_a_boundary() {
        assert_eq!(
            boundary(Some("multipart/form-data; boundary=\"a b\"")),
            Ok("a b".into())
        );
        assert_eq!(
            boundary(Some("Multipart/Form-Data; charset=utf-8; boundary=x")),
            Ok("x".into())
        );
        for unsupported in [
            None,
            Some("application/json"),
            Some("multipart/mixed; boundary=x"),
        ] {
            assert!(
                matches!(
                    boundary(unsupported),
                    Err(Problem::UnsupportedMediaType { .. })
                ),
                "{unsupported:?}"
            );
        }
        assert!(matches!(
            boundary(Some("multipart/form-data")),
            Err(Problem::Malformed(_))
        ));
    }

    #[test]
    fn unknown_and_form_types_are_left_to_the_name() {
        assert_eq!(
            file_type(Some("text/csv; charset=utf-8")),
            Some("text/csv; charset=utf-8".into())
        );
        assert_eq!(file_type(Some("Application/Octet-Stream")), None);
        assert_eq!(file_type(Some("application/x-www-form-urlencoded")), None);
        assert_eq!(file_type(Some(" ")), None);
        assert_eq!(file_type(None), None);
    }

    #[test]
    fn a_raw_body_may_be_exactly_the_limit() {
        let exact = vec![1u8; MAX_FILE_BYTES as usize];
        assert_eq!(read_file(&exact[..]).unwrap().len(), exact.len());
        let over = vec![1u8; MAX_FILE_BYTES as usize + 1];
        assert_eq!(
            read_file(&over[..]).err(),
            Some(Problem::FileTooLarge { name: None })
        );
    }
}
