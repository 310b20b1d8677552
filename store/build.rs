// `sqlx::migrate!` embeds store/migrations at compile time, but cargo does not know the macro
// reads that folder: without this, a new migration file is left out until some source of the
// crate changes.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
