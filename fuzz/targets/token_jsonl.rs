fn main() {
    afl::fuzz!(|bytes: &[u8]| cd_pipeline::fuzz::token_jsonl_target(bytes));
}
