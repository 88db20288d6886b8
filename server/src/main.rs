fn main() {
    eprintln!("stockd: the HTTP server is not built yet; run `cargo run -p stockd-engine --example flash_sale`");
    std::process::exit(2);
}
