fn main() {
    afl::fuzz!(|bytes: &[u8]| cd_pipeline::fuzz::sst_trees_target(bytes));
}
