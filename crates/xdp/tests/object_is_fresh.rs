//! The committed bpf/relay.o is what bpf/build.sh makes of bpf/relay.c today.

#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::Command;

#[test]
fn committed_object_matches_relay_c() {
    let bpf = Path::new(env!("CARGO_MANIFEST_DIR")).join("bpf");
    for tool in ["clang", "llvm-strip"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "{tool} not found: run scripts/install-test-deps (it installs clang, llvm, libbpf-dev)"
        );
    }
    assert!(
        Path::new("/usr/include/bpf/bpf_helpers.h").exists(),
        "libbpf-dev's headers are missing: run scripts/install-test-deps"
    );
    let out_dir = std::env::temp_dir().join(format!("turnpike-xdp-fresh-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).expect("temp dir");
    let rebuilt = out_dir.join("relay.o");
    let build = Command::new(bpf.join("build.sh"))
        .arg(&rebuilt)
        .output()
        .expect("run build.sh");
    let built = build.status.success();
    let fresh = built && std::fs::read(&rebuilt).ok() == std::fs::read(bpf.join("relay.o")).ok();
    let _ = std::fs::remove_dir_all(&out_dir);
    assert!(
        built,
        "crates/xdp/bpf/build.sh failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    assert!(
        fresh,
        "crates/xdp/bpf/relay.o does not match relay.c: run crates/xdp/bpf/build.sh and commit relay.o"
    );
}
