//! `execkit-mcp setup CLIENT`: the configuration block that registers this binary (by its
//! absolute path) with an MCP client, ready to paste.

use serde_json::json;
use std::path::Path;

/// Clients we know how to configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    /// Claude Code (`claude mcp add`, or `.mcp.json`).
    Claude,
    /// Cursor (`~/.cursor/mcp.json` or `.cursor/mcp.json`).
    Cursor,
    /// OpenAI Codex CLI (`~/.codex/config.toml`).
    Codex,
    /// Gemini CLI (`~/.gemini/settings.json`).
    Gemini,
}

fn quote_sh(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The text to print for `client`, for the binary at `exe` and an optional config file.
pub fn snippet(client: Client, exe: &Path, config: Option<&Path>) -> String {
    let exe = exe.display().to_string();
    let args: Vec<String> = match config {
        Some(c) => vec!["--config".into(), c.display().to_string()],
        None => Vec::new(),
    };
    let servers = json!({ "mcpServers": { "execkit": { "command": exe, "args": args } } });
    let pretty = serde_json::to_string_pretty(&servers).unwrap_or_default();
    match client {
        Client::Claude => {
            let mut cmd = format!("claude mcp add execkit -- {}", quote_sh(&exe));
            for a in &args {
                cmd.push(' ');
                cmd.push_str(&quote_sh(a));
            }
            format!(
                "# Claude Code: run this once (add `--scope project` to share it via .mcp.json)\n{cmd}\n\n# or put this in .mcp.json at the project root:\n{pretty}\n"
            )
        }
        Client::Cursor => format!(
            "# Cursor: merge into ~/.cursor/mcp.json (all projects) or .cursor/mcp.json (this project)\n{pretty}\n"
        ),
        Client::Gemini => format!(
            "# Gemini CLI: merge into ~/.gemini/settings.json (or .gemini/settings.json)\n{pretty}\n"
        ),
        Client::Codex => {
            let list: Vec<String> = args.iter().map(|a| toml_str(a)).collect();
            format!(
                "# Codex CLI: add to ~/.codex/config.toml\n[mcp_servers.execkit]\ncommand = {}\nargs = [{}]\n",
                toml_str(&exe),
                list.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_snippets_parse_and_name_the_binary() {
        for c in [Client::Claude, Client::Cursor, Client::Gemini] {
            let s = snippet(
                c,
                Path::new("/opt/ek/execkit-mcp"),
                Some(Path::new("/etc/ek.toml")),
            );
            let start = s.find('{').unwrap();
            let v: serde_json::Value = serde_json::from_str(&s[start..]).unwrap();
            assert_eq!(v["mcpServers"]["execkit"]["command"], "/opt/ek/execkit-mcp");
            assert_eq!(v["mcpServers"]["execkit"]["args"][1], "/etc/ek.toml");
        }
    }

    #[test]
    fn codex_snippet_is_toml() {
        let s = snippet(Client::Codex, Path::new("/opt/my dir/execkit-mcp"), None);
        let v: toml::Value = toml::from_str(&s).unwrap();
        assert_eq!(
            v["mcp_servers"]["execkit"]["command"].as_str(),
            Some("/opt/my dir/execkit-mcp")
        );
    }

    #[test]
    fn claude_command_quotes_paths() {
        let s = snippet(Client::Claude, Path::new("/opt/my dir/execkit-mcp"), None);
        assert!(
            s.contains("claude mcp add execkit -- '/opt/my dir/execkit-mcp'"),
            "{s}"
        );
    }
}
