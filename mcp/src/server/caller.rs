//! Who is calling, for every request: the identity of a verified bearer token on HTTP, the
//! operator's configured identity on stdio (one client: the operator's own).
//!
//! The HTTP layer puts a [`TokenIdentity`] into the request's extensions after validating
//! the token; rmcp hands the request's `http::request::Parts` to the handler, and the
//! handler runs each request inside [`Caller::scope`]. Everything that finds a session goes
//! through [`Caller::current`], so a session belongs to the identity that created it:
//! another identity cannot list, use, watch or destroy it (it is "unknown" to them).
//! Outside a request's scope the caller is [`Caller::Nobody`], who owns nothing.

use execkit_engine::Identity;

/// The identity a verified bearer token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    /// The token's subject: the Cedar principal `Agent::"…"` and the owner of sessions.
    pub subject: String,
    /// The groups the token's group claim names (the principal's parents in Cedar).
    pub groups: Vec<String>,
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The stdio client: the operator's configured identity.
    Operator,
    /// An HTTP client with a verified token.
    Token(TokenIdentity),
    /// No request (or an HTTP request that carried no verified identity): owns nothing,
    /// may do nothing.
    Nobody,
}

tokio::task_local! {
    static CALLER: Caller;
}

impl Caller {
    /// The caller of the request whose extensions these are, on a server serving stdio
    /// (`over_http` false) or HTTP. Over HTTP a request without a verified identity is
    /// nobody's, whatever path it took (it never reaches a tool in practice: the layer
    /// refuses it); the operator's identity belongs to the stdio client only.
    pub fn of(extensions: &rmcp::model::Extensions, over_http: bool) -> Caller {
        let token = extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<TokenIdentity>().cloned());
        match (token, over_http) {
            (Some(t), true) => Caller::Token(t),
            (_, true) => Caller::Nobody,
            (_, false) => Caller::Operator,
        }
    }

    /// Runs `f` as this caller.
    pub async fn scope<F: std::future::Future>(self, f: F) -> F::Output {
        CALLER.scope(self, f).await
    }

    /// The caller of the request being served.
    pub fn current() -> Caller {
        CALLER.try_with(Clone::clone).unwrap_or(Caller::Nobody)
    }

    /// The owner its sessions are recorded under: `None` for the stdio client.
    pub fn owner(&self) -> Option<&str> {
        match self {
            Caller::Token(t) => Some(&t.subject),
            Caller::Operator | Caller::Nobody => None,
        }
    }

    /// Whether it may use a session created by `owner`.
    pub fn owns(&self, owner: Option<&str>) -> bool {
        match self {
            Caller::Nobody => false,
            _ => self.owner() == owner,
        }
    }

    /// The identity its commands are decided with: the token's subject and groups as the
    /// principal, the operator's accountable human and agent kind.
    pub fn identity(&self, configured: Identity) -> Identity {
        match self {
            Caller::Token(t) => Identity {
                agent: t.subject.clone(),
                groups: t.groups.clone(),
                ..configured
            },
            Caller::Operator => configured,
            Caller::Nobody => Identity {
                agent: String::new(),
                groups: Vec::new(),
                ..configured
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(s: &str) -> Caller {
        Caller::Token(TokenIdentity {
            subject: s.into(),
            groups: vec!["oncall".into()],
        })
    }

    #[test]
    fn each_caller_owns_only_its_own_sessions() {
        assert!(token("alice").owns(Some("alice")));
        assert!(!token("alice").owns(Some("bob")));
        assert!(!token("alice").owns(None), "not the stdio client's");
        assert!(Caller::Operator.owns(None));
        assert!(!Caller::Operator.owns(Some("alice")));
        assert!(!Caller::Nobody.owns(None));
        assert!(!Caller::Nobody.owns(Some("")));
    }

    #[test]
    fn a_token_is_the_principal_and_its_groups() {
        let id = token("alice").identity(Identity::default());
        assert_eq!(id.agent, "alice");
        assert_eq!(id.groups, vec!["oncall".to_string()]);
        assert_eq!(id.operator, Identity::default().operator);
    }

    #[test]
    fn over_http_a_request_without_a_token_is_nobody_s() {
        let none = rmcp::model::Extensions::default();
        assert_eq!(Caller::of(&none, true), Caller::Nobody);
        assert_eq!(Caller::of(&none, false), Caller::Operator);
    }

    #[tokio::test]
    async fn outside_a_request_the_caller_is_nobody() {
        assert_eq!(Caller::current(), Caller::Nobody);
        let inside = token("alice").scope(async { Caller::current() }).await;
        assert_eq!(inside, token("alice"));
    }
}
