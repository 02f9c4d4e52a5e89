fn main() {
    afl::fuzz!(|bytes: &[u8]| cd_pipeline::fuzz::safetensors_target(bytes));
}
