//! What to do with one line from the client: pass it to the MCP library, or answer it here
//! with the JSON-RPC error the spec requires.
//!
//! The library drops lines it cannot parse without a word and answers some malformed
//! requests without their id or with the wrong code; the client then waits for its own
//! timeout. Every line that is not a well-formed message gets an answer here: `-32700` for
//! what is not JSON (invalid UTF-8 included), `-32600` for JSON that is not a request,
//! `-32602` for a request to a known method whose `params` have the wrong shape. The id is
//! echoed whenever it can be read; otherwise it is `null`.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// JSON-RPC error codes used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Not JSON.
    Parse = -32700,
    /// JSON, but not a valid request object.
    InvalidRequest = -32600,
    /// A method that does not exist (the library's answer, passed through).
    MethodNotFound = -32601,
    /// The method exists; its parameters do not fit.
    InvalidParams = -32602,
}

/// Methods the server implements (the library answers the others with `-32601`, rightly).
pub const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/list",
    "tasks/cancel",
    "tasks/result",
];

/// The verdict on one line.
#[derive(Debug, PartialEq)]
pub enum Line {
    /// Blank: ignore.
    Blank,
    /// A message for the library. `request` names the method of a request with an id.
    Forward {
        /// `(id, method)` of a request, for fixing up the library's answer.
        request: Option<(Value, String)>,
    },
    /// Answer with this error object (already a full JSON-RPC response).
    Reply(Value),
}

/// The longest piece of a bad line quoted back (errors must not echo megabytes).
const QUOTE: usize = 80;

/// A JSON-RPC error response.
pub fn error(id: Value, code: Code, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code as i32, "message": message.into()}})
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[allow(dead_code)] // fields exist to be type-checked
struct ToolCallParams {
    name: String,
    #[serde(default)]
    arguments: Option<serde_json::Map<String, Value>>,
    #[serde(default, rename = "_meta")]
    meta: Option<serde_json::Map<String, Value>>,
}

/// A usable id: a string or an integer (JSON-RPC also allows null, for errors only).
fn valid_id(id: &Value) -> bool {
    id.is_string() || id.as_i64().is_some() || id.as_u64().is_some()
}

/// Reads the id of a line that is not valid UTF-8, if the rest of it parses.
fn id_of_lossy(line: &[u8]) -> Value {
    let text = String::from_utf8_lossy(line);
    serde_json::from_str::<Envelope>(&text)
        .ok()
        .and_then(|e| e.id)
        .filter(valid_id)
        .unwrap_or(Value::Null)
}

fn quote(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(QUOTE)]).into_owned();
    if line.len() > QUOTE {
        format!("{text}…")
    } else {
        text
    }
}

/// Judges one line (without its newline).
pub fn check(line: &[u8]) -> Line {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Line::Blank;
    }
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => {
            return Line::Reply(error(
                id_of_lossy(line),
                Code::Parse,
                format!(
                    "Parse error: invalid UTF-8 at byte {} (messages are UTF-8 JSON)",
                    e.valid_up_to()
                ),
            ))
        }
    };
    // serde would read a struct from an array too: only an object is a message.
    let object = text.trim_start().starts_with('{');
    let parsed = if object {
        serde_json::from_str::<Envelope>(text)
    } else {
        serde_json::from_str::<Envelope>("!")
    };
    let env: Envelope = match parsed {
        Ok(e) => e,
        Err(e) => {
            let is_json = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
            return Line::Reply(if is_json {
                error(
                    Value::Null,
                    Code::InvalidRequest,
                    "Invalid Request: a message is one JSON object (batches are not supported)",
                )
            } else {
                error(
                    Value::Null,
                    Code::Parse,
                    format!("Parse error: {e} in `{}`", quote(line)),
                )
            });
        }
    };
    let id = match env.id {
        Some(id) if valid_id(&id) => Some(id),
        Some(_) => {
            return Line::Reply(error(
                Value::Null,
                Code::InvalidRequest,
                "Invalid Request: `id` must be a string or an integer",
            ))
        }
        None => None,
    };
    let reply_id = id.clone().unwrap_or(Value::Null);
    if env.jsonrpc.map(RawValue::get) != Some("\"2.0\"") {
        // A notification gets no answer, even a malformed one; anything with an id does.
        return match id {
            Some(id) => Line::Reply(error(
                id,
                Code::InvalidRequest,
                "Invalid Request: `jsonrpc` must be \"2.0\"",
            )),
            None if env.method.is_some() => Line::Forward { request: None },
            None => Line::Reply(error(
                Value::Null,
                Code::InvalidRequest,
                "Invalid Request: `jsonrpc` must be \"2.0\"",
            )),
        };
    }
    let Some(method) = env.method else {
        // A response to one of our requests (elicitation): the library matches it.
        return Line::Forward { request: None };
    };
    if let Some(p) = env.params {
        if !p.get().starts_with('{') {
            return match id {
                Some(_) => Line::Reply(error(
                    reply_id,
                    Code::InvalidParams,
                    format!("Invalid params: `params` of {method} must be an object"),
                )),
                None => Line::Blank,
            };
        }
        if method == "tools/call" {
            if let Err(e) = serde_json::from_str::<ToolCallParams>(p.get()) {
                return match id {
                    Some(_) => Line::Reply(error(
                        reply_id,
                        Code::InvalidParams,
                        format!(
                            "Invalid params: tools/call needs a string `name` and an object `arguments`: {e}"
                        ),
                    )),
                    None => Line::Blank,
                };
            }
        }
    }
    Line::Forward {
        request: id.map(|id| (id, method)),
    }
}

/// Fixes the library's answer to a known method whose parameters it could not decode: it
/// says `-32601` (method not found) where the spec wants `-32602`.
pub fn fix_reply(reply: &mut Value, method: &str) -> bool {
    if !KNOWN_METHODS.contains(&method) {
        return false;
    }
    let Some(err) = reply.get_mut("error") else {
        return false;
    };
    if err.get("code").and_then(Value::as_i64) != Some(Code::MethodNotFound as i64) {
        return false;
    }
    err["code"] = json!(Code::InvalidParams as i32);
    err["message"] = json!(format!(
        "Invalid params: the parameters of {method} do not match its schema"
    ));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(line: &[u8]) -> Value {
        match check(line) {
            Line::Reply(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_malformed_line_gets_the_code_the_spec_requires() {
        for (line, id, code) in [
            (&b"not json"[..], Value::Null, -32700),
            (b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"", Value::Null, -32700),
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"x\",\"params\":{\"a\":\"\xff\"}}",
                json!(3),
                -32700,
            ),
            (b"\xff\xfe", Value::Null, -32700),
            (b"42", Value::Null, -32600),
            (b"[{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"ping\"}]", Value::Null, -32600),
            (b"[1, 2", Value::Null, -32700),
            (b"{\"id\":7,\"method\":\"ping\"}", json!(7), -32600),
            (b"{\"jsonrpc\":\"2.0\",\"id\":{\"a\":1},\"method\":\"ping\"}", Value::Null, -32600),
            (b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/list\",\"params\":5}", json!(5), -32602),
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"arguments\":\"oops\"}}",
                json!("a"),
                -32602,
            ),
            (
                b"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{\"name\":5}}",
                json!(9),
                -32602,
            ),
        ] {
            let r = reply(line);
            assert_eq!(r["id"], id, "{}", String::from_utf8_lossy(line));
            assert_eq!(r["error"]["code"], code, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn good_lines_pass_and_errors_do_not_echo_megabytes() {
        assert_eq!(
            check(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}"),
            Line::Forward {
                request: Some((json!(1), "tools/list".into()))
            }
        );
        assert_eq!(
            check(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}"),
            Line::Forward { request: None }
        );
        assert_eq!(check(b"  \r"), Line::Blank);
        let big = format!("{{\"x\": \"{}", "a".repeat(1 << 20));
        let r = reply(big.as_bytes());
        assert!(r.to_string().len() < 1000, "{}", r.to_string().len());
    }

    #[test]
    fn the_librarys_method_not_found_for_a_known_method_becomes_invalid_params() {
        let mut r = error(json!(4), Code::MethodNotFound, "tools/call");
        assert!(fix_reply(&mut r, "tools/call"));
        assert_eq!(r["error"]["code"], -32602);
        let mut r = error(json!(8), Code::MethodNotFound, "nope");
        assert!(!fix_reply(&mut r, "nope"));
        assert_eq!(r["error"]["code"], -32601);
    }
}
