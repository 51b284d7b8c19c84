//! `multipart/form-data` bodies as Bigin's Files API takes them (RFC 7578).
//!
//! The body is never assembled in one buffer: [`Body::write`] hands the
//! part headers and each file's bytes to a sink in order, borrowing bytes in
//! place and reading a [`Source`] chunk by chunk, so a file given as bytes is
//! copied once more, by the transport, on its way out, and a file given as a
//! path is never held whole. The exact length is known before the first
//! byte is written, which lets the request carry a `Content-Length` instead
//! of chunked encoding. Each part's SHA-256 is computed on the way.

use std::cell::RefCell;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// The form field name Bigin reads files from; every file is a part of this
/// name, repeated (RFC 7578 section 4.3).
pub const FIELD_NAME: &str = "file";

/// Used when no content type is given and the extension says nothing.
pub const FALLBACK_CONTENT_TYPE: &str = "application/octet-stream";

/// One file to encode, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    /// The form field: [`FIELD_NAME`] for files. A plain token.
    pub field: &'a str,
    /// Already checked by [`check_file_name`]; `None` for a text field,
    /// which then has no `Content-Type` (RFC 7578 section 4.4 defaults it
    /// to `text/plain`).
    pub file_name: Option<&'a str>,
    /// Already checked by [`check_content_type`].
    pub content_type: &'a str,
    pub data: Data<'a>,
}

/// A part's bytes: in memory, or read as they are sent.
#[derive(Clone, Copy)]
pub enum Data<'a> {
    Bytes(&'a [u8]),
    Source(&'a dyn Source),
}

impl std::fmt::Debug for Data<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Data::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            Data::Source(source) => write!(f, "Source({} bytes)", source.len()),
        }
    }
}

impl Data<'_> {
    pub fn len(&self) -> u64 {
        match self {
            Data::Bytes(bytes) => bytes.len() as u64,
            Data::Source(source) => source.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a part's bytes could not all be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError(pub String);

/// Why writing a body stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The sink refused more bytes (the connection is gone).
    Sink,
    /// A source failed or did not hold the bytes it announced.
    Source(SourceError),
}

/// Bytes read as they are sent, such as a file in a preopened directory.
/// It may be streamed more than once, when a request is retried.
pub trait Source {
    /// The exact number of bytes [`Source::stream`] yields.
    fn len(&self) -> u64;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hands the bytes to `sink` in order, from the first.
    fn stream(
        &self,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), WriteError>,
    ) -> Result<(), WriteError>;
}

impl<'a> Part<'a> {
    /// A file part named [`FIELD_NAME`].
    pub fn file(file_name: &'a str, content_type: &'a str, data: Data<'a>) -> Self {
        Part {
            field: FIELD_NAME,
            file_name: Some(file_name),
            content_type,
            data,
        }
    }

    /// A text field.
    pub fn text(field: &'a str, value: &'a str) -> Self {
        Part {
            field,
            file_name: None,
            content_type: "text/plain",
            data: Data::Bytes(value.as_bytes()),
        }
    }
}

/// Why a name or type cannot go into a part header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderValueError {
    #[error("the file name is empty")]
    EmptyName,
    #[error("the file name holds a line break (CR or LF), which would end the part header")]
    LineBreak,
    #[error("the file name holds the control character U+{0:04X}")]
    Control(u32),
    #[error("the content type `{0}` is not of the form type/subtype")]
    BadContentType(String),
}

/// Checks that `name` can be sent as a quoted `filename` parameter.
///
/// RFC 7578 section 4.2 puts the name in a `Content-Disposition` header; a CR
/// or LF there would end the header and let the name forge headers or parts,
/// and other control characters are not allowed in a quoted-string (RFC 9110
/// section 5.6.4), so all of them are refused rather than rewritten.
pub fn check_file_name(name: &str) -> Result<(), HeaderValueError> {
    if name.is_empty() {
        return Err(HeaderValueError::EmptyName);
    }
    for c in name.chars() {
        match c {
            '\r' | '\n' => return Err(HeaderValueError::LineBreak),
            '\t' => {}
            c if c.is_ascii_control() => return Err(HeaderValueError::Control(c as u32)),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a caller-given content type: `type/subtype` with optional
/// parameters, visible ASCII only, so it cannot break the part header.
pub fn check_content_type(content_type: &str) -> Result<(), HeaderValueError> {
    let bad = || HeaderValueError::BadContentType(content_type.escape_debug().to_string());
    if !content_type
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
    {
        return Err(bad());
    }
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    match essence.split_once('/') {
        Some((ty, sub)) if is_token(ty) && is_token(sub) => Ok(()),
        _ => Err(bad()),
    }
}

/// An RFC 9110 `token`: what a media type and subtype are made of.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The content type to send: the given one, else a guess from the file
/// name's extension, else [`FALLBACK_CONTENT_TYPE`]. Never empty.
pub fn content_type_for<'a>(given: Option<&'a str>, file_name: &str) -> &'a str {
    match given.map(str::trim) {
        Some(ct) if !ct.is_empty() => ct,
        _ => mime_guess::from_path(file_name)
            .first_raw()
            .unwrap_or(FALLBACK_CONTENT_TYPE),
    }
}

/// Makes a boundary from 128 random bits.
///
/// RFC 2046 section 5.1.1 asks for a boundary that cannot occur in the
/// parts. Scanning every file for it would cost a pass over each byte;
/// instead, like browsers, a random 128-bit boundary makes a collision as
/// unlikely as guessing it.
pub fn boundary(random: [u64; 2]) -> String {
    format!("bigin-files-{:016x}{:016x}", random[0], random[1])
}

/// Quotes a file name for the `filename` parameter.
///
/// The name goes raw as UTF-8 (RFC 7578 section 4.2 allows it and Bigin
/// shows what it receives); `"` and `\` become quoted-pairs, `\"` and `\\`
/// (RFC 9110 section 5.6.4), which a strict parser turns back into the name.
fn quote(name: &str, out: &mut String) {
    out.push('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// A complete `multipart/form-data` body, ready to be written in chunks.
#[derive(Debug)]
pub struct Body<'a> {
    /// The SHA-256 of each part's bytes, set by the last complete write.
    digests: RefCell<Vec<Option<String>>>,
    boundary: String,
    /// The header block before each part's bytes, one per part.
    heads: Vec<String>,
    parts: Vec<Part<'a>>,
    /// `--boundary--` and its line break.
    tail: String,
}

impl<'a> Body<'a> {
    /// Encodes `parts`, whose names and types were checked already.
    pub fn new(boundary: String, parts: Vec<Part<'a>>) -> Self {
        let heads = parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let mut head = String::with_capacity(boundary.len() + 160);
                // Every part after the first starts with the CRLF that ends
                // the previous part's bytes (RFC 2046 section 5.1.1: the CRLF
                // before a delimiter belongs to the delimiter).
                if i > 0 {
                    head.push_str("\r\n");
                }
                let _ = write!(
                    head,
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"",
                    part.field
                );
                match part.file_name {
                    Some(file_name) => {
                        head.push_str("; filename=");
                        quote(file_name, &mut head);
                        let _ = write!(head, "\r\nContent-Type: {}\r\n\r\n", part.content_type);
                    }
                    None => head.push_str("\r\n\r\n"),
                }
                head
            })
            .collect();
        let tail = if parts.is_empty() {
            format!("--{boundary}--\r\n")
        } else {
            format!("\r\n--{boundary}--\r\n")
        };
        Body {
            digests: RefCell::new(vec![None; parts.len()]),
            boundary,
            heads,
            parts,
            tail,
        }
    }

    /// The request's `Content-Type` header value.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The exact number of bytes [`Body::write`] hands over.
    pub fn content_length(&self) -> u64 {
        let heads: usize = self.heads.iter().map(String::len).sum();
        let data: u64 = self.parts.iter().map(|p| p.data.len()).sum();
        heads as u64 + data + self.tail.len() as u64
    }

    /// Hands the whole body to `sink` in order, hashing each part's bytes on
    /// the way. A source that yields other than its announced length fails
    /// the write, since the `Content-Length` already went out.
    pub fn write(
        &self,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), WriteError>,
    ) -> Result<(), WriteError> {
        for (i, (head, part)) in self.heads.iter().zip(&self.parts).enumerate() {
            sink(head.as_bytes())?;
            let mut hash = Sha256::new();
            let mut count = 0u64;
            let mut hashed = |chunk: &[u8]| {
                hash.update(chunk);
                count += chunk.len() as u64;
                if chunk.is_empty() {
                    Ok(())
                } else {
                    sink(chunk)
                }
            };
            match part.data {
                Data::Bytes(bytes) => hashed(bytes)?,
                Data::Source(source) => source.stream(&mut hashed)?,
            }
            if count != part.data.len() {
                return Err(WriteError::Source(SourceError(format!(
                    "{} yielded {count} bytes, not the {} announced; did it change?",
                    part.file_name.unwrap_or(part.field),
                    part.data.len()
                ))));
            }
            if let Some(digest) = self.digests.borrow_mut().get_mut(i) {
                *digest = Some(hex(&hash.finalize()));
            }
        }
        sink(self.tail.as_bytes())
    }

    /// The SHA-256 of part `index`'s bytes, once a write got past it.
    pub fn digest(&self, index: usize) -> Option<String> {
        self.digests.borrow().get(index).cloned().flatten()
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(parts: Vec<Part<'_>>) -> Vec<u8> {
        let body = Body::new("B0UNDARY".into(), parts);
        let mut bytes = Vec::new();
        body.write(&mut |chunk| {
            bytes.extend_from_slice(chunk);
            Ok(())
        })
        .unwrap();
        assert_eq!(bytes.len() as u64, body.content_length());
        bytes
    }

    /// A source that yields `data` in chunks of three bytes, or lies about
    /// its length.
    struct Chunked {
        data: Vec<u8>,
        announced: u64,
    }

    impl Source for Chunked {
        fn len(&self) -> u64 {
            self.announced
        }
        fn stream(
            &self,
            sink: &mut dyn FnMut(&[u8]) -> Result<(), WriteError>,
        ) -> Result<(), WriteError> {
            self.data.chunks(3).try_for_each(sink)
        }
    }

    #[test]
    fn a_source_is_streamed_and_hashed_on_the_way() {
        let source = Chunked {
            data: b"streamed bytes".to_vec(),
            announced: 14,
        };
        let body = Body::new(
            "B".into(),
            vec![Part::file(
                "s.bin",
                "application/octet-stream",
                Data::Source(&source),
            )],
        );
        let mut bytes = Vec::new();
        body.write(&mut |c| {
            bytes.extend_from_slice(c);
            Ok(())
        })
        .unwrap();
        assert!(
            String::from_utf8(bytes)
                .unwrap()
                .contains("\r\n\r\nstreamed bytes\r\n--B--")
        );
        assert_eq!(
            body.digest(0).unwrap(),
            hex(&Sha256::digest(b"streamed bytes"))
        );
    }

    #[test]
    fn a_source_that_changed_length_fails_the_write() {
        let source = Chunked {
            data: b"short".to_vec(),
            announced: 9,
        };
        let body = Body::new(
            "B".into(),
            vec![Part::file("s", "a/b", Data::Source(&source))],
        );
        let outcome = body.write(&mut |_| Ok(()));
        assert!(matches!(outcome, Err(WriteError::Source(e)) if e.0.contains("did it change")));
        assert_eq!(body.digest(0), None);
    }

    #[test]
    fn two_parts_byte_exact() {
        let bytes = encode(vec![
            Part::file("a.txt", "text/plain", Data::Bytes(b"hello")),
            Part::file("b", "application/octet-stream", Data::Bytes(b"")),
        ]);
        let expected = "--B0UNDARY\r\n\
            Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
            Content-Type: text/plain\r\n\
            \r\n\
            hello\r\n\
            --B0UNDARY\r\n\
            Content-Disposition: form-data; name=\"file\"; filename=\"b\"\r\n\
            Content-Type: application/octet-stream\r\n\
            \r\n\
            \r\n\
            --B0UNDARY--\r\n";
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
    }

    #[test]
    fn quotes_and_backslashes_are_quoted_pairs_and_utf8_goes_raw() {
        let bytes = encode(vec![Part::file(
            "Zoë \"quoted\" a\\b.txt",
            "text/plain",
            Data::Bytes(b"x"),
        )]);
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains(r#"filename="Zoë \"quoted\" a\\b.txt""#),
            "{text}"
        );
    }

    #[test]
    fn a_text_field_has_no_filename_or_type() {
        let bytes = encode(vec![Part::text("attachmentUrl", "https://example.com/a")]);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "--B0UNDARY\r\nContent-Disposition: form-data; name=\"attachmentUrl\"\r\n\r\n\
             https://example.com/a\r\n--B0UNDARY--\r\n"
        );
    }

    #[test]
    fn line_breaks_and_controls_are_refused() {
        assert_eq!(check_file_name("a\r\nb"), Err(HeaderValueError::LineBreak));
        assert_eq!(check_file_name("a\nb"), Err(HeaderValueError::LineBreak));
        assert_eq!(
            check_file_name("a\u{0}b"),
            Err(HeaderValueError::Control(0))
        );
        assert_eq!(check_file_name(""), Err(HeaderValueError::EmptyName));
        assert_eq!(check_file_name("tab\tok ünïcode \"\\"), Ok(()));
    }

    #[test]
    fn content_types_are_checked_and_guessed() {
        assert!(check_content_type("image/png").is_ok());
        assert!(check_content_type("text/plain; charset=utf-8").is_ok());
        assert!(check_content_type("text/plain\r\nX-Evil: 1").is_err());
        assert!(check_content_type("nonsense").is_err());
        assert!(check_content_type("/png").is_err());
        assert_eq!(content_type_for(None, "pic.PNG"), "image/png");
        assert_eq!(content_type_for(Some(" "), "README.md"), "text/markdown");
        assert_eq!(content_type_for(None, "Makefile"), FALLBACK_CONTENT_TYPE);
        assert_eq!(content_type_for(Some("text/csv"), "x.bin"), "text/csv");
    }

    #[test]
    fn boundary_is_long_and_valid() {
        let b = boundary([u64::MAX, 1]);
        assert_eq!(b, "bigin-files-ffffffffffffffff0000000000000001");
        assert!(b.len() <= 70, "RFC 2046 caps boundaries at 70 characters");
    }
}
