//! The configuration file: every `serve` setting in TOML, named like its
//! flag (`media_port` or `media-port` for `--media-port`). Precedence:
//! command-line flags, then `CONFCAST_*` variables, then the file, then the
//! defaults. Each value is checked by the same parser as its flag, and a
//! check reports every problem at once, with its line.

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command};
use toml_edit::{ImDocument, Item, Value};

use crate::config::ServeArgs;

/// One setting read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSetting {
    /// The flag's long name (`media-port`).
    pub flag: String,
    /// The clap id of the argument (`media_port`).
    pub id: String,
    pub value: String,
    pub line: usize,
}

/// A problem in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based; `None` when the file could not be read at all.
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The settings the file may hold: every `serve` flag but `--config`.
fn serve_command() -> Command {
    ServeArgs::augment_args(Command::new("serve"))
}

/// Reads and checks a configuration file.
pub fn read(path: &Path) -> Result<Vec<FileSetting>, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![ConfigError { line: None, message: format!("cannot read {}: {e}", path.display()) }])?;
    check(&text)
}

/// Checks the text of a configuration file: its settings, or every problem.
pub fn check(text: &str) -> Result<Vec<FileSetting>, Vec<ConfigError>> {
    let line_of = |offset: usize| 1 + text[..offset.min(text.len())].matches('\n').count();
    let document = ImDocument::parse(text).map_err(|e| {
        vec![ConfigError { line: e.span().map(|s| line_of(s.start)), message: e.message().trim().to_owned() }]
    })?;
    let command = serve_command();
    let mut settings = Vec::new();
    let mut errors = Vec::new();
    for (name, item) in document.iter() {
        let line = document.get_key_value(name).and_then(|(key, _)| key.span()).map(|s| line_of(s.start));
        let error = |message: String| ConfigError { line, message };
        let flag = name.replace('_', "-");
        let Some(arg) = command.get_arguments().find(|a| a.get_long() == Some(flag.as_str()) && flag != "config") else {
            errors.push(error(format!("unknown setting `{name}`")));
            continue;
        };
        let value = match item {
            Item::Value(Value::String(s)) => s.value().clone(),
            Item::Value(Value::Integer(i)) => i.value().to_string(),
            Item::Value(Value::Boolean(b)) => b.value().to_string(),
            // A repeatable setting (`trusted_proxy = ["10.0.0.0/8", "::1"]`).
            Item::Value(Value::Array(items)) if arg.get_value_delimiter().is_some() => {
                let texts: Option<Vec<String>> = items.iter().map(|v| v.as_str().map(str::to_owned)).collect();
                match texts {
                    Some(texts) if !texts.is_empty() => texts.join(","),
                    _ => {
                        errors.push(error(format!("`{name}` takes a list of strings")));
                        continue;
                    }
                }
            }
            _ => {
                errors.push(error(format!("`{name}` takes a single string or number")));
                continue;
            }
        };
        // The flag's own parser, so the file means exactly what the flag does.
        let as_flag: [OsString; 2] = ["serve".into(), format!("--{flag}={value}").into()];
        if let Err(e) = serve_command().try_get_matches_from(as_flag) {
            let detail = e.to_string();
            let detail = detail.lines().next().unwrap_or_default().trim_start_matches("error: ");
            errors.push(error(format!("`{name}`: {detail}")));
            continue;
        }
        if settings.iter().any(|s: &FileSetting| s.id == arg.get_id().as_str()) {
            errors.push(error(format!("`{name}` is set twice")));
            continue;
        }
        settings.push(FileSetting { flag, id: arg.get_id().to_string(), value, line: line.unwrap_or(0) });
    }
    if errors.is_empty() { Ok(settings) } else { Err(errors) }
}

/// The command line with the file's settings added as flags, for those the
/// command line and the environment left at their defaults.
pub fn merge(argv: &[OsString], serve: &ArgMatches, settings: &[FileSetting]) -> Vec<OsString> {
    let mut merged = argv.to_vec();
    for setting in settings {
        let given = matches!(serve.value_source(&setting.id), Some(ValueSource::CommandLine | ValueSource::EnvVariable));
        if !given {
            merged.push(format!("--{}={}", setting.flag, setting.value).into());
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_with_either_spelling_and_checked_by_the_flags_parsers() {
        let settings = check("listen = \"0.0.0.0:9000\"\nmedia-port = 40100\nrecording_max_age = 86400\n# a comment\n").expect("valid");
        let pairs: Vec<_> = settings.iter().map(|s| (s.flag.as_str(), s.value.as_str(), s.line)).collect();
        assert_eq!(pairs, vec![("listen", "0.0.0.0:9000", 1), ("media-port", "40100", 2), ("recording-max-age", "86400", 3)]);
    }

    #[test]
    fn every_error_is_reported_with_its_line() {
        let text = "listen = \"nonsense\"\nmedia_port = 70000\ncolour = \"blue\"\npublic_ip = [1, 2]\nlog_format = \"xml\"\nconfig = \"other.toml\"\n";
        let errors = check(text).expect_err("invalid");
        let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![Some(1), Some(2), Some(3), Some(4), Some(5), Some(6)], "{errors:#?}");
        assert!(errors[0].message.starts_with("`listen`: invalid value 'nonsense'"), "{}", errors[0]);
        assert!(errors[2].message.contains("unknown setting `colour`"));
        assert!(errors[3].message.contains("single string or number"));
        assert!(errors[5].message.contains("unknown setting `config`"));
    }

    #[test]
    fn repeatable_settings_take_a_list() {
        let settings = check("trusted_proxy = [\"10.0.0.0/8\", \"::1\"]\ntls_self_signed = true\n").expect("valid");
        assert_eq!(settings[0].value, "10.0.0.0/8,::1");
        assert_eq!(settings[1].value, "true");
        let errors = check("trusted_proxy = [\"10.0.0.0/33\"]\nlisten = [\"127.0.0.1:1\"]\ntrusted-proxy = []\n").expect_err("invalid");
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), vec![Some(1), Some(2), Some(3)], "{errors:#?}");
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let errors = check("listen = \"127.0.0.1:1\"\nmedia_port = = 4\n").expect_err("invalid");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, Some(2), "{}", errors[0]);
        assert_eq!(check("media_port = 1\nmedia-port = 2\n").expect_err("twice")[0].line, Some(2));
    }
}
