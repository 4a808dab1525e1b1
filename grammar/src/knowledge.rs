//! What the extractor knows about particular programs' command lines.
//!
//! Everything here errs toward *more* facts: a word wrongly taken for a path yields an extra
//! check (at worst a false denial); a path wrongly taken for something else would be a
//! missed check. Tables therefore only list options that certainly take a value.

/// Directories whose programs are identified by basename (`/usr/bin/rm` is `rm`).
pub const SYSTEM_BIN_DIRS: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

/// Programs whose arguments are never file names (their redirects still are checked).
pub const NO_PATH_ARGS: &[&str] = &[
    "echo",
    "printf",
    "true",
    "false",
    ":",
    "sleep",
    "expr",
    "seq",
    "test",
    "[",
    "[[",
    "export",
    "declare",
    "local",
    "readonly",
    "typeset",
    "unset",
    "set",
    "shift",
    "exit",
    "return",
    "kill",
    "killall",
    "pkill",
    "yes",
    "basename",
    "dirname",
    "alias",
    "unalias",
    "type",
    "which",
    "hash",
    "let",
    "wait",
    "jobs",
    "fg",
    "bg",
    "disown",
    "trap",
    "umask",
    "ulimit",
    "shopt",
    "getopts",
    "read",
    "mapfile",
    "readarray",
    "caller",
    "times",
    "help",
    "history",
    "logout",
    "break",
    "continue",
    "(assignment)",
    "make",
    "whoami",
    "id",
    "uname",
    "hostname",
    "date",
    "nproc",
    "uptime",
    "env",
    "printenv",
    "tput",
    "clear",
    "reset",
];

/// Programs whose first positional is a subcommand, not a file.
pub const SUBCOMMAND_PROGRAMS: &[&str] = &[
    "git",
    "npm",
    "npx",
    "pnpm",
    "yarn",
    "cargo",
    "rustup",
    "go",
    "docker",
    "podman",
    "nerdctl",
    "kubectl",
    "helm",
    "pip",
    "pip3",
    "uv",
    "poetry",
    "pipenv",
    "conda",
    "apt",
    "apt-get",
    "dnf",
    "yum",
    "brew",
    "systemctl",
    "service",
    "journalctl",
    "gh",
    "glab",
    "aws",
    "gcloud",
    "az",
    "terraform",
    "tofu",
    "bundle",
    "gem",
    "dotnet",
    "mvn",
    "gradle",
    "bazel",
    "deno",
    "bun",
    "composer",
    "mix",
    "stack",
    "cabal",
    "opam",
    "snap",
    "flatpak",
    "ip",
    "nix",
    "launchctl",
    "crontab",
    "sv",
    "rc-service",
    "pulumi",
    "vagrant",
    "ansible-galaxy",
    "hg",
    "svn",
    "jj",
    "ctr",
    "crictl",
    "minikube",
    "kind",
    "k3d",
];

/// Programs whose first positional is a pattern or a program text, unless `-e`/`-f` gave it.
pub const PATTERN_FIRST: &[&str] = &[
    "grep", "egrep", "fgrep", "rg", "ag", "ack", "sed", "awk", "gawk", "mawk", "nawk", "jq", "yq",
    "perl",
];

/// Flags that, when present, mean a pattern-first program's pattern came from a flag.
pub const PATTERN_FLAGS: &[&str] = &[
    "-e",
    "-f",
    "--regexp",
    "--file",
    "--expression",
    "--from-file",
];

/// Programs that name remote hosts as `[user@]host:path`.
pub const REMOTE_SPEC_PROGRAMS: &[&str] = &["scp", "rsync", "sftp", "git", "ssh", "rclone"];

/// Programs whose first positional is a mode/owner/count rather than a file.
pub const FIRST_IS_NOT_PATH: &[&str] = &[
    "chmod", "chown", "chgrp", "setfacl", "timeout", "nice", "chrt", "taskset",
];

/// Programs using single-dash long options (`find -delete`, `java -jar`): their flags are
/// not split into letters.
pub const SINGLE_DASH_LONG: &[&str] = &[
    "find",
    "java",
    "javac",
    "go",
    "gcc",
    "g++",
    "cc",
    "clang",
    "ld",
    "ffmpeg",
    "ffprobe",
    "qemu-img",
    "qemu-system-x86_64",
];

/// How an option's value should be treated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ValueKind {
    /// A value that is a path if it looks like one.
    Value,
    /// Program text (`python -c`, `node -e`): never a path.
    Code,
}

/// Options that consume the next word, per program.
pub fn value_option(program: &str, flag: &str) -> Option<ValueKind> {
    use ValueKind::*;
    let v = match program {
        "git" => matches!(
            flag,
            "-C" | "-c" | "--git-dir" | "--work-tree" | "--namespace" | "--exec-path"
        )
        .then_some(Value),
        "docker" | "podman" | "nerdctl" => matches!(
            flag,
            "-H" | "--host"
                | "-c"
                | "--context"
                | "--config"
                | "-l"
                | "--log-level"
                | "-v"
                | "--volume"
                | "-e"
                | "--env"
                | "--env-file"
                | "-p"
                | "--publish"
                | "--name"
                | "-w"
                | "--workdir"
                | "--mount"
                | "--network"
                | "--net"
                | "--entrypoint"
                | "--user"
                | "--label"
                | "--platform"
                | "--cap-add"
                | "--cap-drop"
                | "--device"
                | "--pid"
                | "--ipc"
                | "--uts"
                | "--userns"
                | "--security-opt"
                | "--hostname"
                | "--memory"
                | "--cpus"
                | "--tag"
                | "--file"
                | "--build-arg"
                | "--target"
        )
        .then_some(Value),
        "kubectl" | "helm" => matches!(
            flag,
            "-n" | "--namespace"
                | "--context"
                | "--kubeconfig"
                | "-s"
                | "--server"
                | "--cluster"
                | "--user"
        )
        .then_some(Value),
        "cargo" => matches!(flag, "-C" | "--config" | "-Z" | "--manifest-path").then_some(Value),
        "npm" | "pnpm" | "yarn" => matches!(
            flag,
            "--prefix" | "-w" | "--workspace" | "-C" | "--dir" | "--cwd"
        )
        .then_some(Value),
        "grep" | "egrep" | "fgrep" => matches!(
            flag,
            "-e" | "-f" | "-m" | "-A" | "-B" | "-C" | "-d" | "-D" | "--regexp" | "--file"
        )
        .then_some(Value),
        "rg" => matches!(
            flag,
            "-e" | "-f"
                | "-g"
                | "-t"
                | "-T"
                | "-m"
                | "-A"
                | "-B"
                | "-C"
                | "-j"
                | "-M"
                | "--glob"
                | "--type"
                | "--regexp"
        )
        .then_some(Value),
        "sed" => matches!(flag, "-e" | "-f" | "-l" | "--expression" | "--file").then_some(
            if flag == "-e" || flag == "--expression" {
                Code
            } else {
                Value
            },
        ),
        "awk" | "gawk" | "mawk" | "nawk" => matches!(flag, "-f" | "-v" | "-F").then_some(Value),
        "python" | "python3" | "python2" | "pypy3" => match flag {
            "-c" => Some(Code),
            "-m" | "-W" | "-X" => Some(Value),
            _ => None,
        },
        "node" | "nodejs" | "deno" | "bun" => match flag {
            "-e" | "--eval" | "-p" | "--print" => Some(Code),
            "-r" | "--require" | "--import" => Some(Value),
            _ => None,
        },
        "perl" | "ruby" => match flag {
            "-e" | "-E" => Some(Code),
            "-I" | "-M" | "-r" => Some(Value),
            _ => None,
        },
        "php" => matches!(flag, "-r").then_some(Code),
        "find" => matches!(
            flag,
            "-name"
                | "-iname"
                | "-path"
                | "-ipath"
                | "-wholename"
                | "-regex"
                | "-iregex"
                | "-type"
                | "-user"
                | "-group"
                | "-perm"
                | "-size"
                | "-mtime"
                | "-mmin"
                | "-atime"
                | "-amin"
                | "-ctime"
                | "-cmin"
                | "-maxdepth"
                | "-mindepth"
                | "-newer"
                | "-anewer"
                | "-cnewer"
                | "-samefile"
                | "-fprint"
                | "-fprint0"
                | "-fls"
                | "-links"
                | "-inum"
                | "-uid"
                | "-gid"
                | "-printf"
                | "-lname"
                | "-ilname"
                | "-fstype"
                | "-used"
                | "-xtype"
                | "-context"
                | "-regextype"
                | "-D"
                | "-files0-from"
        )
        .then_some(Value),
        "curl" => matches!(
            flag,
            "-o" | "--output"
                | "-d"
                | "--data"
                | "--data-raw"
                | "--data-binary"
                | "--data-urlencode"
                | "-H"
                | "--header"
                | "-X"
                | "--request"
                | "-u"
                | "--user"
                | "-A"
                | "--user-agent"
                | "-e"
                | "--referer"
                | "-T"
                | "--upload-file"
                | "-F"
                | "--form"
                | "-b"
                | "--cookie"
                | "-c"
                | "--cookie-jar"
                | "-w"
                | "--write-out"
                | "-m"
                | "--max-time"
                | "--connect-timeout"
                | "--retry"
                | "-x"
                | "--proxy"
                | "--resolve"
                | "-K"
                | "--config"
                | "--cacert"
                | "--cert"
                | "-E"
                | "--key"
                | "-r"
                | "--range"
                | "-C"
                | "--continue-at"
                | "-z"
                | "--time-cond"
                | "--limit-rate"
                | "-Y"
                | "-y"
                | "--url"
                | "--output-dir"
                | "--json"
                | "-U"
                | "--proxy-user"
                | "--interface"
                | "--dns-servers"
        )
        .then_some(Value),
        "wget" => matches!(
            flag,
            "-O" | "--output-document"
                | "-o"
                | "--output-file"
                | "-a"
                | "--append-output"
                | "-P"
                | "--directory-prefix"
                | "-U"
                | "--user-agent"
                | "--header"
                | "-e"
                | "--execute"
                | "-i"
                | "--input-file"
                | "-t"
                | "--tries"
                | "-T"
                | "--timeout"
                | "--user"
                | "--password"
                | "-B"
                | "--base"
                | "--post-data"
                | "--post-file"
                | "-Q"
                | "--quota"
                | "-l"
                | "--level"
        )
        .then_some(Value),
        "ssh" => matches!(
            flag,
            "-b" | "-c"
                | "-D"
                | "-E"
                | "-e"
                | "-F"
                | "-I"
                | "-i"
                | "-J"
                | "-L"
                | "-l"
                | "-m"
                | "-O"
                | "-o"
                | "-p"
                | "-Q"
                | "-R"
                | "-S"
                | "-W"
                | "-w"
                | "-B"
        )
        .then_some(Value),
        "scp" | "sftp" => matches!(
            flag,
            "-c" | "-F" | "-i" | "-J" | "-l" | "-o" | "-P" | "-S" | "-D" | "-X"
        )
        .then_some(Value),
        "rsync" => matches!(
            flag,
            "-e" | "--rsh"
                | "--exclude"
                | "--include"
                | "--filter"
                | "-f"
                | "--port"
                | "--rsync-path"
                | "--exclude-from"
                | "--include-from"
                | "--files-from"
                | "--password-file"
        )
        .then_some(Value),
        "nc" | "ncat" | "netcat" => matches!(
            flag,
            "-p" | "-s" | "-w" | "-i" | "-x" | "-X" | "-q" | "-e" | "-c"
        )
        .then_some(Value),
        "psql" | "mysql" | "redis-cli" | "mongo" | "mongosh" | "pg_dump" | "mysqldump" => matches!(
            flag,
            "-h" | "--host"
                | "-p"
                | "--port"
                | "-U"
                | "-u"
                | "--user"
                | "-d"
                | "--dbname"
                | "-c"
                | "--command"
                | "-e"
                | "--execute"
                | "-f"
                | "--file"
                | "-a"
                | "-n"
                | "--eval"
        )
        .then_some(Value),
        "tar" => matches!(
            flag,
            "-f" | "--file"
                | "-C"
                | "--directory"
                | "-T"
                | "--files-from"
                | "-X"
                | "--exclude-from"
        )
        .then_some(Value),
        "make" => matches!(
            flag,
            "-C" | "-f" | "--file" | "--directory" | "-j" | "-l" | "-o" | "-W" | "-I"
        )
        .then_some(Value),
        "head" | "tail" => matches!(flag, "-n" | "-c" | "--lines" | "--bytes").then_some(Value),
        "cut" => matches!(flag, "-d" | "-f" | "-c" | "-b").then_some(Value),
        "sort" => matches!(flag, "-k" | "-t" | "-o" | "--output" | "-T" | "-S").then_some(Value),
        "xargs" => matches!(
            flag,
            "-a" | "-E"
                | "-I"
                | "-L"
                | "-n"
                | "-P"
                | "-s"
                | "-d"
                | "--arg-file"
                | "--delimiter"
                | "--max-args"
                | "--max-procs"
                | "--max-lines"
                | "--max-chars"
                | "--process-slot-var"
                | "--eof"
                | "--replace"
        )
        .then_some(Value),
        "docker-compose" => {
            matches!(flag, "-f" | "--file" | "-p" | "--project-name").then_some(Value)
        }
        "ln" | "cp" | "mv" | "install" => matches!(
            flag,
            "-t" | "--target-directory"
                | "-S"
                | "--suffix"
                | "-m"
                | "--mode"
                | "-o"
                | "--owner"
                | "-g"
                | "--group"
        )
        .then_some(Value),
        "chmod" | "chown" | "chgrp" => matches!(flag, "--reference").then_some(Value),
        "dd" => None,
        _ => None,
    };
    v.or(match flag {
        // Common everywhere: an explicit output file.
        "--output" | "--out" | "--log-file" | "--config" => Some(Value),
        _ => None,
    })
}

/// True if `word` is a URL (`scheme://...`).
pub fn is_url(word: &str) -> bool {
    let Some(i) = word.find("://") else {
        return false;
    };
    let scheme = &word[..i];
    !scheme.is_empty()
        && scheme.as_bytes()[0].is_ascii_alphabetic()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
}

/// True if `word` is an scp-style remote (`[user@]host:path`) for programs that take those.
pub fn is_remote_spec(program: &str, word: &str) -> bool {
    if !REMOTE_SPEC_PROGRAMS.contains(&program) {
        return false;
    }
    match word.find(':') {
        Some(i) if i > 0 => !word[..i].contains('/'),
        _ => false,
    }
}

/// True if a word looks like a path wherever it appears.
pub fn looks_like_path(word: &str) -> bool {
    word.starts_with('/')
        || word.starts_with("./")
        || word.starts_with("../")
        || word == "."
        || word == ".."
        || word.contains('/')
}
