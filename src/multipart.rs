//! `multipart/form-data` bodies as Bigin's Files API takes them (RFC 7578).
//!
//! The body is never assembled in one buffer: [`Body::chunks`] yields the
//! part headers and borrows each file's bytes in place, so a file given as
//! bytes is copied once more, by the transport, on its way out. The exact
//! length is known before the first byte is written, which lets the request
//! carry a `Content-Length` instead of chunked encoding.

use std::fmt::Write as _;

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
    pub data: &'a [u8],
}

impl<'a> Part<'a> {
    /// A file part named [`FIELD_NAME`].
    pub fn file(file_name: &'a str, content_type: &'a str, data: &'a [u8]) -> Self {
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
            data: value.as_bytes(),
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

    /// The exact number of bytes [`Body::chunks`] yields.
    pub fn content_length(&self) -> u64 {
        let heads: usize = self.heads.iter().map(String::len).sum();
        let data: usize = self.parts.iter().map(|p| p.data.len()).sum();
        (heads + data + self.tail.len()) as u64
    }

    /// The body in order, as borrowed slices; empty slices are skipped.
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.heads
            .iter()
            .zip(&self.parts)
            .flat_map(|(head, part)| [head.as_bytes(), part.data])
            .chain(std::iter::once(self.tail.as_bytes()))
            .filter(|chunk| !chunk.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(parts: Vec<Part<'_>>) -> Vec<u8> {
        let body = Body::new("B0UNDARY".into(), parts);
        let bytes: Vec<u8> = body.chunks().flatten().copied().collect();
        assert_eq!(bytes.len() as u64, body.content_length());
        bytes
    }

    #[test]
    fn two_parts_byte_exact() {
        let bytes = encode(vec![
            Part::file("a.txt", "text/plain", b"hello"),
            Part::file("b", "application/octet-stream", b""),
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
            b"x",
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
