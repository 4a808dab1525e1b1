//! # execkit-engine: decisions
//!
//! Turns the command IR from [`execkit_grammar`] into one Cedar request per *fact* — each
//! program run (`exec`), path argument (`path_arg`), redirect target (`write_path`,
//! `read_path`), `cd` target (`chdir`) and network destination (`connect`) — and combines
//! the answers: the command is allowed only if every request is allowed with no evaluation
//! errors. A permit carrying `@ask` turns an allow into [`Verdict::Ask`].
//!
//! ```
//! use execkit_engine::{DecisionEnv, Engine, PolicyBundle, Verdict};
//!
//! let bundle = PolicyBundle {
//!     schema: ("execkit.cedarschema".into(), execkit_policies::SCHEMA.into()),
//!     policies: vec![("p.cedar".into(), r#"
//!         @id("allow-ls") permit(principal, action == Action::"exec", resource == Program::"ls");
//!         @id("paths") permit(principal, action == Action::"path_arg", resource);
//!     "#.into())],
//!     entities: "[]".into(),
//!     links: None,
//! };
//! let engine = Engine::new(&bundle).unwrap();
//! let env = DecisionEnv::local("/work", "/home/me");
//! assert_eq!(engine.decide("ls -la src", &env).verdict, Verdict::Allow);
//! let d = engine.decide("rm -rf src", &env);
//! assert_eq!(d.verdict, Verdict::Deny);
//! assert_eq!(d.facts[0].reason, "no policy permits this (default deny)");
//! ```

#![warn(missing_docs)]

mod bounded_table;
pub mod cases;
mod catalog;
mod compiled;
mod configured;
mod connection;
mod context;
mod context_values;
mod decision;
mod engine;
mod entity_table;
mod env_names;
mod env_parts;
mod error;
mod facts;
mod fast_hash;
mod fold;
mod links;
mod load;
mod memo;
mod network;
mod new_entities;
mod path_groups;
mod path_var;
pub mod policy_dir;
mod quick_eval;
mod resource_text;
mod shapes;
pub mod signals;
mod store_table;
mod structure_table;

pub use connection::{AddressClass, Connection};
pub use context::{DecisionEnv, Identity, OpenTarget, Target, Transport, UnknownTransport};
pub use decision::{Decision, Effect, FactDecision, PolicyHit, Verdict};
pub use engine::{
    DecisionPath, Engine, LiteralCommand, LiveQueries, Prepared, ScriptLimits, MAX_FACTS,
};
pub use error::LoadError;
pub use facts::Action;
pub use load::PolicyBundle;
pub use memo::DecisionMemo;
pub use network::Destination;

/// Every network destination a command names, and those its options and environment
/// configure (proxies, resolution overrides, jump hosts, registries, DNS servers), each
/// once: what the `connect` facts are made of.
pub fn destinations(
    cmd: &execkit_grammar::Command,
    k: &execkit_grammar::knowledge::Catalog,
) -> Vec<Destination> {
    network::destinations(cmd, k, configured::destinations(cmd, k))
}
