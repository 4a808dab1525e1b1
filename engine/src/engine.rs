//! The decision engine: facts → Cedar requests → one verdict.
//!
//! Cedar skips a policy whose evaluation errors, so an erroring `forbid` would fail open.
//! Here any evaluation error on any request denies the whole command, every entity a policy
//! can reach is created for the request, and the policy set is strict-validated at load.
//!
//! Performance: on the fast path contexts are built from Cedar values directly (no JSON, no
//! evaluation; see [`crate::context_values`]), the records every fact of a command shares
//! are built once, and each request
//! is evaluated only against the policies whose action and resource scope can match it —
//! a resource-scoped policy (`resource == Program::"x"`, `resource in ProgramGroup::"g"`) is
//! only considered when the resource is that entity or below it. The subset policy sets are
//! cached, so thousands of resource-scoped policies cost little per decision.

use crate::context::DecisionEnv;
use crate::context_values::{ContextBuildError, ContextValues, Direct, Restricted};
use crate::decision::{Decision, FactDecision, PolicyHit, Verdict};
use crate::error::LoadError;
use crate::facts::{self, Action, Fact, Target};
use crate::fast_hash::{FastMap, FastSet};
use crate::load::{self, Loaded, PolicyBundle, PolicyInfo, PolicySource};
use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Effect, Entities, Entity, EntityId,
    EntityTypeName, EntityUid, PolicyId, PolicySet, Request, RestrictedExpression,
};
use execkit_grammar::knowledge::{Catalog, Trait};
use execkit_grammar::{ancestors, parse, Command, ParseOptions, PathRef, Structure};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, RwLock};

const CACHE_LIMIT: usize = 4096;
/// Facts one decision judges at most by default (see [`ScriptLimits::max_facts`]).
pub const MAX_FACTS: usize = 16_384;

/// How much of a script one decision reads and judges. Each bounds work an agent could
/// otherwise make a decision do (seconds of CPU and gigabytes per command);
/// a script past any of them is denied with the reason. Set by the operator
/// ([`Engine::set_script_limits`]), never by the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptLimits {
    /// Longest script, in bytes.
    pub max_bytes: usize,
    /// Most commands, those of payloads and wrapped commands included.
    pub max_commands: usize,
    /// Most tree-sitter progress steps (about a hundred parser operations each) spent
    /// reading the script and its payloads.
    pub max_parse_steps: usize,
    /// Most facts (Cedar requests): programs, paths, hosts, per cwd a command may run in.
    pub max_facts: usize,
}

impl Default for ScriptLimits {
    /// The parser's defaults ([`ParseOptions::new`]) and [`MAX_FACTS`].
    fn default() -> Self {
        let p = ParseOptions::new(None, "/");
        ScriptLimits {
            max_bytes: p.max_len,
            max_commands: p.max_commands,
            max_parse_steps: p.max_parse_steps,
            max_facts: MAX_FACTS,
        }
    }
}

impl ScriptLimits {
    fn parse_options(&self, env: &DecisionEnv) -> ParseOptions {
        ParseOptions {
            max_len: self.max_bytes,
            max_commands: self.max_commands,
            max_parse_steps: self.max_parse_steps,
            known: env.known.clone(),
            ..ParseOptions::new(env.cwd.as_deref(), &env.home)
        }
    }
}

/// Policy indices for one action: those without a resource key, and those keyed by the
/// entity their resource scope names.
type Partition = (Vec<usize>, FastMap<EntityUid, Vec<usize>>);

/// An entity a request adds to its environment's store.
enum Extra {
    /// Built for this request.
    Own(Entity),
    /// Remembered in an entity table (its uid, and the entity).
    Built(EntityUid, Arc<crate::entity_table::BuiltEntity>),
}

impl Extra {
    /// The uid, and which remembered entity this is (see [`crate::store_table`]).
    fn member(&self) -> crate::store_table::Member {
        match self {
            Extra::Own(e) => (e.uid(), 0),
            Extra::Built(u, b) => (u.clone(), Arc::as_ptr(b) as usize),
        }
    }

    /// The entities themselves (remembered ones cloned).
    fn entities(extra: Vec<Extra>) -> Vec<Entity> {
        extra
            .into_iter()
            .filter_map(|x| match x {
                Extra::Own(e) => Some(e),
                Extra::Built(_, b) => b.entity.clone(),
            })
            .collect()
    }
}

/// The parts of one Cedar request, and its shape (see [`crate::shapes`]).
type RequestParts = (EntityUid, EntityUid, EntityUid, Context, u64);

/// A simple command of a script with every word literal (see [`Engine::literal_commands`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralCommand {
    /// Its words, `argv[0]` as written.
    pub argv: Vec<String>,
    /// The directories it may run in; empty when not known.
    pub cwds: Vec<String>,
}

/// A command parsed once (see [`Engine::prepare`]).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The parsed script, or why it did not parse.
    script: Result<execkit_grammar::Script, String>,
}

impl Prepared {
    /// The aliases and functions the command defines (for a session to know in its later
    /// commands); none when it did not parse.
    pub fn definitions(&self) -> execkit_grammar::Definitions {
        self.script
            .as_ref()
            .map(|s| s.definitions.clone())
            .unwrap_or_default()
    }
}

/// What a live session looks up before a decision ([`Engine::live_queries`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveQueries {
    /// Absolute lexical paths (and their directories) to resolve through symlinks.
    pub paths: Vec<String>,
    /// Program names (not builtins) to resolve through the shell's PATH.
    pub programs: Vec<String>,
    /// Workspace directories the command's own `PATH=DIR:$PATH` assignments add: to be
    /// searched before the shell's PATH.
    pub path_dirs: Vec<String>,
}

/// `script` with each program the session's PATH resolves elsewhere named by its file.
fn with_real_programs(
    script: &execkit_grammar::Script,
    real: &std::collections::BTreeMap<String, String>,
) -> execkit_grammar::Script {
    let mut s = script.clone();
    for c in &mut s.commands {
        if let execkit_grammar::Program::Literal(n) = &c.program {
            if let Some(p) = real.get(n) {
                c.program = execkit_grammar::Program::Path(p.clone());
            }
        }
    }
    s
}

/// A loaded, validated policy set ready to decide.
pub struct Engine {
    loaded: Loaded,
    /// Program knowledge shared with the grammar (builtins, recursive readers, ...).
    knowledge: &'static Catalog,
    /// Per action: indices of policies without a resource key, and keyed ones.
    partition: FastMap<Action, Partition>,
    cache: RwLock<HashMap<Vec<usize>, Arc<PolicySet>>>,
    authorizer: Authorizer,
    /// The policies with their conditions prebuilt (the fast path's evaluator).
    compiled: Option<crate::compiled::Compiled>,
    by_id: FastMap<PolicyId, usize>,
    types: Types,
    path: DecisionPath,
    /// Request shapes already validated against the schema.
    shapes: crate::shapes::Shapes,
    /// The last environments' entities and records (fast path).
    env_parts: crate::env_parts::EnvCache,
    /// Program entities built so far (fast path).
    programs: crate::entity_table::EntityTable,
    /// Path entities built so far, per home (fast path).
    paths: crate::entity_table::EntityTable,
    /// Path-group patterns compiled per home directory.
    path_groups: crate::path_groups::PathGroups,
    /// Structure records built so far (fast path).
    structure_records: crate::structure_table::StructureTable,
    /// Request stores built so far (fast path).
    stores: crate::store_table::StoreTable,
    memo_limit: crate::memo::DecisionMemo,
    memo: crate::memo::Memo,
    /// How much of a script one decision reads and judges.
    limits: ScriptLimits,
    /// Also record which policies each request satisfies (for `policy test` coverage).
    coverage: bool,
}

/// Which decision path the engine takes. Both give the same decisions (a differential test
/// compares them on every case file and on fuzzed commands); the reference path is the
/// straightforward one the fast path is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecisionPath {
    /// Every request validated against the schema, path groups computed from the raw
    /// patterns for each path.
    Reference,
    /// Each request shape validated once (see `shapes`), path-group patterns compiled once
    /// per home.
    #[default]
    Fast,
}

struct Types {
    agent: EntityTypeName,
    operator: EntityTypeName,
    group: EntityTypeName,
    program: EntityTypeName,
    program_group: EntityTypeName,
    path: EntityTypeName,
    path_group: EntityTypeName,
    host: EntityTypeName,
    host_group: EntityTypeName,
    transport: EntityTypeName,
    session_target: EntityTypeName,
    target_group: EntityTypeName,
}

fn tn(s: &str) -> EntityTypeName {
    EntityTypeName::from_str(s).unwrap_or_else(|_| unreachable!("fixed type names parse"))
}

fn uid(t: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(t.clone(), EntityId::new(id))
}

fn s(v: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(v.to_string())
}

fn b(v: bool) -> RestrictedExpression {
    RestrictedExpression::new_bool(v)
}

/// The Cedar id of a path fact's resource.
pub(crate) fn path_id(p: &PathRef) -> std::borrow::Cow<'_, str> {
    match p {
        PathRef::Exact(p) => p.into(),
        PathRef::Under(d) if d == "/" => "/*".into(),
        PathRef::Under(d) => format!("{d}/*").into(),
        PathRef::Anywhere => "*".into(),
    }
}

impl Engine {
    /// Loads and strict-validates a policy set. Refuses any set with a validation error.
    pub fn new(bundle: &PolicyBundle) -> Result<Self, LoadError> {
        let bundle = strip_agents(bundle)?;
        let loaded = load::load(&bundle)?;
        let mut partition: FastMap<Action, Partition> = FastMap::default();
        let mut by_id = FastMap::default();
        for (i, p) in loaded.policies.iter().enumerate() {
            by_id.insert(p.id.clone(), i);
            for a in &p.actions {
                let e = partition.entry(*a).or_default();
                match &p.resource_key {
                    None => e.0.push(i),
                    Some(k) => e.1.entry(k.clone()).or_default().push(i),
                }
            }
        }
        let types = Types {
            agent: tn("Agent"),
            operator: tn("Operator"),
            group: tn("Group"),
            program: tn("Program"),
            program_group: tn("ProgramGroup"),
            path: tn("Path"),
            path_group: tn("PathGroup"),
            host: tn("Host"),
            host_group: tn("HostGroup"),
            transport: tn("Transport"),
            session_target: tn("SessionTarget"),
            target_group: tn("TargetGroup"),
        };
        let compiled = crate::compiled::Compiled::new(
            &loaded.full,
            loaded.policies.iter().map(|p| &p.id),
            &loaded.entities,
        );
        Ok(Engine {
            compiled,
            loaded,
            knowledge: execkit_grammar::knowledge::catalog()?,
            partition,
            cache: RwLock::new(HashMap::new()),
            authorizer: Authorizer::new(),
            by_id,
            types,
            path: DecisionPath::default(),
            shapes: crate::shapes::Shapes::default(),
            env_parts: crate::env_parts::EnvCache::default(),
            programs: crate::entity_table::EntityTable::default(),
            paths: crate::entity_table::EntityTable::default(),
            path_groups: crate::path_groups::PathGroups::default(),
            structure_records: crate::structure_table::StructureTable::default(),
            stores: crate::store_table::StoreTable::default(),
            memo_limit: crate::memo::DecisionMemo::default(),
            memo: crate::memo::Memo::default(),
            limits: ScriptLimits::default(),
            coverage: false,
        })
    }

    /// The embedded `default` policy set (a coding agent in its workspace), loaded and
    /// strict-validated.
    ///
    /// ```
    /// use execkit_engine::{DecisionEnv, Engine, Verdict};
    /// let engine = Engine::default_set().unwrap();
    /// let env = DecisionEnv::local("/work", "/home/me");
    /// assert_eq!(engine.decide("ls -la src", &env).verdict, Verdict::Allow);
    /// assert_eq!(engine.decide("rm -rf ~/.ssh", &env).verdict, Verdict::Deny);
    /// ```
    pub fn default_set() -> Result<Self, LoadError> {
        Engine::embedded("default")
    }

    /// An embedded shipped set by name (`default`, `strict`).
    pub fn embedded(name: &str) -> Result<Self, LoadError> {
        Engine::new(&crate::policy_dir::embedded(name)?.bundle)
    }

    /// Loads a policy directory (`*.cedar`, `entities.json`, optional `*.cedarschema` and
    /// `links.json`; see [`crate::policy_dir`]) and strict-validates it.
    pub fn from_dir(dir: impl AsRef<std::path::Path>) -> Result<Self, LoadError> {
        Engine::new(&crate::policy_dir::from_dir(dir.as_ref())?.bundle)
    }

    /// How much of a script a decision reads and judges (operator configuration; the
    /// defaults are [`ScriptLimits::default`]). Forgets remembered decisions, which were
    /// made under the old limits.
    pub fn set_script_limits(&mut self, limits: ScriptLimits) {
        self.limits = limits;
        self.memo = crate::memo::Memo::default();
    }

    /// The limits decisions are made under.
    pub fn script_limits(&self) -> ScriptLimits {
        self.limits
    }

    /// How many decisions the fast path remembers (see [`crate::DecisionMemo`]; the
    /// reference path remembers none).
    pub fn set_memo(&mut self, memo: crate::memo::DecisionMemo) {
        self.memo_limit = memo;
    }

    /// Records in every fact which policies its request satisfies
    /// ([`FactDecision::satisfied`]): the scope matches and the conditions hold, whether
    /// or not the policy determined the verdict. Costs two more evaluations per request;
    /// meant for coverage reports over case files, not for sessions.
    pub fn set_coverage(&mut self, on: bool) {
        self.coverage = on;
    }

    /// Chooses the decision path (default: [`DecisionPath::Fast`]).
    pub fn set_decision_path(&mut self, path: DecisionPath) {
        self.path = path;
    }

    /// Path groups of `path` for this engine's decision path.
    fn path_groups_for(
        &self,
        home: &str,
        path: Option<&str>,
        under: bool,
    ) -> (BTreeSet<String>, BTreeSet<String>) {
        match self.path {
            DecisionPath::Reference => self.loaded.catalog.path_groups_for(home, path, under),
            DecisionPath::Fast => {
                self.path_groups
                    .groups_for(&self.loaded.catalog, home, path, under)
            }
        }
    }

    /// Number of policies (static and template-linked).
    pub fn policy_count(&self) -> usize {
        self.loaded.policies.len()
    }

    /// Ids of all policies, sorted.
    pub fn policy_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .loaded
            .policies
            .iter()
            .map(|p| p.id.to_string())
            .collect();
        v.sort();
        v
    }

    /// The full validated policy set.
    pub fn policy_set(&self) -> &PolicySet {
        &self.loaded.full
    }

    /// The schema.
    pub fn schema(&self) -> &cedar_policy::Schema {
        &self.loaded.schema
    }

    /// Parses `command` and authorizes every fact it contains.
    ///
    /// Fails closed: a parse error, an evaluation error or a missing permit denies.
    pub fn decide(&self, command: &str, env: &DecisionEnv) -> Decision {
        self.memoized(command, env, || self.decide_fresh(command, env))
    }

    /// The memo's decision on `command` in `env` where it has one (on the fast path), else
    /// `fresh()`'s, then remembered.
    fn memoized(
        &self,
        command: &str,
        env: &DecisionEnv,
        fresh: impl FnOnce() -> Decision,
    ) -> Decision {
        let limit = match (self.path, self.memo_limit) {
            (DecisionPath::Fast, crate::memo::DecisionMemo::Entries(n)) => n,
            _ => 0,
        };
        if limit > 0 {
            if let Some(d) = self.memo.get(command, env) {
                return d;
            }
        }
        let d = fresh();
        if limit > 0 {
            self.memo.put(command, env, &d, limit);
        }
        d
    }

    /// [`Engine::decide`] without the memo.
    fn decide_fresh(&self, command: &str, env: &DecisionEnv) -> Decision {
        self.decide_parsed(&self.prepare(command, env), env)
    }

    /// `command` parsed once, as a session reads it in `env` (its cwd, home and known
    /// definitions), for everything the session asks of it before, while and after it runs:
    /// [`Engine::live_queries`], [`Engine::decide_prepared`], [`Engine::literal_commands`],
    /// [`Prepared::definitions`]. Use it with the same `env` (or one that differs only in
    /// what live lookups add: real paths and programs).
    ///
    /// ```
    /// use execkit_engine::{DecisionEnv, Engine, Verdict};
    /// let engine = Engine::default_set().unwrap();
    /// let env = DecisionEnv::local("/work", "/home/agent");
    /// let p = engine.prepare("ls -la | head -3", &env);
    /// assert_eq!(engine.live_queries(&p, &env).programs, ["ls", "head"]);
    /// let d = engine.decide_prepared("ls -la | head -3", &p, &env);
    /// assert_eq!(d.verdict, Verdict::Allow);
    /// ```
    pub fn prepare(&self, command: &str, env: &DecisionEnv) -> Prepared {
        Prepared {
            script: parse(command, &self.limits.parse_options(env)).map_err(|e| e.to_string()),
        }
    }

    /// [`Engine::decide`] on a command already prepared: the memo first (by the command's
    /// text), then its facts authorized.
    pub fn decide_prepared(
        &self,
        command: &str,
        prepared: &Prepared,
        env: &DecisionEnv,
    ) -> Decision {
        self.memoized(command, env, || self.decide_parsed(prepared, env))
    }

    /// The decision on a prepared command: its facts authorized, or a denial when it did
    /// not parse.
    fn decide_parsed(&self, prepared: &Prepared, env: &DecisionEnv) -> Decision {
        match &prepared.script {
            Ok(script) => self.decide_script(script, env),
            Err(e) => Decision {
                verdict: Verdict::Deny,
                parse_error: Some(e.clone()),
                entity_error: None,
                commands: 0,
                facts: Vec::new(),
            },
        }
    }

    /// The simple commands of `command` whose words are all literal, as a program started
    /// for them receives them (argv, `argv[0]` as written), each with the directories it
    /// may run in (empty: not known). A session uses them to recognise, at run time, a
    /// program the decision on the command text already decided with its context (a
    /// pipeline's `xargs`, whose input the text shows). Empty when the command does not
    /// parse.
    pub fn literal_commands(&self, prepared: &Prepared) -> Vec<LiteralCommand> {
        let Ok(script) = &prepared.script else {
            return Vec::new();
        };
        let words = |c: &execkit_grammar::Command| {
            let mut args: &[execkit_grammar::Word] = &c.args;
            // What `xargs` runs carries its input as trailing words that are never literal
            // (`ROOT/*` below a `find -print0`'s roots, or unknown): xargs itself is
            // started without them.
            if c.structure.wrappers.last().is_some_and(|w| w == "xargs") {
                while let [rest @ .., last] = args {
                    if last.is_literal() {
                        break;
                    }
                    args = rest;
                }
            }
            std::iter::once(&c.argv0)
                .chain(args)
                .map(|w| w.is_literal().then(|| w.value.clone()))
                .collect::<Option<Vec<String>>>()
        };
        // A wrapper and what it runs are commands of one span, the wrapper first with its
        // own options (`xargs -0`, then `rm -f`): the program the wrapper execs receives
        // the words from it on, so every run of them ending here is a command line.
        let mut out = Vec::new();
        let mut chain: Vec<Option<Vec<String>>> = Vec::new();
        let mut prev: Option<&execkit_grammar::Command> = None;
        for c in &script.commands {
            let inner = prev.is_some_and(|p| {
                p.span == c.span && p.structure.wrappers.len() < c.structure.wrappers.len()
            });
            if !inner {
                chain.clear();
            }
            chain.push(words(c));
            prev = Some(c);
            let cwds = match &c.cwd {
                execkit_grammar::Cwd::Known(v) => v.to_vec(),
                execkit_grammar::Cwd::Unknown => Vec::new(),
            };
            for from in 0..chain.len() {
                let argv = chain[from..].iter().try_fold(Vec::new(), |mut all, w| {
                    all.extend(w.as_ref()?.iter().cloned());
                    Some(all)
                });
                if let Some(argv) = argv {
                    out.push(LiteralCommand {
                        argv,
                        cwds: cwds.clone(),
                    });
                }
            }
        }
        out
    }

    /// What a live session should look up on its target before deciding `command`: the
    /// literal paths its facts name (resolved through symlinks into
    /// [`DecisionEnv::real_paths`]), the words that climb with `..` as the kernel reads
    /// them, and the program names it runs that are not builtins (resolved through the
    /// shell's PATH into [`DecisionEnv::real_programs`]). Empty when the command does not
    /// parse.
    pub fn live_queries(&self, prepared: &Prepared, env: &DecisionEnv) -> LiveQueries {
        let Ok(script) = &prepared.script else {
            return LiveQueries::default();
        };
        let mut programs: crate::fast_hash::SmallOrderedSet<String> = Default::default();
        let mut path_dirs: Vec<String> = Vec::new();
        for c in &script.commands {
            let here = c.cwd.primary().unwrap_or(env.workspace.as_str());
            for a in c.env.iter().filter(|a| a.name == "PATH") {
                let dirs =
                    crate::path_var::workspace_dirs(&a.value.raw, here, &env.home, &env.workspace);
                for d in dirs.into_iter().flatten() {
                    if !path_dirs.contains(&d) {
                        path_dirs.push(d);
                    }
                }
            }
            if let execkit_grammar::Program::Literal(n) = &c.program {
                let builtin = self
                    .knowledge
                    .has(n, execkit_grammar::knowledge::Trait::Builtin);
                if !builtin && !programs.contains(n.as_str()) {
                    programs.insert(n.clone());
                }
            }
        }
        let facts = facts::extract(script, &env.home, self.knowledge);
        // The decision will deny it: nothing to look up (a megabyte of `cat f0 f1 …` would
        // be 130,000 lookups on the target first).
        if facts.len() > self.limits.max_facts {
            return LiveQueries::default();
        }
        let mut paths = facts::literal_paths(&facts);
        for (_, _, physical) in facts::physical_paths(script) {
            if !paths.contains(&physical) {
                paths.push(physical);
            }
        }
        LiveQueries {
            paths,
            programs: programs.into_vec(),
            path_dirs,
        }
    }

    /// Authorizes an already parsed script.
    pub fn decide_script(&self, script: &execkit_grammar::Script, env: &DecisionEnv) -> Decision {
        match self.path {
            DecisionPath::Fast => self.decide_script_with::<Direct>(script, env),
            DecisionPath::Reference => self.decide_script_with::<Restricted>(script, env),
        }
    }

    /// [`Engine::decide_script`] with contexts built one way (see [`crate::context_values`]).
    /// Past [`ScriptLimits::max_facts`] the script is denied: the parser bounds a script's
    /// commands, not their words, and one `cat f0 f1 …` of a megabyte is 130,000 path
    /// facts, each a Cedar request.
    fn decide_script_with<C: ContextValues>(
        &self,
        script: &execkit_grammar::Script,
        env: &DecisionEnv,
    ) -> Decision {
        let resolved;
        let script = if env.real_programs.is_empty() {
            script
        } else {
            resolved = with_real_programs(script, &env.real_programs);
            &resolved
        };
        let mut facts = facts::extract(script, &env.home, self.knowledge);
        facts::add_real_paths(&mut facts, script, &env.real_paths);
        crate::links::follow(&mut facts, script, self.knowledge);
        if facts.len() > self.limits.max_facts {
            return Decision {
                verdict: Verdict::Deny,
                parse_error: Some(format!(
                    "script has {} facts to judge, more than the maximum of {} (the operator's `[limits] max_script_facts`)",
                    facts.len(),
                    self.limits.max_facts
                )),
                entity_error: None,
                commands: script.commands.len(),
                facts: Vec::new(),
            };
        }
        let mut builder = RequestBuilder::<C>::new(self, env);
        let mut out = Vec::with_capacity(facts.len());
        for f in &facts {
            builder.add_entities_for(script, f);
        }
        let entities = match builder.request_entities() {
            Ok(e) => e,
            Err(msg) => {
                return Decision {
                    verdict: Verdict::Deny,
                    parse_error: None,
                    entity_error: Some(format!("could not build entities: {msg}")),
                    commands: script.commands.len(),
                    facts: Vec::new(),
                }
            }
        };
        for f in &facts {
            out.push(self.decide_fact(&mut builder, &entities, script, f));
        }
        let verdict = out
            .iter()
            .map(|f| f.verdict)
            .max()
            .unwrap_or(Verdict::Allow);
        Decision {
            verdict,
            parse_error: None,
            entity_error: None,
            commands: script.commands.len(),
            facts: out,
        }
    }

    /// Authorizes one connection a program opens (the egress broker's question): one
    /// `connect` request on `Host::"<host>"`, with the opening program as
    /// `context.program`, and — once resolved — `context.address` and
    /// `context.address_class`. Fails closed like every decision.
    ///
    /// ```
    /// use execkit_engine::{Connection, DecisionEnv, Engine, Verdict};
    /// let engine = Engine::default_set().unwrap();
    /// let env = DecisionEnv::local("/work", "/home/agent");
    /// let mut c = Connection { host: "pypi.org".into(), port: 443, scheme: None, program: "/usr/bin/pip".into(), address: None };
    /// assert_eq!(engine.decide_connection(&c, &env).verdict, Verdict::Allow);
    /// c.address = Some("169.254.169.254".parse().unwrap());
    /// assert_eq!(engine.decide_connection(&c, &env).verdict, Verdict::Deny);
    /// ```
    pub fn decide_connection(&self, c: &crate::Connection, env: &DecisionEnv) -> Decision {
        match self.path {
            DecisionPath::Fast => self.decide_connection_with::<Direct>(c, env),
            DecisionPath::Reference => self.decide_connection_with::<Restricted>(c, env),
        }
    }

    fn decide_connection_with<C: ContextValues>(
        &self,
        c: &crate::Connection,
        env: &DecisionEnv,
    ) -> Decision {
        let program = if c.program.is_empty() {
            "(unknown)"
        } else {
            c.program.as_str()
        };
        let text = format!("'{}'", program.replace('\'', ""));
        let script = match parse(&text, &self.limits.parse_options(env)) {
            Ok(s) => s,
            Err(e) => return Self::refused(format!("connection by {program}: {e}")),
        };
        let fact = Fact {
            action: Action::Connect,
            cmd: 0,
            target: Target::Host(crate::Destination {
                host: c.host.clone(),
                port: (!c.is_unix()).then_some(i64::from(c.port)),
                scheme: c.scheme.clone(),
                raw: c.authority(),
            }),
            cwd: env.cwd.clone(),
            mode: "connect",
            raw: c.authority(),
        };
        let mut builder = RequestBuilder::<C>::new(self, env);
        builder.resolved = c
            .address
            .map(|a| (a.to_string(), crate::AddressClass::of(a).as_str()));
        builder.add_entities_for(&script, &fact);
        let entities = match builder.request_entities() {
            Ok(e) => e,
            Err(msg) => return Self::refused(format!("could not build entities: {msg}")),
        };
        let fd = self.decide_fact(&mut builder, &entities, &script, &fact);
        Decision {
            verdict: fd.verdict,
            parse_error: None,
            entity_error: None,
            commands: 1,
            facts: vec![fd],
        }
    }

    /// A decision that could not be asked: deny, with why.
    fn refused(why: String) -> Decision {
        Decision::refused(why)
    }

    /// Authorizes opening a session on `target`: one `session_open` request, evaluated
    /// before any connection is made. The decision has one fact (resource
    /// `SessionTarget::"<id>"`), with the determining policies and their advice.
    pub fn decide_open(&self, target: &crate::OpenTarget, env: &DecisionEnv) -> Decision {
        if let Some(why) = target.malformed() {
            return Decision {
                verdict: Verdict::Deny,
                parse_error: Some(format!("session target: {why}")),
                entity_error: None,
                commands: 0,
                facts: Vec::new(),
            };
        }
        let mut builder = RequestBuilder::<Restricted>::new(self, env);
        let resource = builder.add_session_target(target);
        let mut fd = FactDecision {
            action: Action::SessionOpen,
            resource: resource.to_string(),
            program: String::new(),
            command: Arc::from(""),
            mode: "session_open",
            raw: target.id(),
            cwd: None,
            verdict: Verdict::Deny,
            policies: Vec::new(),
            errors: Vec::new(),
            reason: String::new(),
            satisfied: Vec::new(),
        };
        let entities = match builder.entities() {
            Ok(e) => e,
            Err(msg) => {
                return Decision {
                    verdict: Verdict::Deny,
                    parse_error: None,
                    entity_error: Some(format!("could not build entities: {msg}")),
                    commands: 0,
                    facts: Vec::new(),
                }
            }
        };
        let ctx = Restricted::context(vec![
            ("identity", builder.identity.clone()),
            ("target", builder.target.clone()),
        ]);
        match ctx {
            Ok(ctx) => {
                let keys = builder.keys_for(&resource);
                let shape = crate::shapes::shape_of(
                    Action::SessionOpen,
                    resource.type_name(),
                    ["identity", "target"].into_iter(),
                    builder.record_shape,
                );
                self.evaluate(
                    &mut fd,
                    (
                        builder.principal.clone(),
                        load::action_uid(Action::SessionOpen),
                        resource,
                        ctx,
                        shape,
                    ),
                    &keys,
                    &entities,
                );
            }
            Err(e) => {
                fd.errors.push(e.to_string());
                fd.reason = format!("could not build the request: {e}");
            }
        }
        Decision {
            verdict: fd.verdict,
            parse_error: None,
            entity_error: None,
            commands: 0,
            facts: vec![fd],
        }
    }

    /// Checks that every request a script produces conforms to the schema (for tests and fuzzing).
    pub fn validate_script_requests(
        &self,
        script: &execkit_grammar::Script,
        env: &DecisionEnv,
    ) -> Result<usize, String> {
        self.validate_requests_with::<Restricted>(script, env)?;
        self.validate_requests_with::<Direct>(script, env)
    }

    fn validate_requests_with<C: ContextValues>(
        &self,
        script: &execkit_grammar::Script,
        env: &DecisionEnv,
    ) -> Result<usize, String> {
        let facts = facts::extract(script, &env.home, self.knowledge);
        let mut builder = RequestBuilder::<C>::new(self, env);
        for f in &facts {
            builder.add_entities_for(script, f);
        }
        builder.entities()?;
        for f in &facts {
            let _end = crate::context_values::RecycleContext;
            let (p, a, r, ctx, _) = builder.parts(script, f).map_err(|e| e.to_string())?;
            Request::new(p, a, r, ctx, Some(&self.loaded.schema))
                .map_err(|e| format!("{}: {e}", f.action.name()))?;
        }
        Ok(facts.len())
    }

    fn applicable(&self, action: Action, keys: &[EntityUid]) -> Arc<PolicySet> {
        self.set_for(self.applicable_idx(action, keys))
    }

    /// Indices of the policies whose action and resource scope can match.
    fn applicable_idx(&self, action: Action, keys: &[EntityUid]) -> Vec<usize> {
        let mut idx: Vec<usize> = Vec::new();
        if let Some((unkeyed, keyed)) = self.partition.get(&action) {
            idx.extend(unkeyed);
            for k in keys {
                if let Some(v) = keyed.get(k) {
                    idx.extend(v);
                }
            }
        }
        idx.sort_unstable();
        idx.dedup();
        idx
    }

    /// The policy set of these indices (cached).
    fn set_for(&self, idx: Vec<usize>) -> Arc<PolicySet> {
        if let Ok(c) = self.cache.read() {
            if let Some(ps) = c.get(&idx) {
                return ps.clone();
            }
        }
        let ps = Arc::new(self.build_set(&idx));
        if let Ok(mut c) = self.cache.write() {
            if c.len() >= CACHE_LIMIT {
                c.clear();
            }
            c.insert(idx, ps.clone());
        }
        ps
    }

    fn build_set(&self, idx: &[usize]) -> PolicySet {
        let mut ps = PolicySet::new();
        for &i in idx {
            let p = &self.loaded.policies[i];
            match &p.source {
                PolicySource::Static(pol) => {
                    // Ids are unique by construction; a failure would only drop a policy
                    // from this subset, so fall back to the full set instead.
                    if ps.add(pol.as_ref().clone()).is_err() {
                        return self.loaded.full.clone();
                    }
                }
                PolicySource::Linked { template, vals } => {
                    if ps.template(template).is_none() {
                        if let Some(t) = self.loaded.templates.get(template) {
                            if ps.add_template(t.clone()).is_err() {
                                return self.loaded.full.clone();
                            }
                        }
                    }
                    if ps
                        .link(template.clone(), p.id.clone(), vals.clone())
                        .is_err()
                    {
                        return self.loaded.full.clone();
                    }
                }
            }
        }
        ps
    }

    fn hit(&self, id: &PolicyId) -> PolicyHit {
        match self.by_id.get(id).map(|&i| &self.loaded.policies[i]) {
            Some(p) => hit_of(p),
            None => PolicyHit {
                id: id.to_string(),
                effect: crate::decision::Effect::Unknown,
                advice: None,
                severity: None,
                ask: false,
                checkpoint: false,
            },
        }
    }

    fn decide_fact<C: ContextValues>(
        &self,
        builder: &mut RequestBuilder<C>,
        entities: &Entities,
        script: &execkit_grammar::Script,
        f: &Fact,
    ) -> FactDecision {
        let cmd = facts::command(script, f);
        let resource_str = builder.resource_display(cmd, f);
        let mut fd = FactDecision {
            action: f.action,
            resource: resource_str,
            program: cmd.program.entity_id(),
            // Shared with the command's other facts (a command of many words has many).
            command: cmd.text.clone(),
            mode: f.mode,
            raw: f.raw.clone(),
            cwd: f.cwd.clone(),
            verdict: Verdict::Deny,
            policies: Vec::new(),
            errors: Vec::new(),
            reason: String::new(),
            satisfied: Vec::new(),
        };
        let parts = match builder.parts(script, f) {
            Ok(x) => x,
            Err(e) => {
                fd.errors.push(e.to_string());
                fd.reason = format!("could not build the request: {e}");
                return fd;
            }
        };
        let keys = builder.keys_for(&parts.2);
        self.evaluate(&mut fd, parts, &keys, entities);
        fd
    }

    /// Builds the request, evaluates it against the policies that can apply and fills in
    /// the verdict, the determining policies and the reason. Errors deny.
    fn evaluate(
        &self,
        fd: &mut FactDecision,
        (p, a, r, ctx, shape): RequestParts,
        keys: &[EntityUid],
        entities: &Entities,
    ) {
        let validate = match self.path {
            DecisionPath::Reference => true,
            DecisionPath::Fast => !self.shapes.validated(shape),
        };
        let schema = validate.then_some(&self.loaded.schema);
        // Declared before the request: recycles its context map after the request is
        // dropped, on every way out.
        let _end = crate::context_values::RecycleContext;
        let request = match Request::new(p, a, r, ctx, schema) {
            Ok(r) => r,
            Err(e) => {
                fd.errors.push(e.to_string());
                fd.reason = format!("request does not conform to the schema: {e}");
                return;
            }
        };
        if validate {
            self.shapes.remember(shape);
        }
        if self.coverage {
            fd.satisfied = self.satisfied(fd.action, keys, &request, entities);
        }
        let (allow, hits, errors) = match (&self.compiled, self.path) {
            (Some(c), DecisionPath::Fast) => {
                let idx = self.applicable_idx(fd.action, keys);
                let o = c.evaluate(request.as_ref(), fd.action, entities.as_ref(), &idx);
                let hits = o
                    .determining
                    .iter()
                    .map(|&i| hit_of(&self.loaded.policies[i]))
                    .collect();
                (o.allow, hits, o.errors)
            }
            _ => {
                let set = self.applicable(fd.action, keys);
                let resp = self.authorizer.is_authorized(&request, &set, entities);
                let errors: Vec<String> =
                    resp.diagnostics().errors().map(|e| e.to_string()).collect();
                let hits: Vec<PolicyHit> =
                    resp.diagnostics().reason().map(|id| self.hit(id)).collect();
                (resp.decision() == CedarDecision::Allow, hits, errors)
            }
        };
        if !errors.is_empty() {
            fd.errors = errors;
            fd.policies = hits;
            fd.reason = format!(
                "policy evaluation error (fails closed): {}",
                fd.errors.join("; ")
            );
            return;
        }
        fd.reason = if !allow {
            if hits.is_empty() {
                "no policy permits this (default deny)".to_string()
            } else {
                let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
                format!("forbidden by {}", ids.join(", "))
            }
        } else if hits.iter().any(|h| h.ask) {
            fd.verdict = Verdict::Ask;
            let ids: Vec<&str> = hits
                .iter()
                .filter(|h| h.ask)
                .map(|h| h.id.as_str())
                .collect();
            format!("needs approval ({})", ids.join(", "))
        } else {
            fd.verdict = Verdict::Allow;
            let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
            format!("permitted by {}", ids.join(", "))
        };
        fd.policies = hits;
    }
}

impl Engine {
    /// The policies `request` satisfies: Cedar's reasons when only the permits, then only
    /// the forbids, are evaluated (each list then holds exactly the satisfied ones).
    fn satisfied(
        &self,
        action: Action,
        keys: &[EntityUid],
        request: &Request,
        entities: &Entities,
    ) -> Vec<String> {
        let idx = self.applicable_idx(action, keys);
        let mut out = Vec::new();
        for effect in [Effect::Permit, Effect::Forbid] {
            let part: Vec<usize> = idx
                .iter()
                .copied()
                .filter(|&i| self.loaded.policies[i].effect == effect)
                .collect();
            let set = self.set_for(part);
            let resp = self.authorizer.is_authorized(request, &set, entities);
            out.extend(resp.diagnostics().reason().map(|id| id.to_string()));
        }
        out.sort();
        out
    }
}

/// True if every option of `cmd` (and its operand count) is one its program's read-only
/// table lists (`knowledge/readonly.toml`): `context.options_listed`.
fn options_listed(cmd: &Command, k: &execkit_grammar::knowledge::Catalog) -> bool {
    let operands = cmd.positionals.len();
    k.readonly()
        .listed(cmd.program.base_name(), &cmd.flags, operands)
}

/// The `structure` record of a request's context.
fn structure_record<C: ContextValues>(st: &Structure) -> C::V {
    // In key order (see `ContextValues::record`).
    let mut fields = vec![
        (
            "args_have_substitution",
            C::boolean(st.args_have_substitution),
        ),
        ("background", C::boolean(st.background)),
        ("calls_function", C::boolean(st.calls_function)),
        ("downstream", C::strings(&st.downstream)),
        ("dynamic_args", C::boolean(st.dynamic_args)),
        ("dynamic_command", C::boolean(st.dynamic_command)),
        ("in_function", C::boolean(st.in_function)),
        ("in_subshell", C::boolean(st.in_subshell)),
        ("in_substitution", C::boolean(st.in_substitution)),
        ("input_sources", C::strings(&st.input_sources)),
        ("negated", C::boolean(st.negated)),
        ("nesting_depth", C::count(st.nesting_depth)),
        ("pipeline_index", C::count(st.pipeline_index)),
        ("pipeline_length", C::count(st.pipeline_length.max(1))),
    ];
    if let Some(u) = &st.run_as {
        fields.push(("run_as", C::string(u)));
    }
    fields.extend([
        ("sudo", C::boolean(st.sudo)),
        ("unbounded_args", C::boolean(st.unbounded_args)),
        ("upstream", C::strings(&st.upstream)),
        ("wrappers", C::strings(&st.wrappers)),
    ]);
    C::record(fields)
}

/// Path `p`'s entity (uid `u`): its ancestors and the path groups it is always in (for
/// `home`) as parents; and its partition keys.
fn path_entity(
    e: &Engine,
    home: &str,
    p: &PathRef,
    u: &EntityUid,
) -> crate::entity_table::BuiltEntity {
    let t = &e.types;
    let (dir, under) = match p {
        PathRef::Exact(x) => (Some(x.as_str()), false),
        PathRef::Under(d) => (Some(d.as_str()), true),
        PathRef::Anywhere => (None, false),
    };
    let mut parents = HashSet::new();
    let mut keys = vec![u.clone()];
    if let Some(d) = dir {
        let mut anc: Vec<&str> = ancestors(d);
        if under {
            anc.insert(0, d);
        }
        for a in anc {
            let au = uid(&t.path, a);
            keys.push(au.clone());
            parents.insert(au);
        }
        let (must, _) = e.path_groups_for(home, Some(d), false);
        for g in must {
            let gu = uid(&t.path_group, &g);
            keys.push(gu.clone());
            parents.insert(gu);
        }
    }
    crate::entity_table::BuiltEntity {
        entity: Some(Entity::new_no_attrs(u.clone(), parents)),
        keys: keys.into(),
    }
}

/// Program `id`'s entity (uid `u`): its program groups as parents, `builtin` and
/// `named_by_path`; and its partition keys.
fn program_entity(e: &Engine, id: &str, u: &EntityUid) -> crate::entity_table::BuiltEntity {
    let t = &e.types;
    let named_by_path = id.starts_with("path:");
    let groups = if named_by_path || id == "(dynamic)" {
        BTreeSet::new()
    } else {
        e.loaded.catalog.groups_of_program(id)
    };
    let mut keys = vec![u.clone()];
    let mut parents = HashSet::new();
    for g in groups {
        let gu = uid(&t.program_group, &g);
        keys.push(gu.clone());
        parents.insert(gu);
    }
    let attrs = HashMap::from([
        (
            "builtin".to_string(),
            b(e.knowledge.has(id, Trait::Builtin)),
        ),
        ("named_by_path".to_string(), b(named_by_path)),
    ]);
    crate::entity_table::BuiltEntity {
        entity: Entity::new(u.clone(), attrs, parents).ok(),
        keys: keys.into(),
    }
}

fn hit_of(p: &PolicyInfo) -> PolicyHit {
    PolicyHit {
        id: p.id_text.clone(),
        effect: if p.effect == Effect::Permit {
            crate::decision::Effect::Permit
        } else {
            crate::decision::Effect::Forbid
        },
        advice: p.advice.clone(),
        severity: p.severity.clone(),
        ask: p.ask,
        checkpoint: p.checkpoint,
    }
}

/// Programs that read everything below a directory argument (so a directory that contains
/// a credential file "could be" a credential read).
fn reads_recursively(cmd: &Command, k: &Catalog) -> bool {
    let base = cmd.program.base_name();
    k.has(base, Trait::ReadsRecursively) || cmd.flags.iter().any(|f| k.is_recursive_flag(base, f))
}

/// Agents are built from the runtime identity; entries for them in the file only contribute
/// their parents (kept in the catalog), so they are removed from the static store.
fn strip_agents(b: &PolicyBundle) -> Result<PolicyBundle, LoadError> {
    let v: serde_json::Value =
        serde_json::from_str(&b.entities).map_err(|e| LoadError::Entities(e.to_string()))?;
    let arr = v
        .as_array()
        .ok_or_else(|| LoadError::Entities("entities file must be a JSON array".into()))?;
    let kept: Vec<&serde_json::Value> = arr
        .iter()
        .filter(|e| e.pointer("/uid/type").and_then(|t| t.as_str()) != Some("Agent"))
        .collect();
    let mut out = b.clone();
    out.entities = serde_json::to_string(&kept).map_err(|e| LoadError::Entities(e.to_string()))?;
    Ok(out)
}

/// Builds entities and contexts for one decision.
struct RequestBuilder<'e, C: ContextValues> {
    e: &'e Engine,
    env: &'e DecisionEnv,
    extra: Vec<Extra>,
    seen: FastSet<EntityUid>,
    /// Ancestor uids of each created resource (partition keys).
    keys: FastMap<EntityUid, Arc<[EntityUid]>>,
    identity: C::V,
    target: C::V,
    structures: FastMap<usize, C::V>,
    /// Per command (by index): its flags as a context value and whether it reads
    /// recursively, for its path facts. Built once: rebuilt for each path fact, the flag
    /// set of a command of many flags and many paths would cost the square of its words.
    path_parts: FastMap<usize, (C::V, bool)>,
    principal: EntityUid,
    /// Which optional fields the identity and target records have (part of a request's
    /// shape; bit 0 is left for the structure's `run_as`).
    record_shape: u64,
    /// The environment's parts, when remembered (fast path; see [`crate::env_parts`]).
    base: Option<Arc<crate::env_parts::EnvParts>>,
    /// A runtime connection's resolved address and its class, for its `connect` fact.
    resolved: Option<(String, &'static str)>,
}

impl<'e, C: ContextValues> RequestBuilder<'e, C> {
    /// A builder for one decision: on the fast path from the environment's remembered
    /// parts, otherwise (and when they cannot be built) from scratch.
    fn new(e: &'e Engine, env: &'e DecisionEnv) -> Self {
        if C::FAST {
            let parts = e.env_parts.get_or_build(env, || {
                let mut rb = RequestBuilder::<crate::context_values::Direct>::fresh(e, env);
                let store = rb.entities().ok()?;
                Some(crate::env_parts::EnvParts {
                    dangling: crate::new_entities::dangling_parents(&store),
                    store,
                    seen: rb.seen,
                    keys: rb.keys,
                    identity: rb.identity,
                    target: rb.target,
                    principal: rb.principal,
                    record_shape: rb.record_shape,
                })
            });
            if let Some(p) = parts {
                if let (Some(identity), Some(target)) =
                    (C::from_direct(&p.identity), C::from_direct(&p.target))
                {
                    return RequestBuilder {
                        e,
                        env,
                        extra: Vec::new(),
                        seen: p.seen.clone(),
                        keys: p.keys.clone(),
                        identity,
                        target,
                        structures: FastMap::default(),
                        path_parts: FastMap::default(),
                        principal: p.principal.clone(),
                        record_shape: p.record_shape,
                        base: Some(p),
                        resolved: None,
                    };
                }
            }
        }
        Self::fresh(e, env)
    }

    /// A builder with the environment's entities and records built from scratch.
    fn fresh(e: &'e Engine, env: &'e DecisionEnv) -> Self {
        let t = &e.types;
        let principal = uid(&t.agent, &env.identity.agent);
        let operator = uid(&t.operator, &env.identity.operator);
        // Records' fields in key order (see `ContextValues::record`).
        let mut id_fields = Vec::with_capacity(3);
        if let Some(a) = &env.identity.approved_by {
            id_fields.push(("approved_by", C::entity(&uid(&t.operator, a))));
        }
        id_fields.extend([
            ("operator", C::entity(&operator)),
            ("session_id", C::string(&env.identity.session_id)),
        ]);
        let mut tg = Vec::with_capacity(4);
        if let Some(c) = &env.target.container {
            tg.push(("container", C::string(c)));
        }
        if let Some(h) = &env.target.host {
            tg.push(("host", C::entity(&uid(&t.host, &h.to_ascii_lowercase()))));
        }
        if let Some(u) = &env.target.remote_user {
            tg.push(("remote_user", C::string(u)));
        }
        tg.push((
            "transport",
            C::entity(&uid(&t.transport, env.target.transport.as_str())),
        ));
        let record_shape = [
            env.identity.approved_by.is_some(),
            env.target.host.is_some(),
            env.target.container.is_some(),
            env.target.remote_user.is_some(),
        ]
        .iter()
        .enumerate()
        .fold(0u64, |acc, (i, on)| acc | (u64::from(*on) << (i + 1)));
        let mut rb = RequestBuilder {
            e,
            env,
            extra: Vec::new(),
            seen: FastSet::default(),
            keys: FastMap::default(),
            identity: C::record(id_fields),
            target: C::record(tg),
            structures: FastMap::default(),
            path_parts: FastMap::default(),
            principal,
            record_shape,
            base: None,
            resolved: None,
        };
        rb.add_principal();
        rb
    }

    fn exists_static(&self, u: &EntityUid) -> bool {
        match &self.base {
            Some(b) => b.store.get(u).is_some(),
            None => self.e.loaded.entities.get(u).is_some(),
        }
    }

    fn push(&mut self, ent: Entity) {
        let u = ent.uid();
        if self.seen.insert(u.clone()) && !self.exists_static(&u) {
            self.extra.push(Extra::Own(ent));
        }
    }

    /// [`Self::push`] for a remembered entity: cloned only if a store is built with it.
    fn push_built(&mut self, built: Arc<crate::entity_table::BuiltEntity>) {
        let Some(u) = built.entity.as_ref().map(Entity::uid) else {
            return;
        };
        if self.seen.insert(u.clone()) && !self.exists_static(&u) {
            self.extra.push(Extra::Built(u, built));
        }
    }

    fn add_principal(&mut self) {
        let t = &self.e.types;
        let env = self.env;
        let mut parents: HashSet<EntityUid> = env
            .identity
            .groups
            .iter()
            .map(|g| uid(&t.group, g))
            .collect();
        for (pt, pid) in self
            .e
            .loaded
            .catalog
            .ancestors("Agent", &env.identity.agent)
        {
            if pt == "Group" {
                parents.insert(uid(&t.group, &pid));
            }
        }
        // Groups named only in the configuration still need to exist.
        for g in &env.identity.groups {
            let gu = uid(&t.group, g);
            self.push(Entity::new_no_attrs(gu, HashSet::new()));
        }
        let operator = uid(&t.operator, &env.identity.operator);
        self.push(Entity::new_no_attrs(operator.clone(), HashSet::new()));
        if let Some(a) = &env.identity.approved_by {
            self.push(Entity::new_no_attrs(uid(&t.operator, a), HashSet::new()));
        }
        let ws = uid(&t.path, &env.workspace);
        self.add_path(&PathRef::Exact(env.workspace.clone()));
        let attrs = HashMap::from([
            (
                "operator".to_string(),
                RestrictedExpression::new_entity_uid(operator),
            ),
            (
                "workspace".to_string(),
                RestrictedExpression::new_entity_uid(ws),
            ),
            ("kind".to_string(), s(&env.identity.kind)),
        ]);
        if let Ok(ent) = Entity::new(self.principal.clone(), attrs, parents) {
            self.push(ent);
        }
        if let Some(h) = &env.target.host {
            self.add_host(&h.to_ascii_lowercase());
        }
        match &env.cwd {
            Some(c) => self.add_path(&PathRef::Exact(c.clone())),
            None => self.add_path(&PathRef::Anywhere),
        };
    }

    fn add_path(&mut self, p: &PathRef) -> EntityUid {
        let (e, home) = (self.e, self.env.home.as_str());
        let id = path_id(p);
        let u = uid(&e.types.path, &id);
        if self.seen.contains(&u) {
            return u;
        }
        let built = if C::FAST {
            // What the entity is built from: the home (path groups) and the path with its
            // kind; NUL cannot occur in a path.
            let kind = match p {
                PathRef::Exact(_) => "E",
                PathRef::Under(_) => "U",
                PathRef::Anywhere => "A",
            };
            let mut key = String::with_capacity(home.len() + id.len() + 4);
            for part in [home, "\0", kind, "\0", &id] {
                key.push_str(part);
            }
            e.paths.get_or_build(&key, || path_entity(e, home, p, &u))
        } else {
            Arc::new(path_entity(e, home, p, &u))
        };
        self.keys.insert(u.clone(), built.keys.clone());
        self.push_built(built);
        u
    }

    fn add_program(&mut self, id: &str) -> EntityUid {
        let e = self.e;
        let u = uid(&e.types.program, id);
        if self.seen.contains(&u) {
            return u;
        }
        let built = if C::FAST {
            e.programs.get_or_build(id, || program_entity(e, id, &u))
        } else {
            Arc::new(program_entity(e, id, &u))
        };
        self.keys.insert(u.clone(), built.keys.clone());
        self.push_built(built);
        u
    }

    fn add_session_target(&mut self, target: &crate::OpenTarget) -> EntityUid {
        let t = &self.e.types;
        let id = target.id();
        let u = uid(&t.session_target, &id);
        let mut keys = vec![u.clone()];
        let mut parents = HashSet::new();
        for g in self.e.loaded.catalog.target_groups_for(&id) {
            let gu = uid(&t.target_group, &g);
            keys.push(gu.clone());
            parents.insert(gu);
        }
        self.keys.insert(u.clone(), keys.into());
        let mut attrs = HashMap::from([(
            "transport".to_string(),
            RestrictedExpression::new_entity_uid(uid(&t.transport, target.transport.as_str())),
        )]);
        if let Some(h) = &target.host {
            attrs.insert("host".into(), s(h));
        }
        if let Some(p) = target.port {
            attrs.insert("port".into(), RestrictedExpression::new_long(i64::from(p)));
        }
        if let Some(v) = &target.user {
            attrs.insert("user".into(), s(v));
        }
        if let Some(v) = &target.container {
            attrs.insert("container".into(), s(v));
        }
        if let Some(v) = &target.image {
            attrs.insert("image".into(), s(v));
        }
        // Without its entity the request errors, and errors deny.
        if let Ok(ent) = Entity::new(u.clone(), attrs, parents) {
            self.push(ent);
        }
        u
    }

    fn add_host(&mut self, host: &str) -> EntityUid {
        let t = &self.e.types;
        let u = uid(&t.host, host);
        if self.seen.contains(&u) {
            return u;
        }
        let mut keys = vec![u.clone()];
        let mut parents = HashSet::new();
        for g in self.e.loaded.catalog.host_groups_for(host) {
            let gu = uid(&t.host_group, &g);
            keys.push(gu.clone());
            parents.insert(gu);
        }
        self.keys.insert(u.clone(), keys.into());
        self.push(Entity::new_no_attrs(u.clone(), parents));
        u
    }

    fn add_entities_for(&mut self, script: &execkit_grammar::Script, f: &Fact) {
        let cmd = facts::command(script, f);
        self.add_program(&cmd.program.entity_id());
        match &f.cwd {
            Some(c) => self.add_path(&PathRef::Exact(c.clone())),
            None => self.add_path(&PathRef::Anywhere),
        };
        match &f.target {
            Target::Program => {
                if let Some(id) = self.started_by() {
                    self.add_program(&id);
                }
            }
            Target::Path(p) => {
                self.add_path(p);
            }
            Target::Host(d) => {
                self.add_host(&d.host);
            }
        }
    }

    /// The `Program` entity id of a runtime decision's caller.
    fn started_by(&self) -> Option<String> {
        let path = self.env.started_by.as_deref()?;
        Some(execkit_grammar::program_at(path, self.e.knowledge).entity_id())
    }

    fn entities(&mut self) -> Result<Entities, String> {
        let extra = Extra::entities(std::mem::take(&mut self.extra));
        let loaded = &self.e.loaded;
        if let Some(b) = &self.base {
            crate::new_entities::add_fast(&b.store, extra, &b.dangling)
        } else if C::FAST {
            crate::new_entities::add_fast(&loaded.entities, extra, &loaded.dangling)
        } else {
            crate::new_entities::add_reference(&loaded.entities, extra)
        }
    }

    /// The request store: on the fast path with an environment's parts, shared between
    /// decisions that add the same entities (see [`crate::store_table`]).
    fn request_entities(&mut self) -> Result<Arc<Entities>, String> {
        match &self.base {
            Some(b) if C::FAST => {
                let extra = std::mem::take(&mut self.extra);
                let members = extra.iter().map(Extra::member).collect();
                let held = extra
                    .iter()
                    .filter_map(|x| match x {
                        Extra::Built(_, b) => Some(b.clone()),
                        Extra::Own(_) => None,
                    })
                    .collect();
                self.e.stores.get_or_build(b, members, held, || {
                    crate::new_entities::add_fast(&b.store, Extra::entities(extra), &b.dangling)
                })
            }
            _ => self.entities().map(Arc::new),
        }
    }

    fn keys_for(&self, r: &EntityUid) -> Arc<[EntityUid]> {
        self.keys
            .get(r)
            .cloned()
            .unwrap_or_else(|| Arc::from(vec![r.clone()]))
    }

    fn resource_display(&self, cmd: &Command, f: &Fact) -> String {
        match &f.target {
            Target::Program => {
                crate::resource_text::entity_display("Program", &cmd.program.entity_id())
            }
            Target::Path(p) => crate::resource_text::entity_display("Path", &path_id(p)),
            Target::Host(d) => crate::resource_text::entity_display("Host", &d.host),
        }
    }

    fn structure(&mut self, i: usize, st: &Structure) -> C::V {
        if let Some(s) = self.structures.get(&i) {
            return s.clone();
        }
        let r = if C::FAST {
            let v = self
                .e
                .structure_records
                .get_or_build(st, || structure_record::<Direct>(st));
            C::from_direct(&v).unwrap_or_else(|| structure_record::<C>(st))
        } else {
            structure_record::<C>(st)
        };
        self.structures.insert(i, r.clone());
        r
    }

    /// A command's flags (a context value) and whether it reads recursively: the same for
    /// each of its path facts.
    fn path_parts(&mut self, i: usize, cmd: &Command) -> (C::V, bool) {
        let knowledge = self.e.knowledge;
        self.path_parts
            .entry(i)
            .or_insert_with(|| (C::strings(&cmd.flags), reads_recursively(cmd, knowledge)))
            .clone()
    }

    fn cwd_parts(&self, f: &Fact) -> (C::V, bool) {
        let t = &self.e.types;
        match &f.cwd {
            Some(c) => (C::entity(&uid(&t.path, c)), true),
            None => (C::entity(&uid(&t.path, "*")), false),
        }
    }

    fn parts(
        &mut self,
        script: &execkit_grammar::Script,
        f: &Fact,
    ) -> Result<RequestParts, ContextBuildError> {
        let cmd = facts::command(script, f);
        let t = &self.e.types;
        let structure = self.structure(f.cmd, &cmd.structure);
        let program = uid(&t.program, &cmd.program.entity_id());
        let (cwd, cwd_known) = self.cwd_parts(f);
        // Each context's pairs are listed in key order (see `ContextValues::context`).
        let mut pairs: Vec<(&'static str, C::V)> = Vec::with_capacity(20);
        let identity = self.identity.clone();
        let target = self.target.clone();
        let resource = match &f.target {
            Target::Program => {
                let argline = cmd
                    .args
                    .iter()
                    .map(|a| a.value.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                let ws = &self.env.workspace;
                let here = cmd.cwd.primary().unwrap_or(ws.as_str());
                let env_names: BTreeSet<String> = cmd
                    .env
                    .iter()
                    .flat_map(|a| {
                        crate::env_names::policy_names(
                            cmd,
                            a,
                            here,
                            &self.env.home,
                            ws,
                            self.e.knowledge,
                        )
                    })
                    .collect();
                let redirects: BTreeSet<std::borrow::Cow<str>> = cmd
                    .redirects
                    .iter()
                    .flat_map(|r| r.target.paths.iter().map(path_id))
                    .collect();
                let signal_targets = crate::signals::targets(cmd);
                pairs.extend([
                    ("argc", C::count(cmd.args.len() + 1)),
                    ("argline", C::string(&argline)),
                    // Sets: duplicates collapse when the value is built.
                    ("args", C::strings(cmd.args.iter().map(|a| &a.value))),
                    ("argv0", C::string(&cmd.argv0.value)),
                    ("cwd", cwd),
                    ("cwd_known", C::boolean(cwd_known)),
                    ("env_assignments", C::strings(&env_names)),
                    ("env_cleared", C::boolean(cmd.env_cleared)),
                    ("flags", C::strings(&cmd.flags)),
                    ("identity", identity),
                    (
                        "options_listed",
                        C::boolean(options_listed(cmd, self.e.knowledge)),
                    ),
                    ("positionals", C::strings(&cmd.positionals)),
                    ("raw", C::shared_string(&cmd.text)),
                    ("redirect_targets", C::strings(&redirects)),
                    (
                        "signal_targets",
                        C::strings(signal_targets.iter().map(|t| t.as_str())),
                    ),
                ]);
                if let Some(id) = self.started_by() {
                    pairs.push(("started_by", C::entity(&uid(&t.program, &id))));
                }
                pairs.push(("structure", structure));
                if let Some(sc) = &cmd.subcommand {
                    pairs.push(("subcommand", C::string(sc)));
                }
                pairs.push(("target", target));
                program.clone()
            }
            Target::Path(p) => {
                let (flags, recursive) = self.path_parts(f.cmd, cmd);
                let (_, may) = match p {
                    PathRef::Exact(x) => self.e.path_groups_for(&self.env.home, Some(x), recursive),
                    PathRef::Under(d) => self.e.path_groups_for(&self.env.home, Some(d), true),
                    PathRef::Anywhere => self.e.path_groups_for(&self.env.home, None, true),
                };
                let could: Vec<C::V> = may
                    .iter()
                    .map(|g| C::entity(&uid(&t.path_group, g)))
                    .collect();
                pairs.extend([
                    ("could_be_in", C::set(could)),
                    ("cwd", cwd),
                    ("cwd_known", C::boolean(cwd_known)),
                    ("dynamic", C::boolean(!matches!(p, PathRef::Exact(_)))),
                    ("flags", flags),
                    ("identity", identity),
                    ("mode", C::string(f.mode)),
                    (
                        "options_listed",
                        C::boolean(options_listed(cmd, self.e.knowledge)),
                    ),
                    ("program", C::entity(&program)),
                    ("raw_path", C::string(&f.raw)),
                    ("structure", structure),
                ]);
                if let Some(sc) = &cmd.subcommand {
                    pairs.push(("subcommand", C::string(sc)));
                }
                pairs.push(("target", target));
                uid(&t.path, &path_id(p))
            }
            Target::Host(d) => {
                if let Some((address, class)) = &self.resolved {
                    pairs.push(("address", C::string(address)));
                    pairs.push(("address_class", C::string(class)));
                }
                pairs.push(("identity", identity));
                if let Some(p) = d.port {
                    pairs.push(("port", C::long(p)));
                }
                pairs.push(("program", C::entity(&program)));
                if let Some(sc) = &d.scheme {
                    pairs.push(("scheme", C::string(sc)));
                }
                pairs.extend([
                    ("structure", structure),
                    ("target", target),
                    ("url", C::string(&d.raw)),
                ]);
                uid(&t.host, &d.host)
            }
        };
        let shape = crate::shapes::shape_of(
            f.action,
            resource.type_name(),
            pairs.iter().map(|(k, _)| *k),
            self.record_shape ^ u64::from(cmd.structure.run_as.is_some()),
        );
        let ctx = C::context(pairs)?;
        Ok((
            self.principal.clone(),
            load::action_uid(f.action),
            resource,
            ctx,
            shape,
        ))
    }
}
