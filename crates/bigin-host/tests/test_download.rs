//! Reading files back by id through the component.

mod common;

use bigin_host::UploadError;
use common::*;

#[test]
fn a_file_comes_back_with_its_name_type_and_bytes() {
    let server = server();
    let data = pattern(300_000, 3);
    let name = "Zoë's \"report\" 2026.png";
    let refs = runner()
        .upload(&settings(&server), &[file(name, data.clone())])
        .unwrap()
        .unwrap();
    let back = runner()
        .download(&settings(&server), &refs[0].id)
        .unwrap()
        .expect("the file downloads");
    assert_eq!(back.name, name);
    assert_eq!(back.content_type, "image/png", "no charset noise");
    assert!(back.data == data);
}

#[test]
fn an_unknown_id_is_not_found() {
    let server = server();
    let error = runner()
        .download(&settings(&server), "no-such-id")
        .unwrap()
        .expect_err("204 means no such file");
    match error {
        UploadError::NotFound(f) => {
            assert_eq!(f.http_status, Some(204));
            assert_eq!(f.files, vec!["no-such-id".to_owned()]);
        }
        other => panic!("expected not-found, got {other:?}"),
    }
}

#[test]
fn an_empty_id_is_refused_before_any_request() {
    let server = server();
    match runner().download(&settings(&server), "  ").unwrap() {
        Err(UploadError::InvalidFile(f)) => assert!(f.reason.contains("empty")),
        other => panic!("expected invalid-file, got {other:?}"),
    }
    assert_eq!(server.stats().requests.values().sum::<u64>(), 0);
}
