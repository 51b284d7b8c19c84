//! Which handler a request goes to, and the checks made before its body is
//! touched.

use percent_encoding::percent_decode_str;

use crate::problem::Problem;

/// A request this front serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: the upload page.
    Page,
    /// `POST /upload`: a `multipart/form-data` form.
    UploadForm,
    /// `PUT /upload/{name}`: the body is the file.
    UploadRaw {
        /// The file's name, percent-decoded.
        name: String,
    },
}

/// Picks the route for `method` and `path_with_query`.
pub fn route(method: &str, path_with_query: &str) -> Result<Route, Problem> {
    let path = path_with_query
        .split_once('?')
        .map_or(path_with_query, |(path, _)| path);
    match path {
        "/" => match method {
            "GET" => Ok(Route::Page),
            _ => Err(Problem::MethodNotAllowed { allow: "GET" }),
        },
        "/upload" => match method {
            "POST" => Ok(Route::UploadForm),
            _ => Err(Problem::MethodNotAllowed { allow: "POST" }),
        },
        _ => match path.strip_prefix("/upload/") {
            Some(segment) if !segment.contains('/') => match method {
                "PUT" => Ok(Route::UploadRaw {
                    name: file_name(segment)?,
                }),
                _ => Err(Problem::MethodNotAllowed { allow: "PUT" }),
            },
            _ => Err(Problem::UnknownPath),
        },
    }
}

/// The file name a path segment spells. The upload component checks the
/// rest (control characters, length) and says what is wrong.
fn file_name(segment: &str) -> Result<String, Problem> {
    let name = percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| Problem::BadName("the file name is not UTF-8 once percent-decoded"))?;
    if name.is_empty() {
        return Err(Problem::BadName("the file name is empty"));
    }
    Ok(name.into_owned())
}

/// Refuses an upload a browser sent from a page of another origin, so that
/// no web page the user visits can spend this server's Bigin token. Such a
/// browser always sends `Origin`; curl and other tools send none.
///
/// Limitation: a DNS-rebinding page (a name of the attacker's that
/// resolves to 127.0.0.1) is same-origin by this test. The front cannot
/// know which host names are its own; keep `wasmtime serve` on a loopback
/// address and browse to it by IP.
pub fn check_origin(origin: Option<&str>, authority: Option<&str>) -> Result<(), Problem> {
    let Some(origin) = origin else {
        return Ok(());
    };
    let same = authority.is_some_and(|authority| {
        ["http://", "https://"].iter().any(|scheme| {
            origin
                .strip_prefix(scheme)
                .is_some_and(|host| host.eq_ignore_ascii_case(authority))
        })
    });
    if same {
        Ok(())
    } else {
        Err(Problem::CrossOrigin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_the_three_paths() {
        assert_eq!(route("GET", "/"), Ok(Route::Page));
        assert_eq!(route("GET", "/?x=1"), Ok(Route::Page));
        assert_eq!(route("POST", "/upload"), Ok(Route::UploadForm));
        assert_eq!(
            route("PUT", "/upload/na%C3%AFve%20file.txt?v=2"),
            Ok(Route::UploadRaw {
                name: "naïve file.txt".into()
            })
        );
    }

    #[test]
    fn a_percent_encoded_slash_stays_in_the_name() {
        assert_eq!(
            route("PUT", "/upload/a%2Fb"),
            Ok(Route::UploadRaw { name: "a/b".into() })
        );
    }

    #[test]
    fn refuses_other_methods_paths_and_names() {
        assert_eq!(
            route("DELETE", "/upload"),
            Err(Problem::MethodNotAllowed { allow: "POST" })
        );
        assert_eq!(
            route("POST", "/"),
            Err(Problem::MethodNotAllowed { allow: "GET" })
        );
        assert_eq!(
            route("GET", "/upload/a.txt"),
            Err(Problem::MethodNotAllowed { allow: "PUT" })
        );
        assert_eq!(route("GET", "/favicon.ico"), Err(Problem::UnknownPath));
        assert_eq!(route("PUT", "/upload/a/b"), Err(Problem::UnknownPath));
        assert!(matches!(route("PUT", "/upload/"), Err(Problem::BadName(_))));
        assert!(matches!(
            route("PUT", "/upload/%FF.txt"),
            Err(Problem::BadName(_))
        ));
    }

    #[test]
    fn only_same_origin_browsers_and_non_browsers_may_upload() {
        let here = Some("127.0.0.1:8080");
        assert_eq!(check_origin(None, here), Ok(()));
        assert_eq!(check_origin(Some("http://127.0.0.1:8080"), here), Ok(()));
        assert_eq!(
            check_origin(Some("http://evil.invalid"), here),
            Err(Problem::CrossOrigin)
        );
        assert_eq!(check_origin(Some("null"), here), Err(Problem::CrossOrigin));
        assert_eq!(
            check_origin(Some("http://127.0.0.1:8080"), None),
            Err(Problem::CrossOrigin)
        );
    }
}
