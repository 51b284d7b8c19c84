//! Attaching uploaded files to records, and attachments, through the
//! component against the local server.

mod common;

use bigin_host::{Attachment, UploadError};
use common::*;
use serde_json::json;

fn upload_ids(server: &bigin_local::LocalServer, names: &[&str]) -> Vec<String> {
    let files: Vec<_> = names
        .iter()
        .map(|n| file(n, format!("bytes of {n}")))
        .collect();
    runner()
        .upload(&settings(server), &files)
        .unwrap()
        .expect("uploads")
        .into_iter()
        .map(|r| r.id)
        .collect()
}

#[test]
fn uploaded_ids_go_into_a_records_field_once() {
    let server = server();
    let record = server
        .create_record("Contacts", json!({"Last_Name": "Lovelace"}))
        .expect("a record");
    let ids = upload_ids(&server, &["cv.pdf", "photo.png"]);
    let status = runner()
        .attach(&settings(&server), "Contacts", &record, "Resume", &ids)
        .unwrap()
        .expect("attached");
    assert_eq!(status.record_id, record);
    assert_eq!(status.code, "SUCCESS");
    let stored = server.record("Contacts", &record).expect("the record");
    let field: Vec<_> = stored["Resume"]
        .as_array()
        .expect("the field holds a list")
        .iter()
        .map(|v| v["file_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(field, ids);

    // The ids are used up: a second attach is refused with the way out.
    let again = runner()
        .attach(&settings(&server), "Contacts", &record, "Resume", &ids[..1])
        .unwrap();
    match again {
        Err(UploadError::Api(f)) => {
            assert_eq!(f.code.as_deref(), Some("INVALID_DATA"));
            assert!(f.message.contains("upload the file again"), "{}", f.message);
            assert_eq!(f.files, vec![ids[0].clone()]);
        }
        other => panic!("expected api INVALID_DATA, got {other:?}"),
    }
}

#[test]
fn an_unknown_file_id_or_record_is_refused_by_the_server() {
    let server = server();
    let record = server.create_record("Pipelines", json!({})).unwrap();
    match runner()
        .attach(
            &settings(&server),
            "Pipelines",
            &record,
            "Files",
            &["nope".into()],
        )
        .unwrap()
    {
        Err(UploadError::Api(f)) => assert_eq!(f.code.as_deref(), Some("INVALID_DATA")),
        other => panic!("expected api, got {other:?}"),
    }
    let ids = upload_ids(&server, &["a.txt"]);
    match runner()
        .attach(&settings(&server), "Pipelines", "999999", "Files", &ids)
        .unwrap()
    {
        Err(UploadError::Api(f)) => assert_eq!(f.code.as_deref(), Some("INVALID_DATA")),
        other => panic!("expected api, got {other:?}"),
    }
    assert!(
        !server.file(&ids[0]).unwrap().used,
        "a refused attach uses nothing"
    );
}

#[test]
fn an_unknown_module_is_refused_before_any_call() {
    let server = server();
    for (module, record, field) in [
        ("Leads", "1", "Files"),
        ("contacts", "1", "Files"),
        ("Contacts", "1/../2", "Files"),
        ("Contacts", "1", "bad-field"),
    ] {
        match runner()
            .attach(&settings(&server), module, record, field, &["x".into()])
            .unwrap()
        {
            Err(UploadError::InvalidFile(f)) => assert!(!f.reason.is_empty()),
            other => panic!("expected invalid-file for {module}/{record}/{field}, got {other:?}"),
        }
    }
    match runner()
        .upload_attachment(
            &settings(&server),
            "Deals",
            "1",
            &Attachment::Link("https://a.example".into()),
        )
        .unwrap()
    {
        Err(UploadError::InvalidFile(f)) => assert!(f.reason.contains("unknown module")),
        other => panic!("expected invalid-file, got {other:?}"),
    }
    assert_eq!(server.stats().requests.values().sum::<u64>(), 0);
}

#[test]
fn files_and_links_become_attachments() {
    let server = server();
    let record = server
        .create_record("Accounts", json!({"Account_Name": "Acme"}))
        .unwrap();
    let data = pattern(70_000, 5);
    let id = runner()
        .upload_attachment(
            &settings(&server),
            "Accounts",
            &record,
            &Attachment::File(file("Contract \"final\" ü.pdf", data.clone())),
        )
        .unwrap()
        .expect("the file is attached");
    let link_id = runner()
        .upload_attachment(
            &settings(&server),
            "Accounts",
            &record,
            &Attachment::Link("https://example.com/spec.pdf".into()),
        )
        .unwrap()
        .expect("the link is attached");
    assert_ne!(id, link_id);
    let attachments = server.attachments("Accounts", &record);
    assert_eq!(attachments.len(), 2);
    assert_eq!(attachments[0].id, id);
    assert_eq!(attachments[0].file_name, "Contract \"final\" ü.pdf");
    assert!(attachments[0].bytes == data);
    assert_eq!(
        attachments[1].link_url.as_deref(),
        Some("https://example.com/spec.pdf")
    );
}

#[test]
fn names_with_path_separators_come_back_as_plain_names() {
    let server = server();
    let refs = runner()
        .upload(
            &settings(&server),
            &[file("../reports/q3 \"draft\".txt", "q3")],
        )
        .unwrap()
        .expect("uploads: the name is only a label to Bigin");
    let back = runner()
        .download(&settings(&server), &refs[0].id)
        .unwrap()
        .expect("downloads");
    assert_eq!(back.name, "q3 \"draft\".txt");
    assert_eq!(back.data, b"q3");
}
