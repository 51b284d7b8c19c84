//! The `Content-Disposition` header of a `multipart/form-data` part: its
//! field `name` and `filename` (RFC 7578 §4.2).
//!
//! Real senders do not quote the way RFC 7578 reads. Browsers follow the
//! WHATWG HTML form encoding, and curl has done the same since 7.81: a
//! quoted value ends at the next `"`, backslashes are literal, and the three
//! characters that cannot appear are percent-encoded (`"` as `%22`, CR as
//! `%0D`, LF as `%0A`). This parser follows that, and also accepts the
//! RFC's quoted-pair `\"` that older curl sent, when more of the value
//! follows it.

use std::fmt;

use percent_encoding::percent_decode_str;

/// The parameters of a part's `Content-Disposition` that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    /// The form field's name.
    pub name: String,
    /// The file's name, when the part is a file.
    pub filename: Option<String>,
}

/// Why a `Content-Disposition` could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(&'static str);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad Content-Disposition: {}", self.0)
    }
}

impl std::error::Error for Invalid {}

/// Reads a part's `Content-Disposition` value.
pub fn parse(value: &[u8]) -> Result<Disposition, Invalid> {
    let mut input = Input { rest: value };
    input.skip_space();
    let kind = input.token();
    // RFC 7578 §4.2: the type is `form-data`, compared without case.
    if !kind.eq_ignore_ascii_case(b"form-data") {
        return Err(Invalid("the type is not form-data"));
    }
    let mut name = None;
    let mut filename = None;
    let mut filename_ext = None;
    loop {
        input.skip_space();
        if input.rest.is_empty() {
            break;
        }
        if !input.eat(b';') {
            return Err(Invalid("parameters must be separated by `;`"));
        }
        input.skip_space();
        if input.rest.is_empty() {
            break;
        }
        let key = input.token();
        if key.is_empty() {
            return Err(Invalid("a parameter has no name"));
        }
        input.skip_space();
        if !input.eat(b'=') {
            return Err(Invalid("a parameter has no value"));
        }
        input.skip_space();
        let raw = input.value()?;
        let slot = if key.eq_ignore_ascii_case(b"name") {
            &mut name
        } else if key.eq_ignore_ascii_case(b"filename") {
            &mut filename
        } else if key.eq_ignore_ascii_case(b"filename*") {
            &mut filename_ext
        } else {
            continue;
        };
        if slot.is_some() {
            return Err(Invalid("a parameter is repeated"));
        }
        *slot = Some(String::from_utf8(raw).map_err(|_| Invalid("a value is not UTF-8"))?);
    }
    // RFC 7578 §4.2: every part names its field.
    let name = name.ok_or(Invalid("there is no `name`"))?;
    // RFC 7578 §4.2 tells senders not to use `filename*`; a sender that
    // does means it (RFC 6266 §4.3), so it wins when it can be read.
    let filename = filename_ext
        .as_deref()
        .and_then(decode_ext_value)
        .or(filename.map(|f| unescape_html(&f)));
    Ok(Disposition {
        name: unescape_html(&name),
        filename,
    })
}

/// Undoes the WHATWG HTML form encoding of names, which replaces `"`, CR
/// and LF by `%22`, `%0D` and `%0A` and leaves every other `%` alone.
///
/// Limitation: the encoding is ambiguous, since `%` itself is not escaped:
/// a file really named `50%22.txt` arrives as `50".txt`. Browsers and curl
/// give no way to tell the two apart.
fn unescape_html(value: &str) -> String {
    value
        .replace("%22", "\"")
        .replace("%0D", "\r")
        .replace("%0A", "\n")
}

/// Reads an RFC 8187 ext-value (`UTF-8''caf%C3%A9.txt`); `None` for any
/// other charset or a broken encoding.
fn decode_ext_value(value: &str) -> Option<String> {
    let mut fields = value.splitn(3, '\'');
    let charset = fields.next()?;
    let _language = fields.next()?;
    let encoded = fields.next()?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    percent_decode_str(encoded)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    fn skip_space(&mut self) {
        while let [b' ' | b'\t', rest @ ..] = self.rest {
            self.rest = rest;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        match self.rest {
            [first, rest @ ..] if *first == byte => {
                self.rest = rest;
                true
            }
            _ => false,
        }
    }

    /// An RFC 9110 §5.6.2 token.
    fn token(&mut self) -> &'a [u8] {
        let end = self
            .rest
            .iter()
            .position(|&b| !is_tchar(b))
            .unwrap_or(self.rest.len());
        let (token, rest) = self.rest.split_at(end);
        self.rest = rest;
        token
    }

    /// A parameter value: a quoted string, or anything up to the next `;`
    /// or space (some senders leave UTF-8 names unquoted).
    fn value(&mut self) -> Result<Vec<u8>, Invalid> {
        if !self.eat(b'"') {
            let end = self
                .rest
                .iter()
                .position(|&b| matches!(b, b';' | b' ' | b'\t' | b'"'))
                .unwrap_or(self.rest.len());
            let (value, rest) = self.rest.split_at(end);
            self.rest = rest;
            return Ok(value.to_vec());
        }
        let mut value = Vec::new();
        let mut i = 0;
        while i < self.rest.len() {
            match self.rest[i] {
                b'"' if i > 0 && self.rest[i - 1] == b'\\' && !ends_value(&self.rest[i + 1..]) => {
                    // Older curl's quoted-pair: the backslash was an escape.
                    value.pop();
                    value.push(b'"');
                }
                b'"' => {
                    self.rest = &self.rest[i + 1..];
                    return Ok(value);
                }
                b'\r' | b'\n' => return Err(Invalid("a value has a line break")),
                byte => value.push(byte),
            }
            i += 1;
        }
        Err(Invalid("a quoted value is not closed"))
    }
}

/// Whether what follows a `"` shows it closed the value: nothing more, or
/// the next parameter.
fn ends_value(after: &[u8]) -> bool {
    let mut rest = after;
    while let [b' ' | b'\t', tail @ ..] = rest {
        rest = tail;
    }
    matches!(rest, [] | [b';', ..])
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(value: &str) -> Result<Disposition, Invalid> {
        parse(value.as_bytes())
    }

    fn file(name: &str, filename: &str) -> Disposition {
        Disposition {
            name: name.into(),
            filename: Some(filename.into()),
        }
    }

    #[test]
    fn reads_what_browsers_and_curl_send() {
        assert_eq!(
            parse_str(r#"form-data; name="file"; filename="a.txt""#),
            Ok(file("file", "a.txt"))
        );
        assert_eq!(
            parse_str(r#"form-data; name="note""#),
            Ok(Disposition {
                name: "note".into(),
                filename: None
            })
        );
        assert_eq!(
            parse_str("form-data; name=\"file\"; filename=\"naïve résumé 数据.pdf\""),
            Ok(file("file", "naïve résumé 数据.pdf"))
        );
    }

    #[test]
    fn undoes_the_html_percent_encoding_only() {
        // WHATWG HTML, multipart/form-data encoding: `"`, CR and LF only.
        assert_eq!(
            parse_str(r#"form-data; name="file"; filename="say %22hi%22 100%.txt""#),
            Ok(file("file", "say \"hi\" 100%.txt"))
        );
        assert_eq!(
            parse_str(r#"form-data; name="file"; filename="a%0D%0Ab%41""#),
            Ok(file("file", "a\r\nb%41"))
        );
    }

    #[test]
    fn backslashes_are_literal_but_an_inner_escaped_quote_is_read() {
        assert_eq!(
            parse_str(r#"form-data; name="file"; filename="C:\dir\a.txt""#),
            Ok(file("file", r"C:\dir\a.txt"))
        );
        assert_eq!(
            parse_str(r#"form-data; name="file"; filename="ends\""#),
            Ok(file("file", r"ends\"))
        );
        assert_eq!(
            parse_str(r#"form-data; filename="ends\" ; name="file""#),
            Ok(file("file", r"ends\"))
        );
        assert_eq!(
            parse_str(r#"form-data; name="file"; filename="say \"hi\" now""#),
            Ok(file("file", r#"say "hi" now"#))
        );
    }

    #[test]
    fn prefers_a_readable_ext_value() {
        assert_eq!(
            parse_str(
                r#"form-data; name=file; filename="euro.txt"; filename*=UTF-8''%E2%82%AC.txt"#
            ),
            Ok(file("file", "€.txt"))
        );
        assert_eq!(
            parse_str(
                r#"form-data; name=file; filename="plain.txt"; filename*=ISO-8859-1''%A3.txt"#
            ),
            Ok(file("file", "plain.txt"))
        );
    }

    #[test]
    fn is_lenient_about_case_space_and_order() {
        assert_eq!(
            parse_str("Form-Data ;FILENAME = \"a b.txt\" ;  Name=file ;"),
            Ok(file("file", "a b.txt"))
        );
    }

    #[test]
    fn refuses_what_cannot_be_read() {
        for bad in [
            r#"attachment; name="file""#,
            r#"form-data; filename="a.txt""#,
            r#"form-data; name="file"; filename="open"#,
            r#"form-data; name="file" filename="a""#,
            r#"form-data; name="file"; name="other""#,
            r#"form-data; name"#,
            r#"form-data; ="x""#,
        ] {
            assert!(parse_str(bad).is_err(), "{bad}");
        }
        assert!(parse(b"form-data; name=\"file\"; filename=\"\xff.txt\"").is_err());
    }
}
