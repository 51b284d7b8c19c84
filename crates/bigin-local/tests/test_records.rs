//! Records, attaching uploaded files to their file-upload fields, and the
//! Attachments API, over real loopback HTTP.

mod common;

use std::net::SocketAddr;

use anyhow::Context as _;
use bigin_local::{
    Config, LocalServer, MAX_ATTACHMENT_REQUEST_BYTES, MAX_FILE_BYTES, MAX_LINK_BYTES,
    MAX_RECORDS_PER_UPDATE, MODULES,
};
use common::{Part, Reply, TOKEN, multipart, multipart_type, request, upload, uploaded_ids};
use serde_json::{Value, json};

fn server() -> anyhow::Result<LocalServer> {
    LocalServer::start(Config::default())
}

fn auth(token: &str) -> String {
    format!("Zoho-oauthtoken {token}")
}

/// `PUT /bigin/v2/{module}` with a JSON body.
fn put_records(addr: SocketAddr, token: &str, module: &str, body: &Value) -> anyhow::Result<Reply> {
    request(
        addr,
        "PUT",
        &format!("/bigin/v2/{module}"),
        &[
            ("Authorization", &auth(token)),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
}

/// A `GET` with `token`.
fn get(addr: SocketAddr, token: &str, target: &str) -> anyhow::Result<Reply> {
    request(addr, "GET", target, &[("Authorization", &auth(token))], b"")
}

/// `POST .../Attachments` with a multipart body of `parts`.
fn post_attachment(
    addr: SocketAddr,
    token: &str,
    module: &str,
    id: &str,
    parts: &[Part<'_>],
) -> anyhow::Result<Reply> {
    request(
        addr,
        "POST",
        &format!("/bigin/v2/{module}/{id}/Attachments"),
        &[
            ("Authorization", &auth(token)),
            ("Content-Type", &multipart_type()),
        ],
        &multipart(parts),
    )
}

/// Uploads one file and returns its id.
fn upload_one(addr: SocketAddr, name: &str, data: &[u8]) -> anyhow::Result<String> {
    uploaded_ids(&upload(addr, TOKEN, &[Part::file(name, data)])?)?
        .pop()
        .context("no id")
}

/// An update body attaching `file_ids` to `field` of record `id`.
fn attach_body(id: &str, field: &str, file_ids: &[&str]) -> Value {
    let items: Vec<Value> = file_ids.iter().map(|f| json!({ "file_id": f })).collect();
    json!({ "data": [{ "id": id, field: items }] })
}

/// An `attachmentUrl` part.
fn link_part(url: &str) -> Part<'_> {
    Part::raw("name=\"attachmentUrl\"", url.as_bytes())
}

#[test]
fn attaches_an_uploaded_file_to_a_record() -> anyhow::Result<()> {
    let server = server()?;
    let addr = server.addr();
    let record = server.create_record("Contacts", json!({ "Last_Name": "Lovelace" }))?;
    assert!(record.bytes().all(|b| b.is_ascii_digit()), "{record}");
    let file = upload_one(addr, "cv.pdf", b"%PDF-1.7 tiny")?;

    let reply = put_records(
        addr,
        TOKEN,
        "Contacts",
        &attach_body(&record, "CV", &[&file]),
    )?;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let answer = reply.json()?;
    let entry = &answer["data"][0];
    assert_eq!(entry["code"], "SUCCESS");
    assert_eq!(entry["status"], "success");
    assert_eq!(entry["message"], "record updated");
    assert_eq!(entry["details"]["id"], record.as_str());
    let modified = entry["details"]["Modified_Time"]
        .as_str()
        .context("Modified_Time")?;
    assert!(
        modified.len() == 25 && modified.ends_with("+00:00"),
        "{modified}"
    );
    assert_eq!(answer["data"].as_array().map(Vec::len), Some(1));

    let expected = json!({
        "id": record,
        "Last_Name": "Lovelace",
        "CV": [{ "file_id": file, "file_name": "cv.pdf", "size": 13 }],
    });
    assert_eq!(server.record("Contacts", &record), Some(expected.clone()));
    assert!(server.file(&file).context("file kept")?.used);

    let got = get(addr, TOKEN, &format!("/bigin/v2/Contacts/{record}"))?;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()?, json!({ "data": [expected.clone()] }));
    let control = request(
        addr,
        "GET",
        &format!("/_local/records/Contacts/{record}"),
        &[],
        b"",
    )?;
    assert_eq!(control.json()?, expected);

    // A later update adds to the field rather than replacing it.
    let second = upload_one(addr, "cover.txt", b"hi")?;
    let reply = put_records(
        addr,
        TOKEN,
        "Contacts",
        &attach_body(&record, "CV", &[&second]),
    )?;
    assert_eq!(reply.status, 200);
    let record_now = server.record("Contacts", &record).context("record")?;
    assert_eq!(record_now["CV"][1]["file_name"], "cover.txt");
    assert_eq!(record_now["CV"].as_array().map(Vec::len), Some(2));

    let stats = server.stats();
    assert_eq!(stats.records, 1);
    assert_eq!(stats.record_updates, 2);
    assert_eq!(stats.requests.get("PUT /bigin/v2/{module}"), Some(&2));
    assert_eq!(
        stats.requests.get("GET /bigin/v2/{module}/{record_id}"),
        Some(&1)
    );
    assert_eq!(
        stats.requests.get("GET /_local/records/{module}/{id}"),
        Some(&1)
    );
    Ok(())
}

#[test]
fn refuses_a_file_id_attached_before() -> anyhow::Result<()> {
    let server = server()?;
    let addr = server.addr();
    let first = server.create_record("Pipelines", json!({}))?;
    let other = server.create_record("Pipelines", json!({}))?;
    let file = upload_one(addr, "deal.txt", b"deal")?;
    let reply = put_records(
        addr,
        TOKEN,
        "Pipelines",
        &attach_body(&first, "Doc", &[&file]),
    )?;
    assert_eq!(reply.status, 200);

    let again = put_records(
        addr,
        TOKEN,
        "Pipelines",
        &attach_body(&other, "Doc", &[&file]),
    )?;
    assert_eq!(again.status, 400);
    let entry = &again.json()?["data"][0];
    assert_eq!(entry["code"], "INVALID_DATA");
    assert_eq!(entry["status"], "error");
    let message = entry["message"].as_str().context("message")?;
    assert!(message.contains("already used"), "{message}");
    assert_eq!(
        entry["details"],
        json!({ "api_name": "Doc", "json_path": "$.data[0].Doc[0].file_id" })
    );
    assert_eq!(
        server.record("Pipelines", &other),
        Some(json!({ "id": other }))
    );

    // The same id twice in one entry: the second is already used, and the
    // entry attaches nothing.
    let fresh = upload_one(addr, "fresh.txt", b"f")?;
    let twice = put_records(
        addr,
        TOKEN,
        "Pipelines",
        &attach_body(&other, "Doc", &[&fresh, &fresh]),
    )?;
    assert_eq!(twice.status, 400);
    assert_eq!(
        twice.json()?["data"][0]["details"]["json_path"],
        "$.data[0].Doc[1].file_id"
    );
    assert!(!server.file(&fresh).context("fresh")?.used);
    assert_eq!(server.stats().record_updates, 1);
    Ok(())
}

#[test]
fn refuses_unknown_file_ids_and_records_per_entry() -> anyhow::Result<()> {
    let server = server()?;
    let addr = server.addr();
    let record = server.create_record("Accounts", json!({ "Account_Name": "Acme" }))?;
    let good = upload_one(addr, "good.txt", b"good")?;
    let spare = upload_one(addr, "spare.txt", b"spare")?;

    let body = json!({ "data": [
        { "id": record, "Logo": [{ "file_id": good }] },
        { "id": "999", "Logo": [{ "file_id": spare }] },
        { "id": record, "Logo": [{ "file_id": spare }], "Brochure": [{ "file_id": "f00d" }] },
    ] });
    let reply = put_records(addr, TOKEN, "Accounts", &body)?;
    assert_eq!(reply.status, 207);
    let data = reply.json()?["data"].clone();
    assert_eq!(data[0]["code"], "SUCCESS");
    assert_eq!(
        data[1],
        json!({
            "code": "INVALID_DATA",
            "details": { "api_name": "id" },
            "message": "the id given seems to be invalid",
            "status": "error",
        })
    );
    assert_eq!(data[2]["code"], "INVALID_DATA");
    assert_eq!(
        data[2]["details"],
        json!({ "api_name": "Brochure", "json_path": "$.data[2].Brochure[0].file_id" })
    );
    // Refused entries consume nothing, even a valid id beside a bad one.
    assert!(!server.file(&spare).context("spare")?.used);
    let held = server.record("Accounts", &record).context("record")?;
    assert_eq!(held["Logo"].as_array().map(Vec::len), Some(1));
    assert!(held.get("Brochure").is_none());

    // A record of another module is unknown here, and ids are per module.
    let unknown = put_records(
        addr,
        TOKEN,
        "Products",
        &attach_body(&record, "Logo", &[&spare]),
    )?;
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.json()?["data"][0]["details"],
        json!({ "api_name": "id" })
    );
    assert_eq!(
        get(addr, TOKEN, &format!("/bigin/v2/Products/{record}"))?.status,
        204
    );
    assert_eq!(get(addr, TOKEN, "/bigin/v2/Accounts/12345")?.status, 204);
    Ok(())
}

#[test]
fn refuses_malformed_update_bodies() -> anyhow::Result<()> {
    let server = server()?;
    let addr = server.addr();
    let record = server.create_record("Tasks", json!({ "Subject": "Call" }))?;

    let raw = |body: &[u8]| {
        request(
            addr,
            "PUT",
            "/bigin/v2/Tasks",
            &[("Authorization", &auth(TOKEN))],
            body,
        )
    };
    let not_json = raw(b"{\"data\": [")?;
    assert_eq!(
        (not_json.status, not_json.code().as_str()),
        (400, "INVALID_DATA")
    );
    let array = raw(b"[]")?;
    assert_eq!((array.status, array.code().as_str()), (400, "INVALID_DATA"));

    let cases = [
        (json!({}), "MANDATORY_NOT_FOUND"),
        (json!({ "data": {} }), "INVALID_DATA"),
        (json!({ "data": [] }), "INVALID_DATA"),
    ];
    for (body, code) in cases {
        let reply = put_records(addr, TOKEN, "Tasks", &body)?;
        assert_eq!((reply.status, reply.code().as_str()), (400, code), "{body}");
        assert_eq!(reply.json()?["details"], json!({ "api_name": "data" }));
    }
    let many: Vec<Value> = (0..=MAX_RECORDS_PER_UPDATE)
        .map(|_| json!({ "id": record }))
        .collect();
    let too_many = put_records(addr, TOKEN, "Tasks", &json!({ "data": many }))?;
    assert_eq!(
        (too_many.status, too_many.code().as_str()),
        (400, "LIMIT_EXCEEDED")
    );

    // Entry-level faults: each entry answered in order, as a whole-400.
    let body = json!({ "data": [
        "not an object",
        { "Doc": [] },
        { "id": 17 },
        { "id": record, "Doc": { "file_id": "x" } },
        { "id": record, "Doc": [{ "file_id": "x", "name": "y" }] },
        { "id": record, "Doc": ["x"] },
        { "id": record, "Doc": [{ "File_Id__s": "x" }] },
        { "id": record, "1Doc": [] },
        { "id": record, "Subject": "a string is not a file list" },
    ] });
    let reply = put_records(addr, TOKEN, "Tasks", &body)?;
    assert_eq!(reply.status, 400);
    let data = reply.json()?["data"].clone();
    let details: Vec<(String, Value)> = data
        .as_array()
        .context("data")?
        .iter()
        .map(|e| {
            (
                e["code"].as_str().unwrap_or_default().to_owned(),
                e["details"].clone(),
            )
        })
        .collect();
    let expected = [
        ("INVALID_DATA", json!({ "json_path": "$.data[0]" })),
        ("MANDATORY_NOT_FOUND", json!({ "api_name": "id" })),
        ("INVALID_DATA", json!({ "api_name": "id" })),
        (
            "INVALID_DATA",
            json!({ "api_name": "Doc", "json_path": "$.data[3].Doc" }),
        ),
        (
            "INVALID_DATA",
            json!({ "api_name": "Doc", "json_path": "$.data[4].Doc[0]" }),
        ),
        (
            "INVALID_DATA",
            json!({ "api_name": "Doc", "json_path": "$.data[5].Doc[0]" }),
        ),
        (
            "INVALID_DATA",
            json!({ "api_name": "Doc", "json_path": "$.data[6].Doc[0].file_id" }),
        ),
        (
            "INVALID_DATA",
            json!({ "api_name": "1Doc", "json_path": "$.data[7]" }),
        ),
        (
            "INVALID_DATA",
            json!({ "api_name": "Subject", "json_path": "$.data[8].Subject" }),
        ),
    ];
    assert_eq!(details.len(), expected.len());
    for ((code, got), (want_code, want)) in details.iter().zip(expected) {
        assert_eq!((code.as_str(), got), (want_code, &want));
    }
    assert_eq!(
        server.record("Tasks", &record),
        Some(json!({ "id": record, "Subject": "Call" }))
    );
    assert_eq!(server.stats().record_updates, 0);
    Ok(())
}

#[test]
fn refuses_unknown_modules_on_every_route() -> anyhow::Result<()> {
    let server = server()?;
    let addr = server.addr();
    let record = server.create_record("Contacts", json!({}))?;
    let expected = json!({
        "code": "INVALID_MODULE",
        "details": { "resource_path_index": 0 },
        "message": "the module name given seems to be invalid",
        "status": "error",
    });
    for module in ["contacts", "Leads", "file", "CONTACTS"] {
        let replies = [
            put_records(addr, TOKEN, module, &attach_body(&record, "Doc", &["x"]))?,
            get(addr, TOKEN, &format!("/bigin/v2/{module}/{record}"))?,
            get(
                addr,
                TOKEN,
                &format!("/bigin/v2/{module}/{record}/Attachments"),
            )?,
            post_attachment(addr, TOKEN, module, &record, &[Part::file("a.txt", b"a")])?,
            request(
                addr,
                "DELETE",
                &format!("/bigin/v2/{module}"),
                &[("Authorization", &auth(TOKEN))],
                b"",
            )?,
        ];
        for reply in replies {
            assert_eq!(reply.status, 400, "{module}");
            assert_eq!(reply.json()?, expected, "{module}");
        }
    }
    // Every documented module is known.
    for module in MODULES {
        let id = server.create_record(module, json!({}))?;
        assert_eq!(
            get(addr, TOKEN, &format!("/bigin/v2/{module}/{id}"))?.status,
            200
        );
    }
    // A known module with a method the server does not serve.
    let wrong = request(
        addr,
        "DELETE",
        &format!("/bigin/v2/Contacts/{record}"),
        &[("Authorization", &auth(TOKEN))],
        b"",
    )?;
    assert_eq!(
        (wrong.status, wrong.code().as_str()),
        (400, "INVALID_REQUEST_METHOD")
    );
    assert_eq!(
        server
            .stats()
            .requests
            .get("DELETE /bigin/v2/{module}/{record_id}"),
        Some(&1)
    );
    Ok(())
}

#[test]
fn refuses_missing_and_wrong_tokens_and_changes_nothing() -> anyhow::Result<()> {
    let server = server()?;
    let addr = server.addr();
    let record = server.create_record("Events", json!({}))?;
    let file = upload_one(addr, "e.txt", b"e")?;
    let body = attach_body(&record, "Doc", &[&file]);
    let replies = [
        put_records(addr, "wrong", "Events", &body)?,
        // Checked before the module.
        put_records(addr, "wrong", "Nope", &body)?,
        get(addr, "wrong", &format!("/bigin/v2/Events/{record}"))?,
        get(
            addr,
            "wrong",
            &format!("/bigin/v2/Events/{record}/Attachments"),
        )?,
        post_attachment(
            addr,
            "wrong",
            "Events",
            &record,
            &[Part::file("a.txt", b"a")],
        )?,
        request(
            addr,
            "PUT",
            "/bigin/v2/Events",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )?,
        request(
            addr,
            "PUT",
            "/bigin/v2/Events",
            &[("Authorization", &format!("Bearer {TOKEN}"))],
            body.to_string().as_bytes(),
        )?,
    ];
    for reply in replies {
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (401, "INVALID_TOKEN")
        );
        assert_eq!(reply.json()?["status"], "error");
    }
    assert!(!server.file(&file).context("file")?.used);
    assert_eq!(
        server.record("Events", &record),
        Some(json!({ "id": record }))
    );
    assert!(server.attachments("Events", &record).is_empty());
    Ok(())
}

#[test]
fn attaches_files_and_links_and_lists_them() -> anyhow::Result<()> {
    let server = server()?;
    let addr = server.addr();
    let record = server.create_record("Notes", json!({ "Note_Title": "t" }))?;
    let listing = format!("/bigin/v2/Notes/{record}/Attachments");
    assert_eq!(get(addr, TOKEN, &listing)?.status, 204);

    let file = Part {
        disposition: "name=\"file\"; filename*=UTF-8''%C3%A9t%C3%A9.png".into(),
        content_type: Some("image/png"),
        data: b"\x89PNG",
    };
    let reply = post_attachment(addr, TOKEN, "Notes", &record, &[file])?;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let answer = reply.json()?;
    let entry = &answer["data"][0];
    assert_eq!(entry["code"], "SUCCESS");
    assert_eq!(entry["status"], "success");
    assert_eq!(entry["message"], "attachment uploaded successfully");
    let details = &entry["details"];
    let file_id = details["id"].as_str().context("id")?.to_owned();
    assert!(file_id.bytes().all(|b| b.is_ascii_digit()), "{file_id}");
    assert_ne!(file_id, record);
    assert_eq!(details["Created_By"], json!({ "name": "Local", "id": "1" }));
    assert_eq!(
        details["Modified_By"],
        json!({ "name": "Local", "id": "1" })
    );
    assert_eq!(details["Created_Time"], details["Modified_Time"]);

    let url = "https://example.com/spec?v=2";
    let link = post_attachment(addr, TOKEN, "Notes", &record, &[link_part(url)])?;
    assert_eq!(link.status, 200);
    let link_id = link.json()?["data"][0]["details"]["id"]
        .as_str()
        .context("link id")?
        .to_owned();

    let listed = get(addr, TOKEN, &listing)?;
    assert_eq!(listed.status, 200);
    let data = listed.json()?["data"].clone();
    assert_eq!(data.as_array().map(Vec::len), Some(2));
    assert_eq!(data[0]["id"], file_id.as_str());
    assert_eq!(data[0]["File_Name"], "été.png");
    assert_eq!(data[0]["Size"], "4");
    assert!(data[0].get("$link_url").is_none());
    assert_eq!(data[1]["id"], link_id.as_str());
    assert_eq!(data[1]["$link_url"], url);
    assert_eq!(data[1]["File_Name"], url);

    let stored = server.attachments("Notes", &record);
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].file_name, "été.png");
    assert_eq!(stored[0].bytes, b"\x89PNG");
    assert_eq!(stored[0].content_type.as_deref(), Some("image/png"));
    assert_eq!(stored[1].link_url.as_deref(), Some(url));
    assert!(server.attachments("Notes", "42").is_empty());
    // The Attachments API does not touch the Files API's store.
    assert_eq!(server.stats().stored_files, 0);
    assert_eq!(server.stats().attachments, 2);
    assert_eq!(
        server
            .stats()
            .requests
            .get("POST /bigin/v2/{module}/{record_id}/Attachments"),
        Some(&2)
    );

    let unknown = post_attachment(addr, TOKEN, "Notes", "42", &[Part::file("a.txt", b"a")])?;
    assert_eq!(
        (unknown.status, unknown.code().as_str()),
        (400, "INVALID_DATA")
    );
    assert_eq!(unknown.json()?["details"], json!({ "api_name": "id" }));
    let unknown_list = get(addr, TOKEN, "/bigin/v2/Notes/42/Attachments")?;
    assert_eq!(unknown_list.code(), "INVALID_DATA");
    Ok(())
}

#[test]
fn refuses_bad_attachment_bodies() -> anyhow::Result<()> {
    let server = server()?;
    let addr = server.addr();
    let record = server.create_record("Products", json!({}))?;
    let long_link = format!("https://example.com/{}", "a".repeat(MAX_LINK_BYTES));
    let cases: Vec<(Vec<Part<'_>>, u16, &str)> = vec![
        (vec![], 400, "REQUIRED_PARAM_MISSING"),
        (
            vec![Part::file("a.txt", b"a"), Part::file("b.txt", b"b")],
            400,
            "INVALID_REQUEST",
        ),
        (
            vec![Part::file("a.txt", b"a"), link_part("https://example.com")],
            400,
            "INVALID_REQUEST",
        ),
        (
            vec![Part::raw("name=\"attachment\"; filename=\"a\"", b"a")],
            400,
            "INVALID_REQUEST",
        ),
        (
            vec![Part::raw("name=\"file\"", b"a")],
            400,
            "failure_in_attachment_handling",
        ),
        (
            vec![Part::raw("name=\"file\"; filename=\"\"", b"a")],
            400,
            "failure_in_attachment_handling",
        ),
        (
            vec![Part::raw("name=\"file\"; filename=\"a.txt", b"a")],
            400,
            "INVALID_REQUEST",
        ),
        (
            vec![Part::raw(
                "name=\"attachmentUrl\"; filename=\"l\"",
                b"https://x",
            )],
            400,
            "INVALID_REQUEST",
        ),
        (vec![link_part("ftp://example.com/a")], 400, "INVALID_DATA"),
        (vec![link_part("https://exa mple.com")], 400, "INVALID_DATA"),
        (vec![link_part(&long_link)], 400, "INVALID_DATA"),
    ];
    for (index, (parts, status, code)) in cases.iter().enumerate() {
        let reply = post_attachment(addr, TOKEN, "Products", &record, parts)?;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (*status, *code),
            "case {index}"
        );
    }
    let bad_link = post_attachment(addr, TOKEN, "Products", &record, &[link_part("x")])?;
    assert_eq!(
        bad_link.json()?["details"],
        json!({ "api_name": "attachmentUrl" })
    );

    let not_multipart = request(
        addr,
        "POST",
        &format!("/bigin/v2/Products/{record}/Attachments"),
        &[
            ("Authorization", &auth(TOKEN)),
            ("Content-Type", "text/plain"),
        ],
        b"hello",
    )?;
    assert_eq!(not_multipart.code(), "INVALID_REQUEST");
    assert!(server.attachments("Products", &record).is_empty());
    Ok(())
}

#[test]
fn applies_the_file_size_limit_to_attachments() -> anyhow::Result<()> {
    let server = server()?;
    let addr = server.addr();
    let record = server.create_record("Contacts", json!({}))?;
    let limit = usize::try_from(MAX_FILE_BYTES)?;

    let mut data = vec![b'a'; limit + 1];
    let over = post_attachment(
        addr,
        TOKEN,
        "Contacts",
        &record,
        &[Part::file("big.bin", &data)],
    )?;
    assert_eq!(
        (over.status, over.code().as_str()),
        (415, "FILE_SIZE_MORE_THAN_ALLOWED_SIZE")
    );
    assert!(server.attachments("Contacts", &record).is_empty());

    data.truncate(limit);
    let at = post_attachment(
        addr,
        TOKEN,
        "Contacts",
        &record,
        &[Part::file("ok.bin", &data)],
    )?;
    assert_eq!(at.status, 200);
    assert_eq!(
        server.attachments("Contacts", &record)[0].size,
        MAX_FILE_BYTES
    );

    let head = format!(
        "POST /bigin/v2/Contacts/{record}/Attachments HTTP/1.1\r\nHost: x\r\n\
         Authorization: Zoho-oauthtoken {TOKEN}\r\nContent-Type: {}\r\n\
         Content-Length: {}\r\n\r\n",
        multipart_type(),
        MAX_ATTACHMENT_REQUEST_BYTES + 1
    );
    // No body is sent: the answer must come without it.
    let reply = common::send_raw(addr, head.as_bytes(), b"")?;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (413, "REQUEST_ENTITY_TOO_LARGE")
    );
    Ok(())
}

#[test]
fn creates_records_through_the_control_endpoint() -> anyhow::Result<()> {
    let server = server()?;
    let addr = server.addr();
    let post = |body: &str| {
        request(
            addr,
            "POST",
            "/_local/records",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    };
    let created = post(r#"{"module":"Accounts","fields":{"Account_Name":"Acme","Rank":3}}"#)?;
    assert_eq!(created.status, 200);
    let id = created.json()?["id"].as_str().context("id")?.to_owned();
    assert_eq!(
        server.record("Accounts", &id),
        Some(json!({ "id": id, "Account_Name": "Acme", "Rank": 3 }))
    );
    let bare = post(r#"{"module":"Tasks"}"#)?;
    assert_eq!(bare.status, 200);

    for body in [
        r#"{"module":"accounts","fields":{}}"#,
        r#"{"module":"Accounts","fields":{"id":"1"}}"#,
        r#"{"module":"Accounts","fields":{"bad name":1}}"#,
        r#"{"module":"Accounts","fields":[]}"#,
        r#"{"module":"Accounts","extra":1}"#,
        "not json",
    ] {
        assert_eq!(post(body)?.status, 400, "{body}");
    }
    let missing = request(addr, "GET", "/_local/records/Accounts/1", &[], b"")?;
    assert_eq!(missing.status, 404);
    let wrong_module = request(
        addr,
        "GET",
        &format!("/_local/records/Tasks/{id}"),
        &[],
        b"",
    )?;
    assert_eq!(wrong_module.status, 404);

    assert!(server.create_record("Leads", json!({})).is_err());
    assert!(server.create_record("Contacts", json!(["x"])).is_err());
    assert!(
        server
            .create_record("Contacts", json!({ "id": "1" }))
            .is_err()
    );
    assert_eq!(server.stats().records, 2);
    assert_eq!(
        server.stats().requests.get("POST /_local/records"),
        Some(&8)
    );
    Ok(())
}
