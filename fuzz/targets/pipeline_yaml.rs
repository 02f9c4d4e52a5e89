fn main() {
    afl::fuzz!(|bytes: &[u8]| cd_pipeline::fuzz::pipeline_yaml_target(bytes));
}
