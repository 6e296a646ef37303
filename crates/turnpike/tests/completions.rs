//! `turnpike completions SHELL` and `turnpike man`, generated from the clap definitions: the
//! bash script parses, and the pages name every subcommand `--help` lists and format without
//! a groff warning.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::process::{Command, Output};

/// Runs `turnpike ARGS`, expecting success; returns stdout.
fn turnpike(args: &[&str]) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_turnpike"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        status.success(),
        "turnpike {args:?}: {status}: {}",
        String::from_utf8_lossy(&stderr)
    );
    String::from_utf8(stdout).unwrap()
}

/// The subcommands `turnpike --help` lists (without `help`).
fn subcommands() -> Vec<String> {
    let help = turnpike(&["--help"]);
    let listed: Vec<String> = help
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    for expected in ["serve", "config", "user", "completions", "man"] {
        assert!(listed.iter().any(|name| name == expected), "{listed:?}");
    }
    listed
}

#[test]
fn the_bash_script_parses_and_completes_every_subcommand() {
    let script = turnpike(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("turnpike.bash");
    std::fs::write(&file, &script).unwrap();
    let check = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(script.contains("complete -F _turnpike"), "{script}");
    for name in subcommands() {
        assert!(script.contains(&format!("turnpike,{name})")), "{name}");
    }
}

#[test]
fn zsh_and_fish_scripts_are_written_too() {
    assert!(turnpike(&["completions", "zsh"]).starts_with("#compdef turnpike"));
    let fish = turnpike(&["completions", "fish"]);
    assert!(fish.contains("complete -c turnpike"), "{fish}");
    let output = Command::new(env!("CARGO_BIN_EXE_turnpike"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

/// Checks that `page` is roff with the title `name`(1) and that groff formats it without a
/// warning (`-ww`: all warnings; `-k`: preconv, for the UTF-8 of the help texts).
fn assert_formats(name: &str, page: &str) {
    assert!(
        page.lines()
            .any(|line| line.starts_with(&format!(".TH {name} 1 "))),
        "{page}"
    );
    let mut groff = Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        groff
            .stdin
            .take()
            .unwrap()
            .write_all(page.as_bytes())
            .unwrap();
    }
    let output = groff.wait_with_output().unwrap();
    let warnings = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && warnings.is_empty(),
        "{name}: {warnings}"
    );
}

#[test]
fn the_man_page_is_roff_naming_every_subcommand() {
    let page = turnpike(&["man"]);
    assert_formats("turnpike", &page);
    for name in subcommands() {
        assert!(
            page.contains(&format!("turnpike\\-{name}(1)")),
            "{name} in {page}"
        );
    }
}

#[test]
fn man_dir_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    turnpike(&["man", "--dir", dir.path().to_str().unwrap()]);
    let mut names = vec!["turnpike".to_owned()];
    names.extend(subcommands().iter().map(|name| format!("turnpike-{name}")));
    names.push("turnpike-config-check".to_owned());
    names.push("turnpike-config-import-coturn".to_owned());
    for name in names {
        let page = std::fs::read_to_string(dir.path().join(format!("{name}.1")))
            .unwrap_or_else(|e| panic!("{name}.1: {e}"));
        assert_formats(&name, &page);
    }
}
