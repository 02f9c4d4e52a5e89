fn main() {
    afl::fuzz!(|bytes: &[u8]| cd_pipeline::fuzz::vocabulary_json_target(bytes));
}
