// `sqlx::migrate!` embeds `migrations/` at compile time; rebuild when it
// changes. Every crate with migrations uses this script (`build` in its
// Cargo.toml); the path is relative to the crate being built.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
