//! Strict reading and writing of `Content-Disposition` header values.
//!
//! multer extracts `name` and `filename` leniently (it neither unescapes
//! quoted-pairs nor reads `filename*`), and a test server that accepts what
//! Bigin might refuse would hide client bugs. So the upload handler reads
//! the part's raw header with [`parse_part_disposition`], which follows the
//! grammars it cites and refuses everything else.

use std::fmt;

/// The parameters of a multipart part's `Content-Disposition` this server
/// cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartDisposition {
    /// The `name` parameter: the form field's name.
    pub(crate) name: Option<String>,
    /// The file name: `filename*` when present (RFC 7578 §4.2 allows it and
    /// RFC 6266 §4.3 says it wins), else `filename`.
    pub(crate) filename: Option<String>,
}

/// Why a `Content-Disposition` value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DispositionError {
    /// The disposition type is not `form-data` (RFC 7578 §4.2).
    NotFormData,
    /// The value does not follow the header's grammar; says what was
    /// expected.
    Syntax(&'static str),
    /// A quoted-string has no closing quote.
    UnterminatedQuote,
    /// A control character (CR and LF included) where none is allowed.
    ControlCharacter,
    /// A name or file name whose bytes are not UTF-8.
    InvalidUtf8,
    /// A parameter given twice (RFC 6266 §4.1 makes that invalid).
    DuplicateParameter,
    /// An RFC 8187 ext-value in a charset other than UTF-8.
    UnsupportedCharset,
    /// A `%` not followed by two hex digits in an ext-value.
    BadPercentEncoding,
}

impl fmt::Display for DispositionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFormData => f.write_str("disposition type is not form-data"),
            Self::Syntax(expected) => write!(f, "malformed Content-Disposition: {expected}"),
            Self::UnterminatedQuote => f.write_str("unterminated quoted-string"),
            Self::ControlCharacter => f.write_str("control character in a parameter"),
            Self::InvalidUtf8 => f.write_str("parameter is not valid UTF-8"),
            Self::DuplicateParameter => f.write_str("parameter given more than once"),
            Self::UnsupportedCharset => f.write_str("ext-value charset is not UTF-8"),
            Self::BadPercentEncoding => f.write_str("bad percent-encoding in ext-value"),
        }
    }
}

impl std::error::Error for DispositionError {}

/// Parses a multipart part's raw `Content-Disposition` value.
///
/// Grammar: `form-data *( OWS ";" OWS token OWS "=" OWS value ) OWS`
/// (RFC 6266 §4.1 as profiled by RFC 7578 §4.2), where a value is a token
/// or a quoted-string (RFC 9110 §5.6.2 and §5.6.4) and `filename*` takes an
/// RFC 8187 §3.2 ext-value. Names and types compare case-insensitively;
/// parameters other than `name`, `filename` and `filename*` are checked for
/// syntax and ignored.
pub(crate) fn parse_part_disposition(raw: &[u8]) -> Result<PartDisposition, DispositionError> {
    let mut cursor = Cursor { bytes: raw, pos: 0 };
    cursor.skip_ows();
    let kind = cursor
        .token()
        .ok_or(DispositionError::Syntax("a disposition type"))?;
    if !kind.eq_ignore_ascii_case(b"form-data") {
        return Err(DispositionError::NotFormData);
    }

    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut name = None;
    let mut filename = None;
    let mut filename_ext = None;
    loop {
        cursor.skip_ows();
        if cursor.at_end() {
            break;
        }
        if !cursor.eat(b';') {
            return Err(DispositionError::Syntax("`;` between parameters"));
        }
        cursor.skip_ows();
        let key = cursor
            .token()
            .ok_or(DispositionError::Syntax("a parameter name"))?
            .to_ascii_lowercase();
        cursor.skip_ows();
        if !cursor.eat(b'=') {
            return Err(DispositionError::Syntax("`=` after a parameter name"));
        }
        cursor.skip_ows();
        if seen.contains(&key) {
            return Err(DispositionError::DuplicateParameter);
        }

        // An ext-value is made of token characters only; RFC 8187 §3.2
        // does not allow it to be quoted.
        let value = if key.ends_with(b"*") || cursor.peek() != Some(b'"') {
            cursor
                .token()
                .ok_or(DispositionError::Syntax("a token or quoted-string value"))?
                .to_vec()
        } else {
            cursor.quoted_string()?
        };

        match key.as_slice() {
            b"name" => name = Some(checked_text(value)?),
            b"filename" => filename = Some(checked_text(value)?),
            b"filename*" => filename_ext = Some(decode_ext_value(&value)?),
            _ => {}
        }
        seen.push(key);
    }

    Ok(PartDisposition {
        name,
        filename: filename_ext.or(filename),
    })
}

/// Builds the `Content-Disposition` value of a download, the way Bigin
/// sends it: an ASCII-only `filename` fallback for old clients, then the
/// exact name as an RFC 8187 `filename*` (RFC 6266 §4.3 recommends both).
pub(crate) fn attachment_header(filename: &str) -> String {
    let mut fallback = String::with_capacity(filename.len());
    for c in filename.chars() {
        match c {
            '"' | '\\' => {
                fallback.push('\\');
                fallback.push(c);
            }
            ' '..='~' => fallback.push(c),
            // Neither non-ASCII nor control characters can go into a
            // quoted-string portably; `filename*` carries the real name.
            _ => fallback.push('_'),
        }
    }

    let mut encoded = String::with_capacity(filename.len());
    for &byte in filename.as_bytes() {
        if is_attr_char(byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }

    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// Reads an RFC 8187 §3.2 ext-value: `charset "'" [ language ] "'"
/// value-chars`, UTF-8 only.
fn decode_ext_value(raw: &[u8]) -> Result<String, DispositionError> {
    let mut pieces = raw.splitn(3, |&b| b == b'\'');
    let (Some(charset), Some(language), Some(value)) =
        (pieces.next(), pieces.next(), pieces.next())
    else {
        return Err(DispositionError::Syntax("charset'language'value"));
    };
    if !charset.eq_ignore_ascii_case(b"UTF-8") {
        return Err(DispositionError::UnsupportedCharset);
    }
    if !language
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    {
        return Err(DispositionError::Syntax("a language tag"));
    }

    let mut decoded = Vec::with_capacity(value.len());
    let mut bytes = value.iter().copied();
    while let Some(byte) = bytes.next() {
        if byte == b'%' {
            let high = bytes.next().and_then(hex_value);
            let low = bytes.next().and_then(hex_value);
            let (Some(high), Some(low)) = (high, low) else {
                return Err(DispositionError::BadPercentEncoding);
            };
            decoded.push(high << 4 | low);
        } else if is_attr_char(byte) {
            decoded.push(byte);
        } else {
            return Err(DispositionError::Syntax("attr-char or pct-encoded"));
        }
    }
    checked_text(decoded)
}

/// Turns parameter bytes into text: UTF-8, and no control character
/// but HTAB (the same set a quoted-string admits), so that CR and LF
/// smuggled in by percent-encoding are refused too.
fn checked_text(bytes: Vec<u8>) -> Result<String, DispositionError> {
    let text = String::from_utf8(bytes).map_err(|_| DispositionError::InvalidUtf8)?;
    if text.chars().any(|c| c.is_ascii_control() && c != '\t') {
        return Err(DispositionError::ControlCharacter);
    }
    Ok(text)
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// `attr-char` of RFC 8187 §3.2.1.
fn is_attr_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte)
}

/// `qdtext` of RFC 9110 §5.6.4; bytes from 0x80 up are `obs-text`, which
/// is how raw UTF-8 gets into a quoted file name.
fn is_qdtext(byte: u8) -> bool {
    matches!(byte, b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF)
}

/// The byte after a backslash in a `quoted-pair` (RFC 9110 §5.6.4).
fn is_quotable(byte: u8) -> bool {
    matches!(byte, b'\t' | b' ' | 0x21..=0x7E | 0x80..=0xFF)
}

/// A read position in a header value.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next_byte(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn eat(&mut self, expected: u8) -> bool {
        if self.peek() == Some(expected) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Skips optional whitespace (`OWS`, RFC 9110 §5.6.3).
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// Takes a non-empty run of `tchar`s.
    fn token(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.bytes[start..self.pos])
    }

    /// Takes a quoted-string starting at the cursor and returns its content
    /// with each quoted-pair `\x` replaced by `x`.
    fn quoted_string(&mut self) -> Result<Vec<u8>, DispositionError> {
        if !self.eat(b'"') {
            return Err(DispositionError::Syntax("an opening quote"));
        }
        let mut content = Vec::new();
        loop {
            match self.next_byte() {
                None => return Err(DispositionError::UnterminatedQuote),
                Some(b'"') => return Ok(content),
                Some(b'\\') => match self.next_byte() {
                    None => return Err(DispositionError::UnterminatedQuote),
                    Some(byte) if is_quotable(byte) => content.push(byte),
                    Some(_) => return Err(DispositionError::ControlCharacter),
                },
                Some(byte) if is_qdtext(byte) => content.push(byte),
                Some(_) => return Err(DispositionError::ControlCharacter),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<PartDisposition, DispositionError> {
        parse_part_disposition(raw.as_bytes())
    }

    fn filename(raw: &str) -> Option<String> {
        parse(raw).ok().and_then(|d| d.filename)
    }

    #[test]
    fn reads_name_and_quoted_filename() {
        let parsed = parse(r#"form-data; name="file"; filename="report.pdf""#);
        assert_eq!(
            parsed,
            Ok(PartDisposition {
                name: Some("file".into()),
                filename: Some("report.pdf".into()),
            })
        );
    }

    #[test]
    fn reads_token_values_and_ignores_case_and_whitespace() {
        let parsed = parse("Form-Data ;\tNAME = file ; FileName=a.txt ");
        assert_eq!(parsed.as_ref().map(|d| d.name.as_deref()), Ok(Some("file")));
        assert_eq!(
            filename("Form-Data ;\tNAME = file ; FileName=a.txt "),
            Some("a.txt".into())
        );
    }

    #[test]
    fn unescapes_quoted_pairs() {
        assert_eq!(
            filename(r#"form-data; name="file"; filename="a\"b\\c\d.txt""#),
            Some(r#"a"b\cd.txt"#.into())
        );
    }

    #[test]
    fn keeps_raw_utf8_inside_quotes() {
        assert_eq!(
            filename("form-data; name=\"file\"; filename=\"résumé 日本.txt\""),
            Some("résumé 日本.txt".into())
        );
    }

    #[test]
    fn ext_value_wins_whichever_comes_first() {
        let after = "form-data; name=file; filename=\"fallback.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt";
        let before =
            "form-data; name=file; filename*=utf-8'fr'r%C3%A9sum%C3%A9.txt; filename=\"x\"";
        assert_eq!(filename(after), Some("résumé.txt".into()));
        assert_eq!(filename(before), Some("résumé.txt".into()));
    }

    #[test]
    fn keeps_unknown_parameters_out_of_the_result() {
        assert_eq!(
            parse(r#"form-data; name="file"; size=12; filename="a""#),
            Ok(PartDisposition {
                name: Some("file".into()),
                filename: Some("a".into()),
            })
        );
        assert_eq!(parse("form-data; name=\"x\"").map(|d| d.filename), Ok(None));
    }

    #[test]
    fn refuses_cr_and_lf() {
        assert_eq!(
            parse("form-data; name=file; filename=\"a\r\nb\""),
            Err(DispositionError::ControlCharacter)
        );
        assert_eq!(
            parse("form-data; name=file; filename=\"a\\\nb\""),
            Err(DispositionError::ControlCharacter)
        );
        assert_eq!(
            parse("form-data; name=file; filename*=UTF-8''a%0D%0Ab"),
            Err(DispositionError::ControlCharacter)
        );
        assert_eq!(
            parse("form-data; name=file; filename*=UTF-8''a%0Ab"),
            Err(DispositionError::ControlCharacter)
        );
    }

    #[test]
    fn refuses_unterminated_quotes() {
        assert_eq!(
            parse(r#"form-data; name="file"; filename="abc"#),
            Err(DispositionError::UnterminatedQuote)
        );
        assert_eq!(
            parse(r#"form-data; name="file"; filename="abc\"#),
            Err(DispositionError::UnterminatedQuote)
        );
        assert_eq!(
            parse(r#"form-data; name="file"#),
            Err(DispositionError::UnterminatedQuote)
        );
    }

    #[test]
    fn refuses_invalid_utf8() {
        assert_eq!(
            parse_part_disposition(b"form-data; name=file; filename=\"a\xffb\""),
            Err(DispositionError::InvalidUtf8)
        );
        assert_eq!(
            parse("form-data; name=file; filename*=UTF-8''a%FFb"),
            Err(DispositionError::InvalidUtf8)
        );
    }

    #[test]
    fn refuses_bad_ext_values() {
        assert_eq!(
            parse("form-data; name=file; filename*=ISO-8859-1''a%E9"),
            Err(DispositionError::UnsupportedCharset)
        );
        assert_eq!(
            parse("form-data; name=file; filename*=UTF-8''a%4"),
            Err(DispositionError::BadPercentEncoding)
        );
        assert_eq!(
            parse("form-data; name=file; filename*=UTF-8''a%zz"),
            Err(DispositionError::BadPercentEncoding)
        );
        assert!(parse("form-data; name=file; filename*=UTF-8'a.txt").is_err());
        assert!(parse("form-data; name=file; filename*=\"UTF-8''a.txt\"").is_err());
        assert!(parse("form-data; name=file; filename*=UTF-8''a'b").is_err());
    }

    #[test]
    fn refuses_malformed_structure() {
        assert_eq!(
            parse(r#"attachment; filename="a""#),
            Err(DispositionError::NotFormData)
        );
        assert_eq!(
            parse(r#"form-data; name="a"; name="b""#),
            Err(DispositionError::DuplicateParameter)
        );
        assert!(matches!(parse(""), Err(DispositionError::Syntax(_))));
        assert!(matches!(
            parse("form-data; name"),
            Err(DispositionError::Syntax(_))
        ));
        assert!(matches!(
            parse("form-data; name="),
            Err(DispositionError::Syntax(_))
        ));
        assert!(matches!(
            parse("form-data name=a"),
            Err(DispositionError::Syntax(_))
        ));
        assert!(matches!(
            parse("form-data; name=a;"),
            Err(DispositionError::Syntax(_))
        ));
        assert!(matches!(
            parse(r#"form-data; filename="a"b"#),
            Err(DispositionError::Syntax(_))
        ));
    }

    #[test]
    fn attachment_header_escapes_and_encodes() {
        assert_eq!(
            attachment_header("plain.txt"),
            "attachment; filename=\"plain.txt\"; filename*=UTF-8''plain.txt"
        );
        assert_eq!(
            attachment_header("a \"b\"\\é.txt"),
            "attachment; filename=\"a \\\"b\\\"\\\\_.txt\"; filename*=UTF-8''a%20%22b%22%5C%C3%A9.txt"
        );
    }

    #[test]
    fn attachment_header_round_trips_through_the_parser() {
        for name in ["a\"b\\c", "日本語.txt", "tab\there", "100% sure'.txt"] {
            let header = attachment_header(name);
            let params = header.trim_start_matches("attachment");
            let reparsed = parse(&format!("form-data{params}"));
            assert_eq!(
                reparsed.map(|d| d.filename),
                Ok(Some(name.to_owned())),
                "{header}"
            );
        }
    }
}
