//! Precedence: defaults < RUST_LOG < file < env var < flag, and the origin printed with each
//! problem.

use std::sync::MutexGuard;

use clap::{Args, CommandFactory, FromArgMatches};

use super::{TempConfig, ENV_LOCK};
use crate::cli::{serve_layer, Cli, Command};
use crate::config::layer::{key_of_field, ConfigLayer, LogArgs};
use crate::config::{env_var_of_key, load, CliLayer, Config, Origin};

/// Sets env vars for one test, under the env lock, and removes them when dropped (even on panic).
struct EnvVars {
    names: Vec<&'static str>,
    _lock: MutexGuard<'static, ()>,
}

impl EnvVars {
    fn set(vars: &[(&'static str, &str)]) -> EnvVars {
        let lock = ENV_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (name, value) in vars {
            std::env::set_var(name, value);
        }
        EnvVars {
            names: vars.iter().map(|(name, _)| *name).collect(),
            _lock: lock,
        }
    }
}

impl Drop for EnvVars {
    fn drop(&mut self) {
        for name in &self.names {
            std::env::remove_var(name);
        }
    }
}

/// Parses a `turnpike …` command line that must be `serve`, into its file and command-line layer.
fn parse_serve(args: &[&str]) -> (Option<std::path::PathBuf>, CliLayer) {
    let matches = Cli::command().try_get_matches_from(args).unwrap();
    let cli = Cli::from_arg_matches(&matches).unwrap();
    let Command::Serve(serve) = cli.command else {
        panic!("not serve: {args:?}")
    };
    (
        serve.config,
        serve_layer(cli.log, serve.layer, &matches, None),
    )
}

/// Loads what a `turnpike serve …` command line describes.
fn load_serve(args: &[&str]) -> Result<Config, crate::config::ConfigError> {
    let (file, cli) = parse_serve(args);
    load(file.as_deref(), &cli)
}

#[test]
fn no_file_and_no_flags_gives_the_defaults() {
    let _env = EnvVars::set(&[]);
    assert_eq!(
        load_serve(&["turnpike", "serve"]).unwrap(),
        Config::default()
    );
}

#[test]
fn flag_overrides_file() {
    let _env = EnvVars::set(&[]);
    let file = TempConfig::new("tcp-idle-timeout = 60\nudp = false\nlisten = [\"127.0.0.1:1\"]\n");
    let path = file.path.to_str().unwrap();
    let config =
        load_serve(&["turnpike", "serve", "-c", path, "--tcp-idle-timeout", "30"]).unwrap();
    assert_eq!(config.tcp_idle_timeout.as_secs(), 30);
    assert!(!config.udp, "keys without a flag keep the file's value");
    let args = [
        "turnpike",
        "serve",
        "--config",
        path,
        "--listen",
        "127.0.0.1:2",
        "--listen",
        "[::1]:3",
    ];
    let config = load_serve(&args).unwrap();
    assert_eq!(
        config.listen,
        ["127.0.0.1:2".parse().unwrap(), "[::1]:3".parse().unwrap()]
    );
}

#[test]
fn env_overrides_file_and_flag_overrides_env() {
    let _env = EnvVars::set(&[
        ("TURNPIKE_MAX_TCP_CONNECTIONS", "42"),
        ("TURNPIKE_LISTEN", "127.0.0.1:4000,127.0.0.1:4001"),
        ("TURNPIKE_UDP", "false"),
    ]);
    let file = TempConfig::new("max-tcp-connections = 7\nudp = true\n");
    let path = file.path.to_str().unwrap();
    let config = load_serve(&["turnpike", "serve", "-c", path]).unwrap();
    assert_eq!(config.max_tcp_connections, 42);
    assert_eq!(config.listen.len(), 2);
    assert!(!config.udp);
    let args = [
        "turnpike",
        "serve",
        "-c",
        path,
        "--max-tcp-connections",
        "9",
        "--udp",
    ];
    let config = load_serve(&args).unwrap();
    assert_eq!(config.max_tcp_connections, 9);
    assert!(config.udp, "a bare boolean flag means true");
}

#[test]
fn command_line_problems_name_the_flag_or_the_env_var() {
    let _env = EnvVars::set(&[("TURNPIKE_MAX_TCP_CONNECTIONS", "0")]);
    let error =
        load_serve(&["turnpike", "serve", "--tcp-idle-timeout=0", "--udp=false"]).unwrap_err();
    let printed = error.to_string();
    assert!(
        printed.contains("--tcp-idle-timeout: 0 is out of range 1..=86400"),
        "{printed}"
    );
    assert!(
        printed.contains("TURNPIKE_MAX_TCP_CONNECTIONS: 0 is out of range"),
        "{printed}"
    );
}

#[test]
fn log_flags_are_global() {
    let _env = EnvVars::set(&[]);
    for args in [
        &["turnpike", "--log-level", "debug", "serve"][..],
        &[
            "turnpike",
            "serve",
            "--log-level",
            "debug",
            "--log-format",
            "json",
        ][..],
    ] {
        let (_, cli) = parse_serve(args);
        assert_eq!(cli.layer.log_level.as_deref(), Some("debug"));
        assert_eq!(cli.origins.get("log-level"), Some(&Origin::Flag));
    }
    let stun = [
        "turnpike",
        "stun",
        "--log-format",
        "json",
        "stun:example.org",
    ];
    assert!(Cli::command().try_get_matches_from(stun).is_ok());
}

#[test]
fn rust_log_is_only_a_fallback() {
    let rust_log = |file: &str, flags: LogArgs| {
        let file = TempConfig::new(file);
        let cli = CliLayer {
            rust_log: Some("debug".into()),
            layer: flags.into_layer(),
            ..CliLayer::default()
        };
        load(Some(&file.path), &cli)
    };
    assert_eq!(rust_log("", LogArgs::default()).unwrap().log_level, "debug");
    assert_eq!(
        rust_log("log-level = \"warn\"", LogArgs::default())
            .unwrap()
            .log_level,
        "warn"
    );
    let flag = LogArgs {
        log_level: Some("error".into()),
        ..LogArgs::default()
    };
    assert_eq!(
        rust_log("log-level = \"warn\"", flag).unwrap().log_level,
        "error"
    );

    let cli = CliLayer {
        rust_log: Some("loud".into()),
        ..CliLayer::default()
    };
    let printed = load(None, &cli).unwrap_err().to_string();
    assert!(printed.starts_with("RUST_LOG: "), "{printed}");
}

#[test]
fn every_key_has_a_matching_flag_and_env_var() {
    let command = ConfigLayer::augment_args(LogArgs::augment_args(clap::Command::new("t")));
    for field in ConfigLayer::FIELDS {
        let key = key_of_field(field);
        let arg = command
            .get_arguments()
            .find(|arg| arg.get_id() == *field)
            .unwrap_or_else(|| panic!("no flag for `{key}`"));
        assert_eq!(arg.get_long(), Some(key.as_str()));
        let env = arg.get_env().and_then(|env| env.to_str());
        assert_eq!(
            env,
            Some(env_var_of_key(&key).as_str()),
            "env var of `{key}`"
        );
    }
}
