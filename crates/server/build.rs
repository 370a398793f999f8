//! The web client is embedded at compile time; rebuild when any of it changes.

fn main() {
    println!("cargo:rerun-if-changed=../../web");
}
