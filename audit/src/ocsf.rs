//! Audit records as OCSF 1.1.0 events, for SIEMs that load the Open Cybersecurity Schema
//! Framework (Amazon Security Lake, Splunk, Sentinel and others).
//!
//! Two classes are used; the mapping is data below and in `docs/audit.md`:
//!
//! | record | OCSF class | activity |
//! |---|---|---|
//! | `decision` | Process Activity (1007) | Launch (1); `disposition_id` Allowed (1), Blocked (2) or Approved (8) |
//! | `command` | Process Activity (1007) | Terminate (2), with `exit_code` |
//! | `process` started / exited | Process Activity (1007) | Launch (1) / Terminate (2) |
//! | `process` input, signal, reaped | Process Activity (1007) | Other (99) |
//! | `session` opened / closed | API Activity (6003) | Create (1) / Delete (4) |
//! | `genesis`, `recovery`, `checkpoint`, `approval`, `note` | API Activity (6003) | Other (99) |
//!
//! Every event keeps the whole execkit record under `unmapped.execkit` (nothing is lost in
//! the mapping), and `metadata.uid` / `metadata.sequence` are the record's hash and
//! sequence number, so an event can be traced back to its place in the chain.

use serde_json::{json, Map, Value};

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.1.0";

const PROCESS_ACTIVITY: u32 = 1007;
const API_ACTIVITY: u32 = 6003;

/// The OCSF activities used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    /// Process Activity: Launch.
    Launch,
    /// Process Activity: Terminate.
    Terminate,
    /// API Activity: Create.
    Create,
    /// API Activity: Delete.
    Delete,
    /// Either class: Other.
    Other,
}

impl Activity {
    /// The `activity_id` within its class.
    fn id(self) -> u32 {
        match self {
            Activity::Launch | Activity::Create => 1,
            Activity::Terminate => 2,
            Activity::Delete => 4,
            Activity::Other => 99,
        }
    }
}

/// Maps one audit record (a line of the log, parsed) to an OCSF event.
pub fn to_ocsf(record: &Value) -> Value {
    let kind = record["kind"].as_str().unwrap_or("");
    let (class, activity) = class_of(kind, record);
    let mut ev = Map::new();
    let category = if class == PROCESS_ACTIVITY { 1 } else { 6 };
    ev.insert("class_uid".into(), json!(class));
    ev.insert("category_uid".into(), json!(category));
    ev.insert("activity_id".into(), json!(activity.id()));
    ev.insert("type_uid".into(), json!(class * 100 + activity.id()));
    ev.insert("time".into(), json!(epoch_ms(record["time"].as_str())));
    ev.insert("severity_id".into(), json!(severity(kind, record)));
    ev.insert(
        "metadata".into(),
        json!({
            "version": OCSF_VERSION,
            "product": {"name": "execkit", "vendor_name": "execkit", "version": env!("CARGO_PKG_VERSION")},
            "uid": record["hash"],
            "sequence": record["seq"],
            "original_time": record["time"],
        }),
    );
    if let Some(agent) = record["agent"].as_str() {
        let mut actor = json!({"user": {"name": agent, "type_id": 99, "type": "Agent"}});
        if let Some(op) = record["operator"].as_str() {
            actor["authorizations"] = json!([{"decision": "accountable", "policy": {"name": op}}]);
        }
        if let Some(s) = record["session"].as_str() {
            actor["session"] = json!({"uid": s});
        }
        ev.insert("actor".into(), actor);
    }
    let transport = record["transport"].as_str().unwrap_or("local");
    let target = record["target"].as_str().unwrap_or("");
    ev.insert(
        "device".into(),
        json!({"hostname": if target.is_empty() { "localhost" } else { target }, "type_id": 0, "desc": transport}),
    );
    if class == PROCESS_ACTIVITY {
        process_fields(kind, record, &mut ev);
    } else {
        ev.insert("api".into(), json!({"operation": operation(kind, record)}));
        ev.insert("src_endpoint".into(), json!({"svc_name": "execkit-mcp"}));
    }
    ev.insert("unmapped".into(), json!({ "execkit": record }));
    Value::Object(ev)
}

fn class_of(kind: &str, record: &Value) -> (u32, Activity) {
    match kind {
        "decision" => (PROCESS_ACTIVITY, Activity::Launch),
        "command" => (PROCESS_ACTIVITY, Activity::Terminate),
        "process" => (
            PROCESS_ACTIVITY,
            match record["event"]["type"].as_str() {
                Some("started") => Activity::Launch,
                Some("exited") => Activity::Terminate,
                _ => Activity::Other,
            },
        ),
        "session" => (
            API_ACTIVITY,
            match record["event"].as_str() {
                Some("opened") => Activity::Create,
                Some("closed") => Activity::Delete,
                _ => Activity::Other,
            },
        ),
        _ => (API_ACTIVITY, Activity::Other),
    }
}

/// OCSF severity: Informational (1), Low (2) for asks, Medium (3) for refusals and lost
/// records.
fn severity(kind: &str, record: &Value) -> u32 {
    match (kind, record["verdict"].as_str()) {
        ("recovery", _) | ("decision", Some("deny")) => 3,
        ("decision", Some("ask")) => 2,
        _ => 1,
    }
}

fn operation(kind: &str, record: &Value) -> String {
    match (kind, record["event"].as_str()) {
        ("session", Some("opened")) => "session_create".into(),
        ("session", Some("closed")) => "session_destroy".into(),
        _ => kind.to_string(),
    }
}

fn process_fields(kind: &str, record: &Value, ev: &mut Map<String, Value>) {
    let cmd = record["command"]
        .as_str()
        .or_else(|| record["event"]["command"].as_str())
        .unwrap_or("");
    let mut process = json!({"cmd_line": cmd});
    if let Some(name) = cmd.split_whitespace().next() {
        process["name"] = json!(name.trim_matches('\''));
    }
    if let Some(pid) = record["runtime"]["pid"].as_i64() {
        process["pid"] = json!(pid);
    }
    if let Some(p) = record["process"].as_str() {
        process["uid"] = json!(p);
    }
    ev.insert("process".into(), process);
    match kind {
        "decision" => {
            let verdict = record["verdict"].as_str().unwrap_or("deny");
            let approved = record["approved_by"].is_string();
            let (disposition, name) = match verdict {
                "allow" if approved => (8, "Approved"),
                "allow" => (1, "Allowed"),
                _ => (2, "Blocked"),
            };
            ev.insert("disposition_id".into(), json!(disposition));
            ev.insert("disposition".into(), json!(name));
            ev.insert(
                "action_id".into(),
                json!(if disposition == 2 { 2 } else { 1 }),
            );
            ev.insert(
                "status_id".into(),
                json!(if disposition == 2 { 2 } else { 1 }),
            );
            let reasons: Vec<&str> = record["facts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|f| f["verdict"] != "allow")
                .filter_map(|f| f["reason"].as_str())
                .collect();
            if !reasons.is_empty() {
                ev.insert("status_detail".into(), json!(reasons.join("; ")));
            }
        }
        "command" => {
            if let Some(code) = record["exit_code"].as_i64() {
                ev.insert("exit_code".into(), json!(code));
            }
            ev.insert("status_id".into(), json!(1));
        }
        _ => {
            if let Some(code) = record["event"]["exit_code"].as_i64() {
                ev.insert("exit_code".into(), json!(code));
            }
        }
    }
}

fn epoch_ms(time: Option<&str>) -> u64 {
    time.and_then(|t| humantime::parse_rfc3339(t).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records as the log writes them, and the OCSF fields each must map to.
    const CASES: &[(&str, u32, u32, u32)] = &[
        (
            r#"{"v":1,"seq":2,"time":"2026-11-26T03:35:32.627Z","prev":"p","kind":"decision","session":"s1","agent":"alice","operator":"op","transport":"local","command":"rm -rf /","cwd":"/w","verdict":"deny","facts":[{"action":"path_arg","resource":"Path::\"/\"","verdict":"deny","policies":["deny-root"],"reason":"forbidden by deny-root"}],"env":{},"hash":"h2"}"#,
            1007,
            100_701,
            3,
        ),
        (
            r#"{"v":1,"seq":3,"time":"2026-11-26T03:35:32.629Z","prev":"h2","kind":"command","session":"s1","agent":"alice","operator":"op","transport":"ssh","target":"db1","command":"echo hi","cwd":"/w","exit_code":0,"duration_ms":0,"timed_out":false,"cancelled":false,"hash":"h3"}"#,
            1007,
            100_702,
            1,
        ),
        (
            r#"{"v":1,"seq":1,"time":"2026-11-26T03:35:32.620Z","prev":"h0","kind":"session","session":"s1","agent":"alice","operator":"op","transport":"local","event":"opened","hash":"h1"}"#,
            6003,
            600_301,
            1,
        ),
        (
            r#"{"v":1,"seq":6,"time":"2026-11-26T03:35:32.633Z","prev":"h5","kind":"recovery","discarded_bytes":749,"discarded_sha256":"a9","hash":"h6"}"#,
            6003,
            600_399,
            3,
        ),
    ];

    #[test]
    fn records_map_to_their_class_activity_and_severity() {
        for (line, class, type_uid, sev) in CASES {
            let rec: Value = serde_json::from_str(line).unwrap();
            let ev = to_ocsf(&rec);
            assert_eq!(ev["class_uid"], json!(class), "{line}");
            assert_eq!(ev["type_uid"], json!(type_uid), "{line}");
            assert_eq!(ev["severity_id"], json!(sev), "{line}");
            assert_eq!(ev["metadata"]["uid"], rec["hash"]);
            assert_eq!(ev["metadata"]["version"], OCSF_VERSION);
            assert_eq!(ev["unmapped"]["execkit"], rec, "nothing is lost");
            assert!(ev["time"].as_u64().unwrap() > 1_700_000_000_000);
        }
    }

    #[test]
    fn a_refusal_is_blocked_with_its_reason_and_an_ssh_target_is_the_device() {
        let deny = to_ocsf(&serde_json::from_str(CASES[0].0).unwrap());
        assert_eq!(deny["disposition_id"], 2);
        assert_eq!(deny["status_id"], 2);
        assert_eq!(deny["status_detail"], "forbidden by deny-root");
        assert_eq!(deny["actor"]["user"]["name"], "alice");
        assert_eq!(deny["process"]["cmd_line"], "rm -rf /");
        let done = to_ocsf(&serde_json::from_str(CASES[1].0).unwrap());
        assert_eq!(done["device"]["hostname"], "db1");
        assert_eq!(done["exit_code"], 0);
    }
}
