#![allow(clippy::unwrap_used)]
use execkit_engine::{DecisionEnv, Engine, PolicyBundle};
use std::time::Instant;
fn main() {
    let set = execkit_policies::DEFAULT;
    let e = Engine::new(&PolicyBundle::from_files(
        (execkit_policies::SCHEMA_FILE, execkit_policies::SCHEMA),
        set.policies,
        set.entities,
    ))
    .unwrap();
    let env = DecisionEnv::local("/work", "/root");
    let cmds = [
        "'/usr/bin/cc' '-O1' '-c' 'src/f17.c' '-o' 'src/f17.o'",
        "'/usr/lib/gcc/x86_64-linux-gnu/12/cc1' '-quiet' '-imultiarch' 'x86_64-linux-gnu' 'src/f17.c' '-quiet' '-dumpdir' 'src/' '-dumpbase' 'f17.c' '-dumpbase-ext' '.c' '-mtune=generic' '-march=x86-64' '-O1' '-o' '/tmp/ccABC.s'",
        "'/usr/bin/as' '--64' '-o' 'src/f17.o' '/tmp/ccABC.s'",
    ];
    for c in cmds {
        let opts = execkit_grammar::ParseOptions::new(Some("/work"), "/root");
        let n = 2000;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(execkit_grammar::parse(c, &opts).unwrap());
        }
        let parse = t.elapsed() / n;
        let t = Instant::now();
        for i in 0..n {
            let c2 = c.replace("f17", &format!("f{i}"));
            std::hint::black_box(e.decide(&c2, &env));
        }
        let dec = t.elapsed() / n;
        let d = e.decide(c, &env);
        println!(
            "{:>10?} parse {:>10?} decide  facts {}  {}",
            parse,
            dec,
            d.facts.len(),
            &c[..40]
        );
    }
}
