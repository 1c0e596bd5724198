//! Records the git revision the binary is built from, for `dsrlb --version`. Outside a git
//! checkout (a source tarball) it is DSRLB_GIT_REV from the environment, or "unknown".

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=DSRLB_GIT_REV");
    let rev = std::env::var("DSRLB_GIT_REV").ok().filter(|r| !r.is_empty()).or_else(git_rev);
    println!("cargo:rustc-env=DSRLB_GIT_REV={}", rev.as_deref().unwrap_or("unknown"));
}

fn git_rev() -> Option<String> {
    let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    // Rebuild when HEAD moves: HEAD itself names the branch, the branch's ref file the commit.
    let git_dir = Command::new("git").args(["rev-parse", "--git-dir"]).output().ok()?;
    let git_dir = Path::new(String::from_utf8_lossy(&git_dir.stdout).trim()).to_path_buf();
    let head = git_dir.join("HEAD");
    println!("cargo:rerun-if-changed={}", head.display());
    if let Some(r) =
        std::fs::read_to_string(&head).ok().and_then(|h| h.strip_prefix("ref: ").map(str::to_owned))
    {
        println!("cargo:rerun-if-changed={}", git_dir.join(r.trim()).display());
        println!("cargo:rerun-if-changed={}", git_dir.join("packed-refs").display());
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
