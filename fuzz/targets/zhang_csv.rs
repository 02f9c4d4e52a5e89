fn main() {
    afl::fuzz!(|bytes: &[u8]| cd_pipeline::fuzz::zhang_csv_target(bytes));
}
