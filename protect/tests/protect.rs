//! Output protection, end to end: every rule family's cases, near misses, a benign build
//! log, chunking invariance (property test), ANSI interleaving, bounds and budgets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a failed test

use execkit_protect::{
    Budget, BudgetMode, CaptureLimits, KnownSecrets, Protector, Redactor, RuleSet, StreamOutput,
};
use proptest::prelude::*;

const BENIGN: &str = include_str!("fixtures/benign-build.log");

fn redactor() -> Redactor {
    Redactor::new(&KnownSecrets::new())
}

fn protect_chunks(p: &Protector, budget: &Budget, chunks: &[&[u8]]) -> StreamOutput {
    let mut s = p.stream(budget).expect("budget");
    for c in chunks {
        s.push(c);
    }
    s.finish()
}

fn protector(known: &[&str]) -> Protector {
    let mut k = KnownSecrets::new();
    for v in known {
        k.add(v);
    }
    Protector::new(Redactor::new(&k), CaptureLimits::default())
}

/// The secret part of a positive, found with the rule's own first matching pattern.
fn secret_of(set: &RuleSet, id: &str, text: &str) -> Option<String> {
    let spec = &set.specs()[set.index_of(id)?];
    for p in &spec.patterns {
        let re = regex::bytes::RegexBuilder::new(p)
            .unicode(false)
            .build()
            .ok()?;
        if let Some(c) = re.captures(text.as_bytes()) {
            let names: Vec<_> = re.capture_names().collect();
            let m = names
                .iter()
                .enumerate()
                .filter(|(_, n)| n.is_some_and(|n| n.starts_with('s')))
                .find_map(|(i, _)| c.get(i))
                .or_else(|| c.get(0))?;
            return Some(String::from_utf8_lossy(m.as_bytes()).into_owned());
        }
    }
    None
}

#[test]
fn every_rule_family_has_cases_and_they_hold() {
    let set = RuleSet::builtin();
    let r = redactor();
    assert!(
        set.rules().len() >= 60,
        "only {} families",
        set.rules().len()
    );
    let mut failures = Vec::new();
    for spec in set.specs() {
        if spec.positives.is_empty() || spec.negatives.is_empty() {
            failures.push(format!("{}: needs positives and negatives", spec.id));
        }
        for pos in &spec.positives {
            let out = r.redact_str(pos);
            if !out.counts.contains_key(&spec.id) {
                failures.push(format!(
                    "{}: positive not redacted by this rule: {pos:?} -> {:?} {:?}",
                    spec.id, out.text, out.counts
                ));
                continue;
            }
            if spec.special.is_none() {
                if let Some(secret) = secret_of(set, &spec.id, pos) {
                    if out.text.contains(&secret) {
                        failures.push(format!("{}: secret survived in {:?}", spec.id, out.text));
                    }
                }
            }
        }
        for neg in &spec.negatives {
            let out = r.redact_str(neg);
            if !out.counts.is_empty() || out.text != *neg {
                failures.push(format!(
                    "{}: negative was redacted: {neg:?} -> {:?} {:?}",
                    spec.id, out.text, out.counts
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn near_misses_are_left_alone() {
    let r = redactor();
    let cases = [
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "HEAD is now at 3f786850e387550fdab836ed7e6dc881de23001b fix build",
        "request 123e4567-e89b-12d3-a456-426614174000 done",
        "password=",
        "password: ",
        "PASSWORD=\"\"",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "integrity sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==",
        "Downloading https://files.pythonhosted.org/packages/70/8e/requests-2.31.0-py3-none-any.whl",
    ];
    for c in cases {
        let out = r.redact_str(c);
        assert_eq!(out.text, c, "{c}");
        assert!(out.counts.is_empty(), "{c}: {:?}", out.counts);
    }
    // A base64 image blob.
    let blob: String = (0..4000u32)
        .map(|i| {
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            alphabet[((i.wrapping_mul(2654435761)) >> 7) as usize % 64] as char
        })
        .collect();
    let img = format!("<img src=\"data:image/png;base64,{blob}\">\n");
    let out = r.redact_str(&img);
    assert!(out.counts.is_empty(), "{:?}", out.counts);
}

#[test]
fn benign_build_log_has_zero_redactions() {
    assert!(BENIGN.lines().count() > 2000);
    let out = redactor().redact_str(BENIGN);
    assert!(
        out.counts.is_empty(),
        "benign log redacted: {:?}",
        out.counts
    );
    assert_eq!(out.text, BENIGN);
}

#[test]
fn recall_on_common_assignments() {
    let r = redactor();
    for (text, id) in [
        ("password=Summer2024", "password-assignment"),
        ("\"api_key\": \"abcd1234efgh5678\"", "api-key-assignment"),
        ("SECRET_KEY = 'django-insecure-xyz123'", "secret-assignment"),
        ("DB_PASSWORD=hunter2!", "password-assignment"),
        (
            "Authorization: Bearer abc.def.ghijklmnopqrstu",
            "authorization-header",
        ),
        (
            "postgres://app:s3cret@db:5432/app",
            "database-connection-string",
        ),
        ("https://user:pa55word@example.com/", "url-credentials"),
    ] {
        let out = r.redact_str(text);
        assert_eq!(out.counts.get(id), Some(&1), "{text} -> {}", out.text);
    }
    assert_eq!(
        r.redact_str("password=Summer2024").text,
        "password=[REDACTED:password-assignment]"
    );
}

#[test]
fn pem_block_whole_and_across_chunks() {
    let key = "-----BEGIN OPENSSH PRIVATE KEY-----\n\
               b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n\
               QyNTUxOQAAACDd4g5ZkG8j0gQ1vZr0bqJz9pL3f0e6c4d5a6b7c8d9e0f1a2b3c4d5e6==\n\
               -----END OPENSSH PRIVATE KEY-----\n";
    let text = format!("before\n{key}after\n");
    let p = protector(&[]);
    let whole = protect_chunks(&p, &Budget::default(), &[text.as_bytes()]);
    assert_eq!(whole.text, "before\n[REDACTED:private-key]\nafter\n");
    assert_eq!(whole.redactions["private-key"], 1);
    for split in [1, 10, 45, 60, 100, 130, text.len() - 3] {
        let (a, b) = text.as_bytes().split_at(split);
        let out = protect_chunks(&p, &Budget::default(), &[a, b]);
        assert_eq!(out.text, whole.text, "split at {split}");
    }
    // A header whose block is cut short: the body is still hidden, later text shown.
    let cut = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\nnot base64 at all!\n";
    let out = protect_chunks(&p, &Budget::default(), &[cut.as_bytes()]);
    assert_eq!(out.text, "[REDACTED:private-key]\nnot base64 at all!\n");
}

#[test]
fn kubernetes_secret_values() {
    let yaml = "apiVersion: v1\ndata:\n  password: cGFzc3dvcmQxMjM=\n  username: YWRtaW4=\nkind: Secret\nmetadata:\n  name: db\n";
    let out = redactor().redact_str(yaml);
    assert_eq!(
        out.text,
        "apiVersion: v1\ndata:\n  password: [REDACTED:kubernetes-secret-data]\n  username: [REDACTED:kubernetes-secret-data]\nkind: Secret\nmetadata:\n  name: db\n"
    );
}

/// A Secret's `stringData` entry written as a block scalar (`config.json: |`) holds its
/// value on the lines below, indented deeper: none of those lines may show, and one without
/// a colon must not end the block (the next `key: |-` value too). Each line of the text is
/// the value, whatever it holds (a `#`, a colon, JSON), blank lines and all, until a line
/// indented no deeper than the entry. In `data:` (base64, or a ConfigMap's plain text)
/// a line is redacted when it looks base64, as single-line values are, except inside PEM
/// armor (a ConfigMap's certificate); a private key there is redacted as a key. Cut at
/// every byte.
#[test]
fn kubernetes_secret_block_scalars_are_redacted_line_by_line() {
    let r = redactor();
    let cases: [(&str, &str); 5] = [
        (
            "kind: Secret\nstringData:\n  config.json: |\n    {\"user\": \"app\", \"token\": \"Xk29fLq8ZmP3vR7tW2yB\"}\n    # kept as text\n\n    second: line\n  db_password: |-\n    Zq8XmP3vR7tW2yBk29fL\n  other: plain\nmetadata:\n  name: x\n",
            "kind: Secret\nstringData:\n  config.json: |\n    @\n    @\n\n    @\n  db_password: |-\n    @\n  other: @\nmetadata:\n  name: x\n",
        ),
        // Folded, with an indentation digit and a comment on the header.
        (
            "stringData:\n  token: >2-  # rotated monthly\n    aB3dE5gH7jK9mN1pQ\n    rS2tU4vW6xY8zA0b\nkind: Secret\n",
            "stringData:\n  token: >2-  # rotated monthly\n    @\n    @\nkind: Secret\n",
        ),
        // `data:`: base64 lines are values; a ConfigMap's plain text is not.
        (
            "data:\n  tls.key: |\n    LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t\n    TUlJRXZBSUJBREFOQmdrcWhraUc5dzBCQVFF\n  nginx.conf: |\n    server {\n      listen 80;\n    }\n",
            "data:\n  tls.key: |\n    @\n    @\n  nginx.conf: |\n    server {\n      listen 80;\n    }\n",
        ),
        // A ConfigMap's certificate is shown (armored text, not base64 data); a private
        // key in `data` is redacted as a key, and the block ends with it.
        (
            "data:\n  ca.crt: |\n    -----BEGIN CERTIFICATE-----\n    MIIC/jCCAeagAwIBAgIBADANBgkqhkiG9w0BAQsFADAVMRMwEQYDVQQDEwprdWJl\n    -----END CERTIFICATE-----\n  tls.key: |\n    -----BEGIN RSA PRIVATE KEY-----\n    MIIEowIBAAKCAQEAu1SU1LfVSECRETBODYxH2Mo4lgOEePzNm0tRgeLezV6\n    -----END RSA PRIVATE KEY-----\nkind: ConfigMap\n",
            "data:\n  ca.crt: |\n    -----BEGIN CERTIFICATE-----\n    MIIC/jCCAeagAwIBAgIBADANBgkqhkiG9w0BAQsFADAVMRMwEQYDVQQDEwprdWJl\n    -----END CERTIFICATE-----\n  tls.key: |\n    [REDACTED:private-key]\nkind: ConfigMap\n",
        ),
        // A value that is not a block scalar's header opens nothing: the next line at the
        // entry's depth is an entry again.
        (
            "stringData:\n  mode: |x\n  user: app\n",
            "stringData:\n  mode: @\n  user: @\n",
        ),
    ];
    let label = "[REDACTED:kubernetes-secret-data]";
    for (text, want) in cases {
        same_at_every_cut(&r, text, &want.replace('@', label));
    }
}

/// A YAML block scalar under a key that names a secret (`password: |`) holds the value on
/// the lines below, which the key-name rules, reading one line at a time, would show. Each
/// line of the text is judged as `KEY: line`; a key that names nothing, placeholders,
/// a private key inside (redacted as a key) and the lines after the scalar are left as
/// they are. Cut at every byte, and read through `cat -n` and `cat -A`.
#[test]
fn a_secret_s_block_scalar_is_redacted_line_by_line() {
    let r = redactor();
    let cases: [(&str, &str); 4] = [
        (
            "db:\n  password: |\n    Xk29fLq8ZmP3vR7tW2yB\n\n    aB3dE5gH7jK9mN1pQ\n  user: app\nport: 5432\n",
            "db:\n  password: |\n    @\n\n    @\n  user: app\nport: 5432\n",
        ),
        (
            "- \"client_secret\": >-  # rotated\n    Zq8XmP3vR7tW2yBk29fL\n- name: web\n",
            "- \"client_secret\": >-  # rotated\n    @\n- name: web\n",
        ),
        (
            "description: |\n  Kq8ZmP3vR7tW2yBXk29f\napi_token: |\n  ${API_TOKEN}\n",
            "description: |\n  Kq8ZmP3vR7tW2yBXk29f\napi_token: |\n  ${API_TOKEN}\n",
        ),
        (
            "ssh_private_key: |\n  -----BEGIN OPENSSH PRIVATE KEY-----\n  b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n  -----END OPENSSH PRIVATE KEY-----\nnext: 1\n",
            "ssh_private_key: |\n  [REDACTED:private-key]\nnext: 1\n",
        ),
    ];
    let label = "[REDACTED:secret-block-scalar]";
    for (text, want) in cases {
        let want = want.replace('@', label);
        same_at_every_cut(&r, text, &want);
        let numbered = |t: &str| {
            t.lines()
                .enumerate()
                .map(|(i, l)| format!("{:6}\t{l}\n", i + 1))
                .collect::<String>()
        };
        // (A private key's lines become one: the listing's numbers then skip.)
        if text.lines().count() == want.lines().count() {
            assert_eq!(
                r.redact_str(&numbered(text)).text,
                numbered(&want),
                "cat -n"
            );
        }
        let marked = |t: &str| t.lines().map(|l| format!("{l}$\n")).collect::<String>();
        let shown = r.redact_str(&marked(text)).text;
        assert!(
            !shown.contains("Xk29fLq8ZmP3vR7tW2yB") && !shown.contains("Zq8XmP3vR7tW2yBk29fL"),
            "cat -A: {shown}"
        );
    }
}

/// An agent that prints a block scalar's header before a Secret manifest, or a private
/// key, indented under it (`(echo 'password: |'; kubectl get secret x -o yaml | sed
/// 's/^/  /')`), would have the scalar read those lines as text if it swallowed what they
/// open. A line that opens another multi-line secret ends the scalar (a secret's, a
/// `data` entry's, a pair's value), so the manifest's values and the key are redacted as
/// they are without the header. Cut at every byte.
#[test]
fn a_block_scalar_does_not_hide_a_secret_block_opened_inside_it() {
    let r = redactor();
    let manifest = "  data:\n    tls.key: LS0tLS1CRUdJTiBQUklWQVRFSECRETBODY0=\n  kind: Secret\n";
    let key = "  -----BEGIN OPENSSH PRIVATE KEY-----\n  b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n  -----END OPENSSH PRIVATE KEY-----\n";
    for header in [
        "password: |\n",
        "data:\n  a: |\n",
        "- name: API_TOKEN\n  value: |\n",
    ] {
        for inside in [manifest, key] {
            let indent = " ".repeat(
                header
                    .lines()
                    .last()
                    .map_or(0, |l| l.len() - l.trim_start().len()),
            );
            let inner: String = inside.lines().map(|l| format!("{indent}{l}\n")).collect();
            let text = format!("{header}{inner}");
            let out = r.redact_str(&text).text;
            assert!(
                !out.contains("SECRETBODY")
                    && !out.contains("b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"),
                "{header:?} hid {inside:?}:\n{out}"
            );
            same_at_every_cut(&r, &text, &out);
        }
    }
}

/// Asserts that `text` redacts to `want` whole, and pushed in two pieces cut at every byte.
fn same_at_every_cut(r: &Redactor, text: &str, want: &str) {
    assert_eq!(r.redact_str(text).text, want, "{text}");
    for cut in 1..text.len() {
        let (x, y) = text.split_at(cut);
        let mut s = r.stream();
        let mut out = String::new();
        s.push(x, &mut out);
        s.push(y, &mut out);
        s.finish(&mut out);
        assert_eq!(out, want, "cut at {cut}: {text}");
    }
}

/// A secret's name on one line and its value on the next, as Kubernetes env lists, `kubectl
/// -o json`, ECS task definitions and `aws ssm get-parameter` print them: read line by line,
/// each value would show, even `value: hunter2` under `name: DB_PASSWORD` (the value line
/// alone names nothing). The value is judged as the line `NAME: value` would be; names that
/// name no secret, `valueFrom` references and the next item are left alone. Each case is
/// also cut at every byte, and read through `cat -n`.
#[test]
fn a_secret_name_s_value_on_the_next_line_is_redacted() {
    let r = redactor();
    let label = "[REDACTED:name-value-secret-lines]";
    let cases: [(&str, &str); 8] = [
        // The value as a block scalar: its text on the lines below.
        (
            "- name: DB_PASSWORD\n  value: |-\n    Xk29fLq8ZmP3vR7tW2yB\n\n    aB3dE5gH7jK9mN1pQ\n- name: MODE\n  value: |\n    production-eu-west\n",
            "- name: DB_PASSWORD\n  value: |-\n    @\n\n    @\n- name: MODE\n  value: |\n    production-eu-west\n",
        ),
        (
            "      env:\n      - name: DB_PASSWORD\n        value: hunter2\n      - name: LOG_LEVEL\n        value: debug\n",
            "      env:\n      - name: DB_PASSWORD\n        value: @\n      - name: LOG_LEVEL\n        value: debug\n",
        ),
        (
            "- name: GITHUB_TOKEN\n  valueFrom:\n    secretKeyRef:\n      name: gh\n      key: token\n- name: PORT\n  value: \"8080\"\n- name: API_TOKEN\n  value: \"a8Fk2LmQ9zX7pR4tV1wY\"\n",
            "- name: GITHUB_TOKEN\n  valueFrom:\n    secretKeyRef:\n      name: gh\n      key: token\n- name: PORT\n  value: \"8080\"\n- name: API_TOKEN\n  value: \"@\"\n",
        ),
        (
            "{\n  \"env\": [\n    {\n      \"name\": \"STRIPE_SECRET_KEY\",\n      \"value\": \"Xk29fLq8ZmP3vR7tW2yB\"\n    },\n    {\n      \"name\": \"MODE\",\n      \"value\": \"production-eu-west\"\n    }\n  ]\n}\n",
            "{\n  \"env\": [\n    {\n      \"name\": \"STRIPE_SECRET_KEY\",\n      \"value\": \"@\"\n    },\n    {\n      \"name\": \"MODE\",\n      \"value\": \"production-eu-west\"\n    }\n  ]\n}\n",
        ),
        (
            "{\n    \"Parameter\": {\n        \"Name\": \"/prod/db/password\",\n        \"Type\": \"SecureString\",\n        \"Value\": \"sunshine\",\n        \"Version\": 1\n    }\n}\n",
            "{\n    \"Parameter\": {\n        \"Name\": \"/prod/db/password\",\n        \"Type\": \"SecureString\",\n        \"Value\": \"@\",\n        \"Version\": 1\n    }\n}\n",
        ),
        (
            "- key: DEPLOY_TOKEN\n  value: gK3vX9pQ2mR7tL4w\n- key: REGION\n  value: eu-west-1\n",
            "- key: DEPLOY_TOKEN\n  value: @\n- key: REGION\n  value: eu-west-1\n",
        ),
        // A name with nothing under it, then another item: its value is not the secret's.
        (
            "- name: DB_PASSWORD\n- name: MODE\n  value: production-eu-west\n",
            "- name: DB_PASSWORD\n- name: MODE\n  value: production-eu-west\n",
        ),
        // A private key in a sibling's value, inside the pair: it opens the key as
        // anywhere else (the pair must not swallow its header line).
        (
            "- name: SSH_KEY\n  description: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n    -----END OPENSSH PRIVATE KEY-----\n  value: x\n",
            "- name: SSH_KEY\n  description: |\n    [REDACTED:private-key]\n  value: x\n",
        ),
    ];
    for (text, want) in cases {
        let want = want.replace('@', label);
        same_at_every_cut(&r, text, &want);
        // Through a listing, each line numbered as `cat -n` numbers it.
        let listed: String = text
            .lines()
            .enumerate()
            .map(|(i, l)| format!("{:6}\t{l}\n", i + 1))
            .collect();
        // Each line read back without its number (a key's body lines go with theirs).
        let unlisted: String = r
            .redact_str(&listed)
            .text
            .lines()
            .map(|l| format!("{}\n", l.split_once('\t').map_or(l, |(_, rest)| rest)))
            .collect();
        assert_eq!(unlisted, want, "{listed}");
    }
    // A key's header in a sibling's own value: the pair ends there and the key opens.
    let text = "- name: SSH_KEY\n  description: -----BEGIN OPENSSH PRIVATE KEY-----\n    b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n    -----END OPENSSH PRIVATE KEY-----\n  value: x\n";
    let want = "- name: SSH_KEY\n  description: [REDACTED:private-key]\n  value: x\n";
    same_at_every_cut(&r, text, want);
    // Coloured by `yq -C`: stripped by the pipeline, then judged the same.
    let coloured = "- \x1b[36mname\x1b[0m: \x1b[32mDB_PASSWORD\x1b[0m\n  \x1b[36mvalue\x1b[0m: \x1b[32mhunter2\x1b[0m\n";
    let out = protect_chunks(&protector(&[]), &Budget::default(), &[coloured.as_bytes()]);
    assert_eq!(out.text, format!("- name: DB_PASSWORD\n  value: {label}\n"));
}

#[test]
fn secrets_split_or_hidden_by_escapes_are_redacted() {
    let token = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
    let p = protector(&["correct-horse-battery"]);
    let b = Budget::default();
    let cases: Vec<Vec<u8>> = vec![
        // split across chunks (handled below), interleaved with SGR
        b"token: gh\x1b[1mp_0123456789\x1b[0mabcdefghijABCDEFGHIJ012345\n".to_vec(),
        // interleaved with an OSC title and a hyperlink
        b"ghp_0123\x1b]0;title\x07456789abcdefghij\x1b]8;;http://x\x1b\\ABCDEFGHIJ012345\n"
            .to_vec(),
        // a truncated CSI that would eat the first character
        format!("\x1b[{token}\n").into_bytes(),
        format!("\x1b[31{token}\n").into_bytes(),
        // a truncated OSC
        format!("\x1b]0;{token}\n").into_bytes(),
        // known value with an escape inside and a backspace trick
        b"pw correct-\x1b[0mhorse-battery\n".to_vec(),
        b"pw correct-horse-batterX\x08y\n".to_vec(),
        // a C1 CSI
        format!("\u{9b}1m{token}\n").into_bytes(),
    ];
    for case in cases {
        let out = protect_chunks(&p, &b, &[&case]);
        assert!(
            !out.text.contains("456789abcdefghij") && !out.text.contains("horse-battery"),
            "leaked: {:?} -> {:?}",
            String::from_utf8_lossy(&case),
            out.text
        );
        assert!(out.text.contains("[REDACTED:"), "{:?}", out.text);
        for split in 1..case.len() {
            let (x, y) = case.split_at(split);
            let again = protect_chunks(&p, &b, &[x, y]);
            assert_eq!(again.text, out.text, "split {split} of {case:?}");
        }
    }
}

#[test]
fn known_values_in_encoded_forms() {
    use base64::Engine as _;
    let secret = "Tr0ub4dor&3-zebra";
    let p = protector(&[secret]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    let inner = base64::engine::general_purpose::STANDARD.encode(format!("user:{secret}"));
    let text = format!("a {secret}\nb {b64}\nc Tr0ub4dor%263-zebra\nd {inner}\n");
    let out = protect_chunks(&p, &Budget::default(), &[text.as_bytes()]);
    assert!(!out.text.contains("Tr0ub4dor"), "{}", out.text);
    assert!(!out.text.contains(&b64), "{}", out.text);
    assert!(out.redactions["known-value"] >= 4, "{:?}", out.redactions);
}

#[test]
fn redacted_command_text() {
    let p = protector(&["hunter2-very-secret"]);
    let r = p.redact_text("mysql -u root -phunter2-very-secret -e 'select 1'");
    assert!(!r.text.contains("hunter2"), "{}", r.text);
}

#[test]
fn bounded_capture_keeps_exact_totals() {
    let limits = CaptureLimits {
        head_bytes: 1000,
        tail_bytes: 1000,
        max_line_bytes: 4096,
    };
    let p = Protector::new(redactor(), limits);
    let mut s = p.stream(&Budget::default()).unwrap();
    let line = "0123456789012345678901234567890123456789\n"; // 41 bytes
    let mut total = 0u64;
    for _ in 0..250_000 {
        s.push(line.as_bytes());
        total += line.len() as u64;
    }
    let out = s.finish();
    assert_eq!(out.report.bytes_total, total);
    assert_eq!(out.report.raw_bytes, total);
    assert_eq!(out.report.lines_total, 250_000);
    assert_eq!(out.report.bytes_kept, 2000);
    assert_eq!(out.report.elided_bytes, total - 2000);
    assert!(out
        .text
        .contains(&format!("[… execkit: {} bytes elided …]", total - 2000)));
    assert!(out.text.len() < 2100);
}

#[test]
fn grep_finds_a_needle_in_the_middle_of_a_large_stream() {
    let p = Protector::new(redactor(), CaptureLimits::default());
    let budget = Budget {
        mode: BudgetMode::Grep {
            pattern: "NEEDLE".into(),
            context: 1,
        },
        max_chars: None,
    };
    let mut s = p.stream(&budget).unwrap();
    let filler = "filler line that says nothing of interest at all\n".repeat(1000);
    let n = 600; // ~30 MB
    for i in 0..n {
        if i == n / 2 {
            s.push(b"before\nthe NEEDLE is here\nafter\n");
        }
        s.push(filler.as_bytes());
    }
    let out = s.finish();
    assert_eq!(out.report.matches, Some(1));
    assert!(out.text.contains(":the NEEDLE is here\n"), "{}", out.text);
    assert!(out.text.contains("-before\n") && out.text.contains("-after\n"));
    assert_eq!(out.report.lines_total, n as u64 * 1000 + 3);
}

#[test]
fn long_lines_are_windowed_without_missing_secrets() {
    let p = protector(&[]);
    // A token right across the first window boundary, on a single 200 KB line.
    let token = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
    // 64 KiB is the redactor's window on long lines (`WINDOW` in redact.rs).
    const WINDOW: usize = 64 * 1024;
    let mut line = "a,".repeat((WINDOW - 20) / 2);
    line.push_str(token);
    line.push_str(&",b".repeat(70_000));
    line.push('\n');
    let budget = Budget {
        mode: BudgetMode::Full,
        max_chars: None,
    };
    let limits = CaptureLimits {
        head_bytes: 1 << 20,
        tail_bytes: 1 << 20,
        max_line_bytes: 1 << 20,
    };
    let p = Protector::new(p.redactor().clone(), limits);
    let out = protect_chunks(&p, &budget, &[line.as_bytes()]);
    assert!(!out.text.contains("456789abcdefghij"));
    assert_eq!(out.redactions["github-pat"], 1);
    let chunks: Vec<&[u8]> = line.as_bytes().chunks(7919).collect();
    assert_eq!(protect_chunks(&p, &budget, &chunks).text, out.text);
}

#[test]
fn invalid_utf8_never_panics() {
    let p = protector(&[]);
    let junk: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(7919) % 256) as u8)
        .collect();
    let out = protect_chunks(&p, &Budget::default(), &[&junk]);
    assert_eq!(out.report.raw_bytes, 20_000);
    assert!(out.text.contains('\u{FFFD}'), "invalid bytes become U+FFFD");
    assert!(!out.text.contains('\u{1b}'), "no escape survives");
    let chunks: Vec<&[u8]> = junk.chunks(3).collect();
    assert_eq!(
        protect_chunks(&p, &Budget::default(), &chunks).text,
        out.text
    );
}

/// A corpus mixing everything the pipeline handles.
fn corpus() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&BENIGN.as_bytes()[..20_000]);
    v.extend_from_slice(b"\x1b[1;32m   Compiling\x1b[0m foo v0.1.0\r\n");
    v.extend_from_slice(b"progress 10%\rprogress 50%\r\x1b[Kprogress 100%\n");
    v.extend_from_slice(
        "export GITHUB_TOKEN=ghp_0123456789abcdefghijABCDEFGHIJ012345\n".as_bytes(),
    );
    v.extend_from_slice(b"\x1b]0;title\x07password=Summer2024 \xff\xfe bytes\n");
    v.extend_from_slice(b"-----BEGIN PRIVATE KEY-----\nMIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEA\n-----END PRIVATE KEY-----\n");
    v.extend_from_slice("caf\u{e9} \u{1F600} \u{9b}31mred\u{9b}0m sk-ant-api03-".as_bytes());
    v.extend_from_slice(&[b'x'; 95]);
    v.extend_from_slice(b"AA\n\x1b[31AKIAIOSFODNN7EXAMPLE\x1b[0m and my-known-secret-1\n");
    v.extend_from_slice(
        b"data:\n  token: c2VjcmV0LXRva2Vu\nkind: Secret\n\x1b]8;;unterminated\nend",
    );
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn chunking_never_changes_the_result(cuts in proptest::collection::vec(0usize..1_000_000, 0..40), grep in any::<bool>()) {
        let data = corpus();
        let p = protector(&["my-known-secret-1"]);
        let budget = if grep {
            Budget { mode: BudgetMode::Grep { pattern: "(?i)redacted|progress".into(), context: 1 }, max_chars: None }
        } else {
            Budget::default()
        };
        let whole = protect_chunks(&p, &budget, &[&data]);
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        points.sort_unstable();
        points.dedup();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for pt in points {
            chunks.push(&data[prev..pt]);
            prev = pt;
        }
        chunks.push(&data[prev..]);
        let split = protect_chunks(&p, &budget, &chunks);
        prop_assert_eq!(&split.text, &whole.text);
        prop_assert_eq!(&split.redactions, &whole.redactions);
        prop_assert_eq!(&split.report, &whole.report);
        prop_assert!(!whole.text.contains("ghp_0123"));
        prop_assert!(!whole.text.contains("Summer2024"));
        prop_assert!(!whole.text.contains("IOSFODNN7"));
        prop_assert!(!whole.text.contains("my-known-secret-1"));
    }
}

#[test]
fn byte_at_a_time_equals_one_chunk() {
    let data = corpus();
    let p = protector(&["my-known-secret-1"]);
    let whole = protect_chunks(&p, &Budget::default(), &[&data]);
    let bytes: Vec<&[u8]> = data.chunks(1).collect();
    let one = protect_chunks(&p, &Budget::default(), &bytes);
    assert_eq!(one.text, whole.text);
    assert_eq!(one.redactions, whole.redactions);
}

#[path = "support/corpus.rs"]
mod corpus;

/// An agent reads code all day: on real source code (the Python standard library, the
/// registry sources of this workspace's dependencies) at most one redaction per MB, every
/// one listed (`cargo test -p execkit-protect --release --test protect real_code --
/// --nocapture`).
#[test]
fn real_code_corpora_stay_unaltered() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let r = redactor();
    for (name, files) in [
        ("Python standard library", corpus::python_stdlib()),
        ("cargo registry sources", corpus::cargo_registry()),
        ("npm packages (JavaScript)", corpus::npm_packages()),
    ] {
        let files = match files {
            Ok(f) => f,
            Err(e) if !ci => {
                eprintln!("skipping the {name} corpus: {e}");
                continue;
            }
            Err(e) => panic!("{name}: {e}"),
        };
        let o = corpus::run(name, &files, &r);
        let without_gates = corpus::run(name, &files, &ungated());
        println!(
            "{}: {} files, {:.1} MB, {} redactions ({:.2} per MB; without the value gates {}, {:.2} per MB): {:?}",
            o.name,
            o.files,
            o.bytes as f64 / 1e6,
            o.total(),
            o.per_mb(),
            without_gates.total(),
            without_gates.per_mb(),
            o.per_rule
        );
        for h in &o.hits {
            println!("  {h}");
        }
        assert!(o.bytes > 5_000_000, "{name}: only {} bytes", o.bytes);
        assert!(
            o.per_mb() <= 1.0,
            "{name}: {:.2} redactions per MB (budget 1.0): {:?}",
            o.per_mb(),
            o.per_rule
        );
    }
}

const CONFIG_SECRETS: &str = include_str!("fixtures/secrets-in-config.txt");

/// The shipped rules without their value gates: what the rules alone redact.
fn ungated() -> Redactor {
    let text: Vec<&str> = execkit_protect::BUILTIN_RULES
        .lines()
        .filter(|l| !l.starts_with("gate = "))
        .collect();
    let rules = RuleSet::from_toml(&text.join("\n")).expect("rules without gates");
    Redactor::with_rules(Box::leak(Box::new(rules)), &KnownSecrets::new())
}

/// Gates only ever drop code: every positive case and every realistic config/env/log secret
/// is redacted exactly as the ungated rules redact it, and nothing of its value is left.
#[test]
fn value_gates_keep_every_secret_the_rules_found_in_config_env_and_logs() {
    let gated = redactor();
    let before = ungated();
    let set = RuleSet::builtin();
    let mut cases: Vec<String> = set
        .specs()
        .iter()
        .flat_map(|s| s.positives.iter().cloned())
        .collect();
    cases.extend(
        CONFIG_SECRETS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| l.replace("\\n", "\n")),
    );
    assert!(cases.len() > 200, "{}", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let now = gated.redact_str(c);
        let then = before.redact_str(c);
        if now.text != then.text {
            failures.push(format!(
                "{c:?}\n   gated:   {:?}\n   ungated: {:?}",
                now.text, then.text
            ));
        }
    }
    for c in CONFIG_SECRETS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let c = c.replace("\\n", "\n");
        if gated.redact_str(&c).counts.is_empty() {
            failures.push(format!("not redacted at all: {c:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The gate's own examples in `rules/secrets.toml` (`[values] examples`): each line's value
/// is redacted when it is marked a secret and left alone when it is not.
#[test]
fn value_gate_examples_hold() {
    let r = redactor();
    let set = RuleSet::builtin();
    let examples = &set.value_lists().examples;
    assert!(examples.len() >= 15);
    for ex in examples {
        let out = r.redact_str(&ex.line);
        let redacted = !out.text.contains(&ex.value);
        assert_eq!(redacted, ex.secret, "{:?} -> {:?}", ex.line, out.text);
    }
}

/// How tools list a file's lines: numbered (`cat -n`, `nl`, `less -N`), found (`grep -n`,
/// `-H`, `-rn`, a context line of `-A`), compared (`git diff`, `diff`).
const LISTINGS: [(&str, &str); 12] = [
    ("cat -n", "    12\t"),
    ("nl", "     3\t"),
    ("less -N", "     12 "),
    ("grep -n", "12:"),
    ("grep -H", "config/app.env:"),
    ("grep -rn", "deploy/prod.env:12:"),
    ("grep -rn -A", "deploy/prod-1.env-13-"),
    ("git diff +", "+"),
    ("git diff -", "-"),
    ("git diff context", " "),
    ("diff >", "> "),
    ("diff <", "< "),
];

/// A listed line is judged as the line itself: a file shown through `cat -n`, `grep -rn`
/// or `git diff` shows its secrets as redacted, and its code as unaltered, as the file
/// shown plainly does. A weak config secret (`password: sunshine`, a plain word, or a long
/// number) is redacted only on a config-shaped line; were a listing's prefix to hide that
/// shape, `cat -n .env`, `grep -n PASS .env` and `git log -p` would show it.
#[test]
fn a_listed_line_is_judged_as_the_line_itself() {
    let r = redactor();
    let set = RuleSet::builtin();
    let weak = [
        "password: sunshine",
        "DB_PASSWORD=correcthorse",
        "  password: batterystaple",
        "export PGPASSWORD=tr0ub4dor",
        "DB_PASS=84630192",
        "\"password\": \"letmein\",",
    ];
    let code = set
        .value_lists()
        .examples
        .iter()
        .filter(|e| !e.secret)
        .map(|e| e.line.clone());
    let lines: Vec<String> = CONFIG_SECRETS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty() && !l.contains("\\n"))
        .map(str::to_string)
        .chain(weak.iter().map(|l| l.to_string()))
        .chain(code)
        .collect();
    // Which rule found a secret may differ (`-password=…` in a diff is a flag too); what
    // is hidden may not.
    let label = regex::Regex::new(r"\[REDACTED:[a-z0-9-]+\]").unwrap();
    let unlabelled = |t: &str| label.replace_all(t, "[REDACTED]").into_owned();
    let mut failures = Vec::new();
    for line in &lines {
        let plain = unlabelled(&r.redact_str(line).text);
        for (tool, prefix) in LISTINGS {
            let listed = unlabelled(&r.redact_str(&format!("{prefix}{line}")).text);
            if listed != format!("{prefix}{plain}") {
                failures.push(format!(
                    "{tool}: {line:?}\n  plain:  {plain:?}\n  listed: {listed:?}"
                ));
            }
        }
    }
    for w in weak {
        assert_ne!(r.redact_str(w).text, w, "{w} is not redacted even plainly");
    }
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A cursor movement by an absurd count (as the ansi_strip fuzz target makes) must neither
/// spin nor overflow; the text around it is kept.
#[test]
fn huge_cursor_movements_are_cheap() {
    let input = b"abc\x1b[99999999999999999D\x1b[18446744073709551615Cxyz\x1b[222222D!\n";
    // Moved one step at a time, this call would not return (10^17 single steps).
    assert_eq!(execkit_protect::strip_ansi(input), "!bcxyz\n");
}

#[test]
fn case_sensitive_keywords_in_long_runs_still_find_their_secrets() {
    let r = redactor();
    let fcm = "AAAA4b54cRY:sgs-wXuaaU1yW0Q9uOWyIBaPOHRu_Jk_ft2k1L2alrnWJo34Gk5Vme-MBiHJVA2J6OZ8pfsLgqTWFHe49dlkeB78kLRxrpxHRvuC8CGHhCuMiX4Bm18OhXD79zHupOZvr88-IVm-QuRm";
    let sk = "SK0c736ba80622598514f31c827129084b";
    // A run of the keyword itself, lower and upper case, before the real secrets on the
    // same line and on the next one: the collapsed overlapping hits must not hide them.
    for run in [
        "a".repeat(10_000),
        "A".repeat(10_000),
        "sk".repeat(5_000),
        "SK".repeat(5_000),
    ] {
        let text = format!("{run} key={fcm} other={sk}\n{run}{run} {sk}\n");
        let out = r.redact_str(&text).text;
        assert!(
            !out.contains(fcm) && !out.contains(&sk[2..]),
            "{}",
            &out[out.len() - 200..]
        );
        assert_eq!(
            out.matches("[REDACTED:").count(),
            3,
            "{}",
            &out[out.len() - 300..]
        );
        // And nothing else changed.
        assert!(out.starts_with(&run));
    }
}

/// A protector holding (or redacting) the middle, with 100 fake known values around.
fn middle_protector(mode: execkit_protect::MiddleMode, known: &str) -> Protector {
    let mut k = KnownSecrets::new();
    k.add(known);
    Protector::new(Redactor::new(&k), CaptureLimits::default()).with_middle(mode)
}

fn feed(p: &Protector, text: &[u8], chunk: usize) -> StreamOutput {
    let mut s = p.stream(&Budget::default()).expect("budget");
    for c in text.chunks(chunk) {
        s.push(c);
    }
    s.finish()
}

#[test]
fn the_held_middle_shows_what_redacting_it_would() {
    use execkit_protect::MiddleMode;
    let known = "k3y-Zq8vN2rT6wLx4pB9";
    let hold = middle_protector(MiddleMode::Hold, known);
    let reference = middle_protector(MiddleMode::Redact, known);
    // 3 MB of log lines with secrets all along (including in the kept tail).
    let mut text = String::new();
    let mut i = 0u64;
    while text.len() < 3_000_000 {
        text.push_str(&format!("line {i}: \x1b[32mok\x1b[0m value={i:x}\n"));
        if i.is_multiple_of(997) {
            text.push_str(&format!(
                "token ghp_0123456789abcdefghijABCDEFGHIJ{:06} and {known}\n",
                i % 1_000_000
            ));
        }
        i += 1;
    }
    for chunk in [4096, 65_536, 1_000_003] {
        let (a, b) = held_and_redacted(&hold, &reference, &text, chunk);
        assert!(!a.text.contains(known) && !a.text.contains("ghp_"));
        assert_eq!(a.report.raw_bytes, b.report.raw_bytes);
        assert_eq!(a.report.lines_total, b.report.lines_total, "chunk {chunk}");
        assert_eq!(a.report.bytes_kept, b.report.bytes_kept);
        // The dropped middle is counted stripped but unredacted, so only within the
        // length difference of its redactions.
        let diff = a.report.bytes_total.abs_diff(b.report.bytes_total);
        assert!(diff < 5_000, "chunk {chunk}: {diff}");
        assert!(a.report.truncated && a.report.elided_bytes > 2_000_000);
    }
    // Without secrets, the counts are exact too (with ghost marks in the dropped text:
    // `ESC [1m` followed by a letter leaves one).
    let plain: String = (0..200_000)
        .map(|i| format!("plain \x1b[1mline\x1b[0m {i}\n"))
        .collect();
    let a = feed(&hold, plain.as_bytes(), 8192);
    let b = feed(&reference, plain.as_bytes(), 8192);
    same_text(&a.text, &b.text, "plain");
    assert_eq!(a.report, b.report);
}

/// Multi-line secrets all along a long stream (Kubernetes `data:` blocks of Secrets and
/// ConfigMaps, PEM keys, name/value pairs over lines, blocks cut by chunk borders, one left
/// open at the end): holding
/// the middle shows what redacting it whole would, and no secret line is shown.
#[test]
fn multi_line_secrets_in_the_held_middle_show_what_redacting_it_would() {
    use execkit_protect::MiddleMode;
    let known = "k3y-Zq8vN2rT6wLx4pB9";
    let hold = middle_protector(MiddleMode::Hold, known);
    let reference = middle_protector(MiddleMode::Redact, known);
    let b64 = |i: u64| format!("c2VjcmV0LXZhbHVlLW{:06}tZm9yLXRoZS1rZXk=", i % 1_000_000);
    let pem_body = |i: u64| format!("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ{:06}", i);
    let mut text = String::new();
    let mut i = 0u64;
    while text.len() < 3_000_000 {
        text.push_str(&format!("line {i}: \x1b[32mok\x1b[0m value={i:x}\n"));
        match i % 1500 {
            100 => text.push_str(&format!(
                "apiVersion: v1\ndata:\n  password: {}\n  token: {}\nkind: Secret\n",
                b64(i),
                b64(i + 1)
            )),
            600 => text.push_str(
                "apiVersion: v1\ndata:\n  mode: production\n  LOG_LEVEL: info\nkind: ConfigMap\n",
            ),
            900 => text.push_str(&format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n{}\n-----END PRIVATE KEY-----\n",
                pem_body(i),
                pem_body(i + 1)
            )),
            1200 => text.push_str(&format!(
                "{{\"data\": {{\n  \"password\": \"{}\"\n}}}}\n",
                b64(i)
            )),
            // A name/value pair over lines (a Kubernetes env entry).
            300 | 301 => text.push_str(&format!(
                "      - name: DB_PASSWORD\n        value: pairPw{i:06}zQ8v\n"
            )),
            // Block scalars in a Secret's `stringData`.
            1400 => text.push_str(&format!(
                "kind: Secret\nstringData:\n  app.conf: |\n    blkTxt{i:06} and more\n\n    # blkTxt note\n  key: >-\n    blkTxt{i:06}Zq8\nmetadata:\n  name: app\nsettings:\n  db_password: |\n    blkTxtQ{i:06}Zq8\n  port: 5432\n"
            )),
            _ => {}
        }
        i += 1;
    }
    // A key still open when the stream ends, in the kept tail.
    text.push_str(&format!("-----BEGIN PRIVATE KEY-----\n{}\n", pem_body(i)));
    for chunk in [777, 4096, 65_536, 1_000_003] {
        let (a, b) = held_and_redacted(&hold, &reference, &text, chunk);
        assert!(a.report.truncated && a.report.elided_bytes > 2_000_000);
        // The dropped middle is counted unredacted: a multi-line secret there counts its
        // lines, where redacted it would be one (at most 3 more lines per block).
        let blocks = text.matches("-----BEGIN").count() + text.matches("data").count();
        let extra = a.report.lines_total.checked_sub(b.report.lines_total);
        let extra = extra.expect("no fewer lines than the reference");
        assert!(
            extra <= 3 * blocks as u64,
            "chunk {chunk}: {extra} more lines"
        );
        for secret in [
            "c2VjcmV0LXZhbHVlLW",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ",
            "pairPw",
            "blkTxt",
        ] {
            assert!(!a.text.contains(secret), "chunk {chunk}: {secret} shown");
        }
        assert!(
            a.text.contains("LOG_LEVEL: info"),
            "chunk {chunk}: the ConfigMap is shown"
        );
    }
}

/// `text` through a protector holding the middle and one redacting it, in `chunk`-byte
/// pieces; the two texts must be equal up to the elision marker's byte count (which
/// counts the dropped middle unredacted).
fn held_and_redacted(
    hold: &Protector,
    reference: &Protector,
    text: &str,
    chunk: usize,
) -> (StreamOutput, StreamOutput) {
    let a = feed(hold, text.as_bytes(), chunk);
    let b = feed(reference, text.as_bytes(), chunk);
    same_text(
        &without_elided_count(&a.text),
        &without_elided_count(&b.text),
        &format!("chunk {chunk}"),
    );
    (a, b)
}

fn without_elided_count(t: &str) -> String {
    let re = regex::Regex::new(r"\[… execkit: \d+ bytes elided …\]").unwrap();
    re.replace_all(t, "[… execkit: N bytes elided …]")
        .into_owned()
}

/// Asserts two long texts are equal, showing only where they part.
fn same_text(a: &str, b: &str, what: &str) {
    if a == b {
        return;
    }
    let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let show = |t: &str| {
        let floor = |mut i: usize| {
            while !t.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let (s, e) = (floor(at.saturating_sub(80)), floor((at + 80).min(t.len())));
        format!("{:?}", &t[s..e])
    };
    panic!(
        "{what}: the texts part at byte {at} (lengths {} and {}):\n  held:      {}\n  reference: {}",
        a.len(),
        b.len(),
        show(a),
        show(b)
    );
}

/// A 300-letter known secret (letters from `first`, every `step`-th of the alphabet): long
/// enough that its redaction shrinks the tail window far below the raw text.
fn long_known(first: u8, step: usize) -> String {
    (0..300)
        .map(|i| char::from(first + (i * step % 26) as u8))
        .collect()
}

#[test]
fn a_secret_cut_by_the_dropped_middle_is_never_shown_in_part() {
    use execkit_protect::MiddleMode;
    // The attacker prints a long known secret over and over (say, `yes "$(cat f)"`): each
    // copy is redacted to a short placeholder, so the redacted tail shrinks far below the
    // raw text and the tail window reaches back to where the drop cut a copy in two.
    let known = long_known(b'A', 7);
    let p = middle_protector(MiddleMode::Hold, &known);
    for lead in (0..200_000).step_by(17_777) {
        for chunk in [1000, 4096, 65_536] {
            let mut text = "a".repeat(40_000) + "\n" + &"b".repeat(lead);
            while text.len() < lead + 1_000_000 {
                text.push_str(&known);
                text.push(' ');
            }
            let out = feed(&p, text.as_bytes(), chunk);
            assert!(out.text.contains("[REDACTED:known-value]"));
            for w in 0..known.len() - 12 {
                assert!(
                    !out.text.contains(&known[w..w + 12]),
                    "lead {lead} chunk {chunk}: a part of the secret is shown"
                );
            }
        }
    }
}

#[test]
fn a_private_key_in_the_middle_is_redacted_however_it_is_spread() {
    use execkit_protect::MiddleMode;
    let p = middle_protector(MiddleMode::Hold, "unused-known-value-123");
    let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKB";
    // Junk fills the head, then a key whose lines are spread with blank lines (which the
    // PEM reader accepts inside a block) far beyond the tail window.
    let mut text = "x".repeat(100_000) + "\n-----BEGIN PRIVATE KEY-----\n";
    for _ in 0..30 {
        text.push_str(body);
        text.push_str(&"\n".repeat(20_000));
    }
    text.push_str("-----END PRIVATE KEY-----\nafter\n");
    let out = feed(&p, text.as_bytes(), 65_536);
    assert!(!out.text.contains(&body[..20]), "a key line was shown");
    assert!(
        out.text.ends_with("after\n"),
        "{}",
        &out.text[out.text.len().saturating_sub(200)..]
    );
}

#[test]
fn a_name_value_pair_in_the_middle_is_redacted_however_it_is_spread() {
    use execkit_protect::MiddleMode;
    let p = middle_protector(MiddleMode::Hold, "unused-known-value-123");
    // Junk fills the head, then a secret's name whose value comes after blank lines (which
    // a pair accepts) far beyond the tail window: the name is in the dropped middle.
    let text = "x".repeat(100_000)
        + "\n      - name: DB_PASSWORD\n"
        + &"\n".repeat(600_000)
        + "        value: pairPwzQ8vN2rT\nafter\n";
    for chunk in [4096, 65_536, 1_000_003] {
        let out = feed(&p, text.as_bytes(), chunk);
        assert!(
            !out.text.contains("pairPw"),
            "chunk {chunk}: the value was shown"
        );
        assert!(out.text.ends_with("after\n"), "chunk {chunk}");
    }
}

/// Runs of empty lines inside an open multi-line secret are taken at once (a flood of
/// newlines after `data:`, taken one line at a time, would cost 25 times plain text); read
/// line by line (one push per line, where no run is seen) each text gives the same output:
/// PEM keys (blank lines dropped with the key), YAML `data:` blocks, pairs, JSON blocks
/// (which a blank line ends), and a listed key whose empty lines lack the listing's prefix.
#[test]
fn runs_of_empty_lines_in_open_secrets_read_as_line_by_line() {
    let r = redactor();
    let texts = [
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n\n\n\nBKcwggSjAgEAAoIBAQC7\n\n\n-----END PRIVATE KEY-----\n\n\nafter\n",
        "-----BEGIN PRIVATE KEY-----\n\n\n\n",
        "data:\n\n\n\n  password: cGFzc3dvcmQxMjM=\n\n\nkind: Secret\n\n\n  token: c2VjcmV0dmFsdWUxMjM0NQ==\n",
        "- name: DB_PASSWORD\n\n\n\n  value: hunter2\n\n\n  value: shown-after-the-pair-closed\n",
        "{\n  \"data\": {\n    \"tls.crt\": \"c2VjcmV0dmFsdWUxMjM0NQ==\",\n\n\n    \"username\": \"YWRtaW4xMjM0NTY3OA==\"\n  }\n}\n",
        "     1\t-----BEGIN PRIVATE KEY-----\n     2\tMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n\n\n     5\tBKcwggSjAgEAAoIBAQC7\n",
        "     1\tdata:\n\n\n     4\t  password: cGFzc3dvcmQxMjM=\n",
    ];
    for text in texts {
        let whole = r.redact_str(text).text;
        let mut s = r.stream();
        let mut by_line = String::new();
        for line in text.split_inclusive('\n') {
            s.push(line, &mut by_line);
        }
        s.finish(&mut by_line);
        assert_eq!(whole, by_line, "{text:?}");
    }
}

#[test]
fn a_drop_never_starts_the_held_text_inside_a_private_key() {
    use execkit_protect::MiddleMode;
    // Closed keys all along the middle, between floods of a long known secret whose
    // redaction shrinks the tail so far that the tail window shows the held text from
    // its very start: were a drop to cut inside a key, its remaining body lines would
    // be read without their header and shown.
    let known = long_known(b'a', 11);
    let p = middle_protector(MiddleMode::Hold, &known);
    let body = |i: usize| format!("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7{i:06}");
    // Cuts land anywhere in the key-flood period (~21 KB, 42% of it inside a key); large
    // chunks make drops the rule (a chunk ending inside a key ends the holding instead).
    for lead in (0..60_000).step_by(2_333) {
        let mut text = "x".repeat(40_000) + "\n" + &"y".repeat(lead) + "\n";
        let mut n = 0;
        while text.len() < lead + 1_500_000 {
            text.push_str("-----BEGIN PRIVATE KEY-----\n");
            for _ in 0..150 {
                text.push_str(&body(n));
                text.push('\n');
                n += 1;
            }
            text.push_str("-----END PRIVATE KEY-----\n");
            for _ in 0..40 {
                text.push_str(&known);
                text.push('\n');
            }
        }
        for chunk in [65_536, 1_000_003] {
            let out = feed(&p, text.as_bytes(), chunk);
            assert!(
                !out.text
                    .contains("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"),
                "lead {lead} chunk {chunk}: a key line is shown"
            );
            assert!(out.text.contains("[REDACTED:private-key]"));
        }
    }
}

#[test]
fn a_flood_of_multi_line_openers_in_the_middle_shows_what_redacting_it_would() {
    use execkit_protect::MiddleMode;
    let known = "k3y-Zq8vN2rT6wLx4pB9";
    let hold = middle_protector(MiddleMode::Hold, known);
    let reference = middle_protector(MiddleMode::Redact, known);
    // Every other line opens a Kubernetes block that the next closes, then one long line
    // of PEM header starts (each a keyword of the opener search, none a whole header),
    // then more blocks: each line is judged once, each block read once.
    let mut text = "x".repeat(40_000) + "\n";
    while text.len() < 1_500_000 {
        text.push_str("data:\nfoo: bar\n");
    }
    text.push_str(&"-----BEGIN ".repeat(100_000));
    text.push('\n');
    while text.len() < 4_000_000 {
        text.push_str(&format!(
            "data:\n  token: {}\nkind: Secret\n",
            "c2VjcmV0LXZhbHVlLWZvcg=="
        ));
    }
    for chunk in [4096, 65_536] {
        let (a, _) = held_and_redacted(&hold, &reference, &text, chunk);
        assert!(
            !a.text.contains("c2VjcmV0LXZhbHVlLWZvcg=="),
            "chunk {chunk}"
        );
    }
}

#[test]
fn a_known_secret_on_many_short_lines_is_never_shown_in_part() {
    use execkit_protect::MiddleMode;
    // The same attack with a line per copy: drops cut at line starts, so no copy is cut.
    let known = long_known(b'a', 11);
    let p = middle_protector(MiddleMode::Hold, &known);
    for lead in (0..100_000).step_by(9_999) {
        for chunk in [777, 65_536] {
            let mut text = "x".repeat(40_000) + "\n" + &"y".repeat(lead);
            while text.len() < lead + 2_000_000 {
                text.push_str(&known);
                text.push('\n');
            }
            let out = feed(&p, text.as_bytes(), chunk);
            for w in 0..known.len() - 12 {
                assert!(
                    !out.text.contains(&known[w..w + 12]),
                    "lead {lead} chunk {chunk}: a part of the secret is shown"
                );
            }
        }
    }
}

#[test]
fn a_preview_shows_protected_complete_lines_and_changes_nothing() {
    use execkit_protect::MiddleMode;
    let known = "k3y-Zq8vN2rT6wLx4pB9";
    let token = "ghp_OO8lK1oKFTHq7BQRKw7ah1WXPs5c42LMSdpR";
    let p = middle_protector(MiddleMode::Hold, known);
    let mut s = p.stream(&Budget::default()).unwrap();
    // Well past the head, so the middle is held back unredacted while the preview is taken.
    let mut fed = String::new();
    for i in 0..20_000 {
        let line = if i % 97 == 7 {
            format!("line {i} token={token} key={known}\n")
        } else {
            format!("line {i} ok\n")
        };
        s.push(line.as_bytes());
        fed.push_str(&line);
    }
    // A line still being written: the start of a secret must not be shown.
    s.push(&token.as_bytes()[..20]);
    let preview = s.preview(4096);
    assert!(
        preview.len() <= 4096 && preview.ends_with('\n'),
        "{preview:?}"
    );
    assert!(
        preview.starts_with("line "),
        "starts at a line start: {preview:?}"
    );
    assert!(
        preview.contains("line 19999 ok\n"),
        "the newest complete line is there"
    );
    assert!(!preview.contains(token) && !preview.contains(known));
    assert!(!preview.contains(&token[..20]), "no partial line");
    assert!(
        preview.contains("[REDACTED"),
        "the held middle was redacted: {preview:?}"
    );
    // Taking previews does not change the stream: it finishes as if none were taken.
    let mut t = p.stream(&Budget::default()).unwrap();
    t.push(fed.as_bytes());
    t.push(&token.as_bytes()[..20]);
    s.push(&token.as_bytes()[20..]);
    t.push(&token.as_bytes()[20..]);
    assert_eq!(s.finish().text, t.finish().text);
    // Nothing but a partial line: nothing to show.
    let mut u = p.stream(&Budget::tail(5)).unwrap();
    u.push(b"no newline yet");
    assert_eq!(u.preview(100), "");
}

#[test]
fn a_preview_never_shows_an_open_private_key() {
    let p = protector(&[]);
    for budget in [Budget::default(), Budget::tail(50)] {
        let mut s = p.stream(&budget).unwrap();
        s.push(b"build ok\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw\n7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFc\n");
        let preview = s.preview(4096);
        assert!(preview.contains("build ok"), "{preview:?}");
        assert!(!preview.contains("MIIEowIBAAKCAQEAu1SU1"), "{preview:?}");
        assert!(!preview.contains("7onLRnrq0"), "{preview:?}");
    }
}

/// A value longer than a window's overlap, on a line longer than a window: redacted the
/// same streamed in 64 KiB chunks as whole (a value that runs to the window's end must not
/// be carried into the next window without its key, and shown whole), its first 4 KB hidden.
#[test]
fn overlong_values_redact_the_same_however_chunked() {
    let r = redactor();
    for (lead, value_len) in [(0, 10_000), (62_000, 10_000), (0, 300_000), (61_500, 3_000)] {
        // Not periodic, so no later part of it equals its head.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let value: String = (0..value_len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"[(x % 57) as usize]
                    as char
            })
            .collect();
        let text = format!("{} password={value} tail\n", "x".repeat(lead));
        let whole = r.redact_str(&text);
        let mut s = r.stream();
        let mut streamed = String::new();
        for chunk in text.as_bytes().chunks(64 * 1024) {
            s.push(std::str::from_utf8(chunk).expect("ASCII"), &mut streamed);
        }
        let counts = s.finish(&mut streamed);
        assert_eq!(streamed, whole.text, "lead {lead}, value {value_len}");
        assert_eq!(counts, whole.counts, "lead {lead}, value {value_len}");
        assert!(whole.counts.values().sum::<u64>() >= 1, "lead {lead}");
        assert!(
            !whole.text.contains(&value[..value_len.min(4000)]),
            "the value's first 4000 bytes show (lead {lead}, value {value_len})"
        );
    }
}

// ---------------------------------------------------------------- the fast path's reference

/// The redactor against its plain reference (`Redactor::redact_reference`: every rule with a
/// keyword on the line runs its patterns over the whole line with the capture engine): the
/// same text and counts. `None` from the reference (a line opening a PEM key or a Kubernetes
/// block) is skipped, and counted.
fn same_as_reference(r: &Redactor, text: &str) -> Result<bool, String> {
    let Some(reference) = r.redact_reference(text) else {
        return Ok(false);
    };
    let fast = r.redact_str(text);
    if fast != reference {
        let (a, b) = (fast.text.as_bytes(), reference.text.as_bytes());
        let at = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let near = |t: &str| {
            let (s, e) = (at.saturating_sub(120), (at + 120).min(t.len()));
            String::from_utf8_lossy(&t.as_bytes()[s..e]).into_owned()
        };
        return Err(format!(
            "input of {} bytes ({} lines) differs at output byte {at}:\n  fast:      ...{:?}... {:?}\n  reference: ...{:?}... {:?}",
            text.len(),
            text.lines().count(),
            near(&fast.text),
            fast.counts,
            near(&reference.text),
            reference.counts
        ));
    }
    Ok(true)
}

/// Every single-line rule example, the value-gate fixtures, the benign build log and the
/// benchmarks' secret-dense lines give what the reference gives.
#[test]
fn the_fast_path_redacts_as_the_plain_reference_on_every_example_and_corpus() {
    let mut known = KnownSecrets::new();
    known.add("hunter2-known-secret-value");
    let r = Redactor::new(&known);
    let set = RuleSet::builtin();
    let mut texts: Vec<String> = set
        .specs()
        .iter()
        .flat_map(|s| s.positives.iter().chain(&s.negatives).cloned())
        .collect();
    texts.extend(CONFIG_SECRETS.lines().map(String::from));
    texts.push(BENIGN.to_string());
    texts.push(secret_dense_lines(4000));
    // Keywords inside a match (the next match starts where this one ends, as the regex
    // iterates, not at the next keyword), and a match running past the window after its
    // keyword into another keyword (searched again over the whole line).
    texts.push("glpat-glpat-abcdefghijklmnopqrstuvwxyz glpat-x glpat-".into());
    texts.push("t=eyJaaaaaaaaaa.eyJbbbbbbbbbb.eyJcccccccccc.eyJdddddddddd.eyJeeeeeeeeee.x".into());
    texts.push(format!(
        "key glpat-{}-glpat-{}\n",
        "a".repeat(4200),
        "b".repeat(30)
    ));
    let (mut compared, mut failures) = (0, Vec::new());
    for t in &texts {
        match same_as_reference(&r, t) {
            Ok(true) => compared += 1,
            Ok(false) => {}
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        compared > texts.len() * 9 / 10,
        "only {compared} of {} compared",
        texts.len()
    );
}

/// Lines the benchmarks' secret-dense corpus is made of, with values varied.
fn secret_dense_lines(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let v: String = (0..40)
            .map(|j| b"AbcDefGhiJklMnoPqrStuVwxYz0123456789"[(i * 7 + j * 13) % 36] as char)
            .collect();
        out.push_str(&match i % 8 {
            0 => format!("AWS_ACCESS_KEY_ID=AKIA{}\n", v[..16].to_ascii_uppercase()),
            1 => format!("password={}\n", &v[..14]),
            2 => format!("Authorization: Bearer {v}\n"),
            3 => format!("token: ghp_{}\n", &v[..36]),
            4 => format!("postgres://app:{}@db:5432/app\n", &v[..16]),
            5 => format!("\"api_key\": \"{}\",\n", &v[..32]),
            6 => format!("xoxb-123456789012-123456789012-{}\n", &v[..24]),
            _ => format!("plain text line number {i} with nothing in it\n"),
        });
    }
    out
}

/// The largest char boundary of `s` at most `at`.
fn floor(s: &str, at: usize) -> usize {
    (0..=at.min(s.len()))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

/// Pieces generated lines are made of: rule examples, key names and operators, fillers
/// long enough to cross the redactor's window after a keyword (4 KiB), and values.
fn line_piece() -> impl Strategy<Value = String> {
    let set = RuleSet::builtin();
    let examples: Vec<String> = set
        .specs()
        .iter()
        .flat_map(|s| s.positives.iter().chain(&s.negatives))
        .filter(|e| !e.contains('\n'))
        .cloned()
        .collect();
    prop_oneof![
        4 => proptest::sample::select(examples),
        2 => proptest::sample::select(vec![
            "password", "token", "api_key", "secret", "AWS_SECRET_ACCESS_KEY", "Bearer",
            "Authorization:", "=", ": ", "=\"", "'", "\"", ",", ";", " ", "export ", "-p",
            "://", "@", "ghp_", "xoxb-", "AKIA", "sk-", "key=", "--password ",
        ]).prop_map(String::from),
        2 => "[A-Za-z0-9+/_.-]{1,60}",
        // Each filler ends with a space: a key name of over 256 bytes (where the
        // redactor's search, 256 bytes before the keyword, starts inside the name) is
        // out of scope, while values running through a filler cross the 4 KiB after.
        1 => (1usize..6000, proptest::sample::select(vec!["a", "a_", " ", "x.y", "0"]))
            .prop_map(|(n, unit)| unit.repeat(n / unit.len() + 1) + " "),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Lines glued from rule examples, key names, operators, values and long fillers are
    /// redacted by the fast path exactly as by the plain reference.
    #[test]
    fn the_fast_path_redacts_generated_lines_as_the_plain_reference(
        lines in proptest::collection::vec(
            proptest::collection::vec(line_piece(), 1..8).prop_map(|l| l.concat()), 1..6)
    ) {
        // A match may end at most 4 KiB after its keyword (the redactor's window; a
        // greedy match cut there is searched again over the whole line, tested with the
        // long values below): longer lines would test that limit, not the fast path.
        let text: String = lines
            .iter()
            .map(|l| l[..floor(l, 4000)].to_string() + "\n")
            .collect();
        let r = redactor();
        if let Err(e) = same_as_reference(&r, &text) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// Two cases of the generated lines, pinned: a value running past the window after its
/// keyword is judged whole (also one the gate turns down where the window's end cuts it),
/// and a `.env` line indented past the 256 bytes searched before a keyword (an anchored
/// rule is searched from the line's start).
#[test]
fn values_cut_by_the_window_and_deeply_indented_env_lines_redact_as_the_reference() {
    let r = redactor();
    let cut = format!("DB_PASS=hunter22{}Authorization:\n", "x.y".repeat(1370));
    let indented = format!(
        "{}MAILGUN_API_KEY=key-3ax6xnjp29jd6fds4gc373sgvjxteol0 -x\n",
        " ".repeat(300)
    );
    // A rule one of whose branches starts at `^` (a Redis ACL line) is searched from the
    // line's start too.
    let acl = format!(
        "{}user worker on >Qwerty!2345 ~jobs:* +@all\n",
        " ".repeat(257)
    );
    for text in [&cut, &indented, &acl] {
        assert_eq!(same_as_reference(&r, text), Ok(true));
    }
    assert_eq!(
        r.redact_str(&acl).counts.get("redis-acl-password"),
        Some(&1)
    );
    assert!(r
        .redact_str(&cut)
        .text
        .starts_with("DB_PASS=[REDACTED:password-assignment]"));
    assert_eq!(
        r.redact_str(&indented).counts.get("dotenv-secret"),
        Some(&1)
    );
}

/// Strips every escape sequence the fixtures use (`ESC [ params letter`), giving the text a
/// terminal shows.
fn without_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            let _ = chars.next(); // '['
            for p in chars.by_ref() {
                if p.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Secrets that span lines, shown through terminal escapes: a colourised key or Secret
/// (`bat`, `yq -C`, `grep --color=always`) puts an escape sequence right before tokens, and
/// the stripper keeps its last letter as a ghost (`ESC[32m` + `MIIE…` keeps the `m`). The
/// PEM and Kubernetes state machines read such lines in both forms: read only as marked, a
/// colourised key body line would be no base64, close the key and let the rest of it
/// through, and a colourised `data` key or value would go unseen. Each case is redacted
/// exactly as the same text without escapes, at every chunk split.
#[test]
fn multi_line_secrets_behind_escapes_are_redacted() {
    let body1 = "MIIEowIBAAKCAQEAxyzSECRETLINEONE1234567890abcdef";
    let body2 = "MIIEowIBAAKCAQEAsecondSECRETLINE1234567890abcd";
    let value = "c2VjcmV0dmFsdWUxMjM0NQ==";
    let g = "\x1b[32m";
    let r = "\x1b[0m";
    let cases = [
        // Every line of a key coloured.
        format!(
            "{g}-----BEGIN RSA PRIVATE KEY-----{r}\n{g}{body1}{r}\n{g}{body2}{r}\n\
             {g}-----END RSA PRIVATE KEY-----{r}\nafter\n"
        ),
        // One body line after a cursor movement.
        format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{body1}\n\x1b[A{body2}\n{body1}\n\
             -----END RSA PRIVATE KEY-----\nafter\n"
        ),
        // The header split by an erase.
        format!(
            "-----BEGIN RSA PRIVATE \x1b[0KKEY-----\n{body1}\n{body2}\n\
             -----END RSA PRIVATE KEY-----\nafter\n"
        ),
        // The footer split: the key ends there, the next line shows.
        format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{body1}\n-----END RSA \x1b[1mPRIVATE KEY-----\n\
             after\n"
        ),
        // A whole key on one line behind a coloured word.
        format!(
            "k: \x1b[1mv{r} -----BEGIN RSA PRIVATE KEY----- {body1} -----END RSA PRIVATE \
             KEY----- tail\nok\n"
        ),
        // A coloured value, a coloured `data` key, an erase before it (YAML).
        format!("kind: Secret\ndata:\n  k1: {g}{value}{r}\n  k2: plainword\nnext: 1\n"),
        format!("kind: Secret\n\x1b[36mdata{r}:\n  k1: {value}\nnext: 1\n"),
        format!("kind: Secret\n\x1b[0Kdata:\n  k1: {value}\n"),
        // JSON.
        format!(
            "{{\n  \"kind\": \"Secret\",\n  \"data\": {{\n    \"k1\": \"{g}{value}{r}\"\n  }}\n}}\nafter\n"
        ),
        format!(
            "{{\n  \"kind\": \"Secret\",\n  \"\x1b[36mdata{r}\": {{\n    \"k1\": \"{value}\"\n  }}\n}}\n"
        ),
    ];
    let p = protector(&[]);
    let b = Budget::default();
    for case in &cases {
        let out = protect_chunks(&p, &b, &[case.as_bytes()]);
        for secret in [body1, body2, value, "SECRETLINE"] {
            assert!(
                !out.text.contains(secret),
                "leaked {secret}: {case:?} -> {:?}",
                out.text
            );
        }
        let plain = protect_chunks(&p, &b, &[without_escapes(case).as_bytes()]);
        assert_eq!(out.text, plain.text, "{case:?}");
        assert_eq!(out.redactions, plain.redactions, "{case:?}");
        for split in 1..case.len() {
            if !case.is_char_boundary(split) {
                continue;
            }
            let (x, y) = case.as_bytes().split_at(split);
            let again = protect_chunks(&p, &b, &[x, y]);
            assert_eq!(again.text, out.text, "split {split} of {case:?}");
        }
    }
    // Colour on text that holds no secret changes nothing but the colour.
    let benign = format!(
        "{g}MIIEowIBAAKCAQEA{r} alone\n{g}config{r}:\n  k1: {g}{value}{r}\n\x1b[1mEND{r} of it\n"
    );
    let out = protect_chunks(&p, &b, &[benign.as_bytes()]);
    assert_eq!(out.text, without_escapes(&benign));
}

/// A coloured key or Secret block: every line (or token) may be wrapped in a colour, with a
/// cursor movement or an erase before it.
fn coloured(line: String, style: u8) -> String {
    match style {
        0 => line,
        1 => format!("\x1b[32m{line}\x1b[0m"),
        2 => format!("\x1b[A{line}"),
        3 => format!("\x1b[0K{line}"),
        _ => match line.split_once(": ") {
            Some((k, v)) => format!("\x1b[36m{k}\x1b[0m: \x1b[1m{v}\x1b[0m"),
            None => format!("\x1b[1m{line}"),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    /// However a key's or a Secret's lines are coloured, none of its secret lines or values
    /// shows, the lines around it show as a terminal would, and the result is the same as
    /// for the text without escapes.
    #[test]
    fn coloured_keys_and_secrets_show_no_secret(
        body in proptest::collection::vec("[A-Za-z0-9+/]{40,64}", 1..6),
        values in proptest::collection::vec("[A-Za-z0-9+/]{16}[A-Z][0-9]==", 1..4),
        styles in proptest::collection::vec(0u8..5, 16),
        json in any::<bool>(),
    ) {
        let style = |i: usize| styles[i % styles.len()];
        let mut lines = vec![coloured("-----BEGIN RSA PRIVATE KEY-----".into(), style(0))];
        lines.extend(body.iter().enumerate().map(|(i, l)| coloured(l.clone(), style(i + 1))));
        lines.push(coloured("-----END RSA PRIVATE KEY-----".into(), style(7)));
        lines.push("between".into());
        if json {
            lines.push("{\n  \"kind\": \"Secret\",".into());
            lines.push(coloured("  \"data\": {".into(), style(8)));
            let n = values.len();
            lines.extend(values.iter().enumerate().map(|(i, v)| {
                let comma = if i + 1 < n { "," } else { "" };
                coloured(format!("    \"k{i}\": \"{v}\"{comma}"), style(i + 9))
            }));
            lines.push("  }\n}".into());
        } else {
            lines.push("kind: Secret".into());
            lines.push(coloured("data:".into(), style(8)));
            lines.extend(
                values.iter().enumerate().map(|(i, v)| coloured(format!("  k{i}: {v}"), style(i + 9))),
            );
        }
        lines.push("after: done".into());
        let text = lines.join("\n") + "\n";
        let p = protector(&[]);
        let out = protect_chunks(&p, &Budget::default(), &[text.as_bytes()]);
        for secret in body.iter().chain(&values) {
            prop_assert!(!out.text.contains(secret.as_str()), "leaked {}: {:?}", secret, out.text);
        }
        prop_assert!(out.text.contains("between\n"), "{:?}", out.text);
        prop_assert!(out.text.ends_with("after: done\n"), "{:?}", out.text);
        let plain = protect_chunks(&p, &Budget::default(), &[without_escapes(&text).as_bytes()]);
        prop_assert_eq!(&out.text, &plain.text);
    }
}

/// The held middle of a long stream finds the openers of multi-line secrets that escapes
/// split (a PEM header erased in the middle, a coloured `data` key) as the redactor does:
/// a long key or Secret that only the tail window shows the end of is redacted whole, as
/// redacting the middle would.
#[test]
fn escaped_openers_in_the_held_middle_are_found() {
    use execkit_protect::MiddleMode;
    let hold = middle_protector(MiddleMode::Hold, "unused-known-value-1234");
    let reference = middle_protector(MiddleMode::Redact, "unused-known-value-1234");
    let filler: String = (0..30_000)
        .map(|i| format!("filler line {i} of the log\n"))
        .collect();
    let pem_body = |i: u64| format!("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ{i:06}");
    let value = |i: u64| format!("c2VjcmV0LXZhbHVlLW{:06}tZm9yLXRoZS1rZXk", i % 1_000_000);
    let key: String = (0..10_000).map(|i| pem_body(i) + "\n").collect();
    let values: String = (0..10_000)
        .map(|i| format!("  k{i}: {}\n", value(i)))
        .collect();
    for (name, text) in [
        (
            "erased header",
            format!(
                "{filler}-----BEGIN PRIVATE \x1b[0KKEY-----\n{key}-----END PRIVATE KEY-----\nend\n"
            ),
        ),
        (
            "coloured key",
            format!(
                "{filler}\x1b[32m-----BEGIN PRIVATE KEY-----\n{}-----END PRIVATE KEY-----\nend\n",
                key.lines()
                    .map(|l| format!("\x1b[32m{l}\x1b[0m\n"))
                    .collect::<String>()
            ),
        ),
        (
            "coloured data key",
            format!("{filler}kind: Secret\n\x1b[36mdata\x1b[0m:\n{values}end: 1\n"),
        ),
    ] {
        for chunk in [4096, 65_536] {
            let (a, _) = held_and_redacted(&hold, &reference, &text, chunk);
            assert!(a.report.truncated, "{name}");
            for secret in [
                "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ",
                "c2VjcmV0LXZhbHVlLW",
            ] {
                assert!(
                    !a.text.contains(secret),
                    "{name}, chunk {chunk}: {secret} shown"
                );
            }
        }
    }
}

/// A listing's name and the prefix it puts before line `i`.
type Prefix = (&'static str, fn(usize) -> String);

/// `lines`, each after its prefix in the listing.
fn listed<'a>(lines: impl IntoIterator<Item = &'a str>, prefix: fn(usize) -> String) -> String {
    lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| format!("{}{l}\n", prefix(i)))
        .collect()
}

/// A PEM key whose lines all carry a prefix (`cat -n`, `nl`, `grep -n`, a quote, a log
/// line's timestamp, `kubectl logs --prefix`) is redacted whole: the key's lines are read
/// after a prefix of the header's shape (read as it is, the first numbered body line would
/// be no base64, close the key, and the rest of it would show). Lines that only look like
/// the prefix end the key as an unprefixed line would.
#[test]
fn a_private_key_with_prefixed_lines_is_redacted_whole() {
    let body: Vec<String> = (0..12)
        .map(|i| format!("MIIEowIBAAKCAQEA{i:02}SECRETBODYLINExyz0123456789abcdefghijklmnopqrstu"))
        .collect();
    let mut key = vec!["-----BEGIN RSA PRIVATE KEY-----".to_string()];
    key.extend(body.iter().cloned());
    key.push("-----END RSA PRIVATE KEY-----".into());
    key.push("after the key".into());
    let prefixes: [Prefix; 7] = [
        ("cat -n", |i| format!("{:>6}\t", i + 1)),
        ("grep -n", |i| format!("{}:", i + 1)),
        ("grep -n -A", |i| {
            format!("{}{}", i + 1, if i == 0 { ':' } else { '-' })
        }),
        ("quote", |_| "> ".to_string()),
        ("log", |i| {
            format!(
                "2024-05-0{} 10:{:02}:00.{} INFO app: ",
                i % 9 + 1,
                i,
                i * 37
            )
        }),
        ("kubectl logs --prefix", |_| {
            "[pod/web-7d4/app] ".to_string()
        }),
        ("git diff", |_| "+".to_string()),
    ];
    let p = protector(&[]);
    for (name, prefix) in prefixes {
        let text = listed(key.iter().map(String::as_str), prefix);
        let out = protect_chunks(&p, &Budget::default(), &[text.as_bytes()]);
        assert!(
            !out.text.contains("SECRETBODYLINE"),
            "{name}: {:?}",
            out.text
        );
        let last = key.len() - 1;
        assert_eq!(
            out.text,
            format!(
                "{}[REDACTED:private-key]\n{}after the key\n",
                prefix(0),
                prefix(last)
            ),
            "{name}"
        );
        for split in 1..text.len() {
            let (x, y) = text.as_bytes().split_at(split);
            let again = protect_chunks(&p, &Budget::default(), &[x, y]);
            assert_eq!(again.text, out.text, "{name}: split {split}");
        }
    }
    // A prefixed line that is no key line ends an unterminated key; what follows shows.
    let text = "3:-----BEGIN RSA PRIVATE KEY-----\n4:MIIEowIBAAKCAQEAxyzSECRETLINE\n\
                5:not a key line\n6:plain words\n";
    let out = protect_chunks(&p, &Budget::default(), &[text.as_bytes()]);
    assert_eq!(
        out.text,
        "3:[REDACTED:private-key]\n5:not a key line\n6:plain words\n"
    );
}

/// A PEM key embedded in a listed file's code (`KEY = """-----BEGIN …`, `key: |` then
/// the header) is redacted whole: after the header's line, which holds the listing's prefix
/// and code, the key's lines carry the listing's prefix alone, so `cat -n` of such a file
/// (as an agent reads code) or `grep -n -A` shows none of the key's body.
#[test]
fn a_private_key_in_listed_code_is_redacted_whole() {
    let body: Vec<String> = (0..6)
        .map(|i| format!("MIIEowIBAAKCAQEA{i:02}SECRETBODYLINExyz0123456789abcdefghijklmnopqrs"))
        .collect();
    let p = protector(&[]);
    let prefixes: [Prefix; 4] = [
        ("cat -n", |i| format!("{:>6}\t", i + 1)),
        ("nl", |i| format!("{:>6}  ", i + 1)),
        ("grep -n -A", |i| {
            format!(
                "app/keys.py{}{}{}",
                if i == 1 { ':' } else { '-' },
                i + 1,
                if i == 1 { ':' } else { '-' }
            )
        }),
        ("grep -n", |i| format!("{}:", i + 1)),
    ];
    for (code, close) in [
        (
            "KEY = \"\"\"-----BEGIN RSA PRIVATE KEY-----",
            "-----END RSA PRIVATE KEY-----\"\"\"",
        ),
        (
            "const key = `-----BEGIN PRIVATE KEY-----",
            "-----END PRIVATE KEY-----`;",
        ),
    ] {
        let mut lines = vec!["import os".to_string(), code.to_string()];
        lines.extend(body.iter().cloned());
        lines.push(close.to_string());
        lines.push("print(KEY)".into());
        let last = lines.len() - 1;
        let opener = &code[..code.find("-----").unwrap_or(0)];
        let closer = &close[close.rfind("-----").map_or(0, |i| i + 5)..];
        for (name, prefix) in prefixes {
            let text = listed(lines.iter().map(String::as_str), prefix);
            let want = format!(
                "{}import os\n{}{opener}[REDACTED:private-key]{closer}\n{}print(KEY)\n",
                prefix(0),
                prefix(1),
                prefix(last)
            );
            let out = protect_chunks(&p, &Budget::default(), &[text.as_bytes()]);
            assert_eq!(out.text, want, "{name}: {code}");
            for split in 1..text.len() {
                let (x, y) = text.as_bytes().split_at(split);
                let again = protect_chunks(&p, &Budget::default(), &[x, y]);
                assert_eq!(again.text, want, "{name}: split {split}");
            }
        }
    }
    // Code after the listing's prefix that is no key line still ends the key.
    let text = "     1\tKEY = '-----BEGIN RSA PRIVATE KEY-----\n     2\tMIIEowIBAAKCAQEAxyzSECRET\n     3\tprint(KEY)\n";
    let out = protect_chunks(&p, &Budget::default(), &[text.as_bytes()]);
    assert_eq!(
        out.text,
        "     1\tKEY = '[REDACTED:private-key]\n     3\tprint(KEY)\n"
    );
}

/// A private key printed as text (`openssl pkey -text -noout`, throwaway keys generated for
/// the fixtures) is redacted from its first private part to the last: RSA's
/// `privateExponent`, primes, exponents and coefficient; EC's `priv`. The public parts
/// before (`modulus`, `publicExponent`) and after (`pub:`, the curve) show, plain and after
/// `cat -n`, however the output is cut.
#[test]
fn a_private_key_printed_as_text_is_redacted_and_its_public_parts_show() {
    let p = protector(&[]);
    let rsa = include_str!("fixtures/openssl-rsa-512-text.txt");
    let ec = include_str!("fixtures/openssl-ec-p256-text.txt");
    let private_lines = |text: &str, from: &str, to: Option<&str>| -> Vec<String> {
        let start = text.find(from).unwrap_or(0);
        let end = to.and_then(|t| text.find(t)).unwrap_or(text.len());
        text[start..end]
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| l.len() > 8)
            .collect()
    };
    for (text, from, to) in [(rsa, "privateExponent:", None), (ec, "priv:", Some("pub:"))] {
        let secret = private_lines(text, from, to);
        assert!(secret.len() >= 2, "{secret:?}");
        let public: Vec<&str> = text[..text.find(from).unwrap_or(0)]
            .lines()
            .chain(
                to.map_or("", |t| &text[text.find(t).unwrap_or(0)..])
                    .lines(),
            )
            .collect();
        let numbered = listed(text.lines(), |i| format!("{:>6}\t", i + 1));
        for shown in [text.to_string(), numbered] {
            let out = protect_chunks(&p, &Budget::default(), &[shown.as_bytes()]);
            for s in &secret {
                assert!(!out.text.contains(s.as_str()), "{s} shown:\n{}", out.text);
            }
            for line in &public {
                assert!(out.text.contains(line), "{line} hidden:\n{}", out.text);
            }
            assert_eq!(out.redactions.get("private-key-text"), Some(&1));
            for split in (1..shown.len()).step_by(7) {
                let (x, y) = shown.as_bytes().split_at(split);
                let again = protect_chunks(&p, &Budget::default(), &[x, y]);
                assert_eq!(again.text, out.text, "split {split}");
            }
        }
    }
}

/// What `cat -A` (`cat -e`, `cat -vE`) shows of a file: `$` at every line's end, `^M$` on
/// a CRLF line.
fn cat_a(text: &str) -> String {
    text.lines()
        .map(|l| match l.strip_suffix('\r') {
            Some(l) => format!("{l}^M$\n"),
            None => format!("{l}$\n"),
        })
        .collect()
}

/// A private key, a Secret manifest and name/value pairs shown by `cat -A` are redacted as
/// the file itself: the mark the header's line ends in is taken off the block's other lines
/// before they are read. Read with the mark, a key's body lines (`MIIE…$`) would be no
/// base64 and would show, no value under `data:$` would be redacted unless its key named a
/// secret, and a pair's header (`- name: DB_PASSWORD$`) would name no secret, so its value
/// would show.
#[test]
fn keys_manifests_and_pairs_shown_by_cat_a_are_redacted_as_the_files() {
    let p = protector(&[]);
    let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVSECRETBODYxH2Mo4lgOEePzNm0tRgeLezV6\n\
               7onLRnrq0SECRETBODYhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFc\n-----END RSA PRIVATE KEY-----\nafter\n";
    let yaml = "apiVersion: v1\ndata:\n  tls.key: LS0tLS1CRUdJTiBQUklWQVRFSECRETBODY0=\n  user: YWRtaW4=\nkind: Secret\n";
    let json = "{\n  \"kind\": \"Secret\",\n  \"data\": {\n    \"tls.key\": \"LS0tLS1CRUdJTiBQUklWQVRFSECRETBODY0=\",\n    \
                \"user\": \"YWRtaW4=\"\n  },\n  \"type\": \"Opaque\"\n}\n";
    let env = "env:\n- name: DB_PASSWORD\n  value: Xk29SECRETBODYq8Zm\n- name: LOG_LEVEL\n  value: debug\n";
    let pairs = "[\n  {\n    \"name\": \"STRIPE_SECRET_KEY\",\n    \"value\": \"Xk29SECRETBODYq8ZmP3\"\n  }\n]\n";
    // Block scalars: a Secret's entry, a secret's key, a pair's value.
    let scalars = "stringData:\n  app.conf: |\n    Xk29SECRETBODYq8Zm\nkind: Secret\napi_token: >-\n  Qz7SECRETBODYp2Lw9\nenv:\n- name: DB_PASSWORD\n  value: |\n    Rt5SECRETBODYm3Kx8\n- name: MODE\n";
    for (name, file) in [
        ("key", key),
        ("yaml", yaml),
        ("json", json),
        ("env pairs", env),
        ("json pairs", pairs),
        ("scalar pairs", scalars),
    ] {
        let crlf = file.replace('\n', "\r\n");
        for shown in [cat_a(file), cat_a(&crlf)] {
            let out = protect_chunks(&p, &Budget::default(), &[shown.as_bytes()]);
            for secret in ["SECRETBODY", "YWRtaW4"] {
                assert!(
                    !out.text.contains(secret),
                    "{name}: {secret} shown:\n{}",
                    out.text
                );
            }
            // A pair's value is judged without the mark, which still ends its line; the
            // same under `cat -n -A`'s numbers.
            if name.ends_with("pairs") {
                for line in out.text.lines() {
                    assert!(line.ends_with('$'), "{name}: mark lost in {line:?}");
                }
                let numbered: String = shown
                    .lines()
                    .enumerate()
                    .map(|(i, l)| format!("{:>6}\t{l}\n", i + 1))
                    .collect();
                let out = protect_chunks(&p, &Budget::default(), &[numbered.as_bytes()]);
                assert!(
                    !out.text.contains("SECRETBODY"),
                    "{name} numbered: shown:\n{}",
                    out.text
                );
            }
            // What is not secret shows as `cat -A` printed it.
            for line in shown.lines().filter(|l| {
                !l.contains("SECRETBODY") && !l.contains("YWRtaW4") && !l.contains("PRIVATE KEY")
            }) {
                assert!(
                    out.text.contains(line),
                    "{name}: {line:?} lost:\n{}",
                    out.text
                );
            }
            for split in 1..shown.len() {
                let (x, y) = shown.as_bytes().split_at(split);
                let again = protect_chunks(&p, &Budget::default(), &[x, y]);
                assert_eq!(again.text, out.text, "{name}: split {split}");
            }
        }
    }
}

/// A Secret manifest listed with a prefix on every line (`cat -n`, `grep -n -A`, a quote)
/// is redacted line for line as the manifest itself: the block's header is found after the
/// prefix, and its lines are read after a prefix of the header's shape (otherwise no value
/// under `data:` would be redacted unless its key looked like a secret's name); in the held
/// middle of a long stream the prefixed header is an opener too.
#[test]
fn a_secret_manifest_with_prefixed_lines_is_redacted_as_the_manifest() {
    let yaml =
        "apiVersion: v1\nkind: Secret\ndata:\n  tls.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n  \
                .dockerconfigjson: eyJhdXRocyI6eyJyZWdpc3RyeSI6e319fQ==\n  username: YWRtaW4=\n\
                type: Opaque\nmetadata:\n  name: registry\n";
    let json = "{\n  \"kind\": \"Secret\",\n  \"data\": {\n    \"tls.key\": \"LS0tLS1CRUdJTiBQUklWQVRF\",\n    \
                \"user\": \"YWRtaW4=\"\n  },\n  \"type\": \"Opaque\"\n}\n";
    let p = protector(&[]);
    let prefixes: [Prefix; 3] = [
        ("cat -n", |i| format!("{:>6}\t", i + 1)),
        ("grep -n -A", |i| {
            format!("{}{}", i + 1, if i == 2 { ':' } else { '-' })
        }),
        ("quote", |_| "> ".to_string()),
    ];
    for manifest in [yaml, json] {
        let plain = protect_chunks(&p, &Budget::default(), &[manifest.as_bytes()]);
        assert!(
            plain.redactions["kubernetes-secret-data"] >= 2,
            "{}",
            plain.text
        );
        for (name, prefix) in prefixes {
            let text = listed(manifest.lines(), prefix);
            let out = protect_chunks(&p, &Budget::default(), &[text.as_bytes()]);
            let expected = listed(plain.text.lines(), prefix);
            assert_eq!(out.text, expected, "{name}");
            for split in (1..text.len()).step_by(7) {
                let (x, y) = text.as_bytes().split_at(split);
                let again = protect_chunks(&p, &Budget::default(), &[x, y]);
                assert_eq!(again.text, out.text, "{name}: split {split}");
            }
        }
    }
    // The held middle: a long listed Secret whose end only the tail window shows.
    use execkit_protect::MiddleMode;
    let hold = middle_protector(MiddleMode::Hold, "unused-known-value-1234");
    let reference = middle_protector(MiddleMode::Redact, "unused-known-value-1234");
    let mut text: String = (0..30_000)
        .map(|i| format!("filler line {i} of the log\n"))
        .collect();
    text.push_str("kind: Secret\ndata:\n");
    for i in 0..10_000 {
        text.push_str(&format!(
            "  k{i}: c2VjcmV0LXZhbHVlLW{i:06}tZm9yLXRoZS1rZXk\n"
        ));
    }
    text.push_str("type: Opaque\n");
    let text = listed(text.lines(), |i| format!("{:>6}\t", i + 1));
    let (a, _) = held_and_redacted(&hold, &reference, &text, 65_536);
    assert!(a.report.truncated);
    assert!(
        !a.text.contains("c2VjcmV0LXZhbHVlLW"),
        "shown from the held middle"
    );
}

/// After a key without a footer, the next line shows on its own line even when it starts
/// with a secret: the newline given back to it must not go into that secret's redaction,
/// which would show the two lines as one.
#[test]
fn the_line_after_a_key_without_footer_keeps_its_newline() {
    let p = protector(&["hunter2-known-secret-value"]);
    for (next, shown) in [
        (
            "ghp_0123456789abcdefghijABCDEFGHIJ012345 rest",
            "[REDACTED:github-pat] rest",
        ),
        (
            "hunter2-known-secret-value and more",
            "[REDACTED:known-value] and more",
        ),
        (
            "\x1b[1mghp_0123456789abcdefghijABCDEFGHIJ012345\x1b[0m rest",
            "[REDACTED:github-pat] rest",
        ),
        ("plain words", "plain words"),
    ] {
        let text = format!(
            "before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAxyzSECRET1234567890\n{next}\nlast\n"
        );
        let out = protect_chunks(&p, &Budget::default(), &[text.as_bytes()]);
        assert_eq!(
            out.text,
            format!("before\n[REDACTED:private-key]\n{shown}\nlast\n"),
            "{next:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    /// Any rule's positive with colour, erase or cursor-up sequences put anywhere in it
    /// (inside the secret too) shows none of the secret that the text a terminal shows for
    /// it hides: the stripper removes them and keeps a letter that may start a token as a
    /// ghost, which the redactor reads both ways. (Sequences put inside one another leave
    /// text a terminal shows, `[1m`; then the shown text is the reference.)
    #[test]
    fn escapes_anywhere_in_a_positive_hide_no_secret(
        pick in any::<prop::sample::Index>(),
        escapes in proptest::collection::vec(
            (any::<prop::sample::Index>(),
             proptest::sample::select(vec!["\x1b[1m", "\x1b[32m", "\x1b[0m", "\x1b[0K", "\x1b[A", "\x1b[38;5;208m"])),
            1..3),
    ) {
        let set = RuleSet::builtin();
        let positives: Vec<(&str, &str)> = set
            .specs()
            .iter()
            .filter(|s| s.special.is_none())
            .flat_map(|s| s.positives.iter().map(move |p| (s.id.as_str(), p.as_str())))
            .filter(|(_, p)| !p.contains('\n'))
            .collect();
        let (id, plain) = positives[pick.index(positives.len())];
        let Some(secret) = secret_of(set, id, plain) else { return Ok(()) };
        prop_assume!(secret.len() >= 8);
        let mut text = plain.to_string();
        for (at, esc) in &escapes {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            text.insert_str(i, esc);
        }
        let p = protector(&[]);
        let shown = execkit_protect::remove_ghosts(&execkit_protect::strip_ansi(text.as_bytes()));
        let clean = protect_chunks(&p, &Budget::default(), &[format!("{shown}\n").as_bytes()]);
        prop_assume!(!clean.text.contains(&secret));
        let out = protect_chunks(&p, &Budget::default(), &[format!("{text}\n").as_bytes()]);
        prop_assert!(!out.text.contains(&secret), "{}: {:?} -> {:?}", id, text, out.text);
    }
}

/// A line that opens both a key and a Kubernetes block (a header followed by `data:`)
/// opens the key only. Were both open, the block would outlive the key and chunk borders
/// would decide whether the lines after the key are read as its entries (as `redact_chunks`
/// shows with 225 bytes of invalid UTF-8 before the header).
#[test]
fn a_line_that_opens_a_key_and_a_secret_block_opens_the_key() {
    let p = protector(&[]);
    for lead in ["", "x", &"\u{FFFD}".repeat(75)] {
        let text = format!(
            "{lead}m-----BEGIN RSA PRIVATE KEY-----data:\n:\n :c10m\n  k: c2VjcmV0dmFsdWUxMjM0NQ==\n"
        );
        let whole = protect_chunks(&p, &Budget::default(), &[text.as_bytes()]);
        assert_eq!(
            whole.text,
            format!("{lead}m[REDACTED:private-key]\n:\n :c10m\n  k: c2VjcmV0dmFsdWUxMjM0NQ==\n"),
            "{lead:?}"
        );
        for cut in 1..text.len() {
            if !text.is_char_boundary(cut) {
                continue;
            }
            let (x, y) = text.as_bytes().split_at(cut);
            let again = protect_chunks(&p, &Budget::default(), &[x, y]);
            assert_eq!(again.text, whole.text, "{lead:?}: cut {cut}");
        }
    }
}
